"""The simulated cluster's metrics: what its pods would serve, in Prometheus' text format.

`python -m rollback_sandbox.metrics --kubeconfig PATH --port 0 --port-out FILE` lists the pods
of the simulated cluster (`rollback_sandbox.cluster`) every second over its HTTP API and serves,
per Ready pod, the request counter and latency histogram the automatic rollback's presets query
(`http_requests_total{namespace,deployment,pod,pod_template_hash,code}`,
`http_request_duration_seconds_*`) on `/metrics`, for a real Prometheus to scrape.

A pod behaves as its pod template's annotations say:

    sandbox.rollback-bot.io/error-ratio: "0.3"    # share of 500s (default 0.005)
    sandbox.rollback-bot.io/p99-seconds: "0.8"    # 99th percentile latency (default 0.12)

so a "bad version" is one `kubectl patch` of the Deployment's template away. See `exporter`
for how the figures are made and the limits.
"""
