"""The simulated world rollback-bot is tried and tested against, as its own distribution
(`rollback-bot-sandbox`), never part of the product:

- `rollback_sandbox.cluster`: a Kubernetes API server on real HTTP (discovery, CRUD, watch,
  patches, Tables) with a Deployment/ReplicaSet controller, accepted by the official client
  and the real kubectl;
- `rollback_sandbox.slack`: Slack's Web API, Socket Mode and signed requests on real HTTP, and
  a local workspace in the browser on top of them;
- `rollback_sandbox.metrics`: the simulated cluster's pods as Prometheus metrics (requests,
  errors, latency, as their pod templates say), for the demo of automatic rollback.

The bot only ever speaks HTTP to them.
"""
