"""Prometheus metrics, in a registry of their own (built by the composition root; no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=_registry)

    def __post_init__(self) -> None:
        r = self.registry
        self.rollbacks = Counter(
            "rollbackbot_rollbacks",
            "Rollbacks started by the bot, by service and outcome (succeeded, failed, timed_out)",
            ["service", "outcome"],
            registry=r,
        )
        self.rollback_seconds = Histogram(
            "rollbackbot_rollback_duration_seconds",
            "From the patch to the rollout's end (complete or failed)",
            ["service"],
            buckets=(5, 15, 30, 60, 120, 300, 600, 900, 1800),
            registry=r,
        )
        self.in_flight = Gauge(
            "rollbackbot_rollouts_in_flight", "Rollbacks running now in this replica", registry=r
        )
        self.slack_ack_seconds = Histogram(
            "rollbackbot_slack_ack_seconds",
            "Time to answer a Slack request (HTTP mode), by payload type",
            ["type"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 3),
            registry=r,
        )
        self.alerts = Counter(
            "rollbackbot_alerts",
            "Alerts received from Alertmanager, by what became of them (received, mapped, "
            "ignored, digested into a storm's digest)",
            ["result"],
            registry=r,
        )
        self.kube_errors = Counter(
            "rollbackbot_kubernetes_api_errors",
            "Kubernetes API calls that failed, by kind (status code, timeout, unreachable)",
            ["kind"],
            registry=r,
        )

        self.analyses = Counter(
            "rollbackbot_analyses",
            "Automatic rollback's analyses of new rollouts, by service and how they ended "
            "(healthy, no_verdict, rolled_back, would_roll_back, not_rolled_back, stopped, "
            "superseded)",
            ["service", "verdict"],
            registry=r,
        )
        self.detection_seconds = Histogram(
            "rollbackbot_auto_rollback_detection_seconds",
            "From the end of a new rollout's first breaching interval (where the analysis first "
            "sees the breach) to the rollback's patch",
            buckets=(1, 2, 3, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600),
            registry=r,
        )

    def analysed(self, service: str, verdict: str) -> None:
        self.analyses.labels(service, verdict).inc()

    def detected(self, seconds: float) -> None:
        self.detection_seconds.observe(seconds)

    def count_kube_error(self, kind: str) -> None:
        self.kube_errors.labels(kind).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
