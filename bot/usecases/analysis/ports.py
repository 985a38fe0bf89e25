"""What automatic rollback's analysis needs from the outside, in the domain's words: a
Deployment's history (which revision, which pods, since when) and the metrics of its pods.

The adapters implement these (`bot.adapters.kube`, `bot.adapters.prometheus`); the wiring
(`bot.entry`) passes them down. Nothing here imports an adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bot.domain.analysis.config import PrometheusConfig
from bot.domain.analysis.series import Series
from bot.domain.rollback.models import History


class Metrics(Protocol):
    """One metrics source (a Prometheus)."""

    async def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> Sequence[Series]:
        """`promql` evaluated from `start` to `end` every `step_seconds` (aware datetimes; at
        most 10,000 steps): each series with its points. MetricsUnavailable when the source
        cannot be reached or answers an error."""
        ...


class MetricsSources(Protocol):
    """The metrics source of a service: its `auto_rollback.prometheus` block, at `url`."""

    def metrics(self, url: str, prometheus: PrometheusConfig) -> Metrics: ...


class DeploymentHistories(Protocol):
    """One Kubernetes cluster, as far as the analysis reads it."""

    async def history(self, namespace: str, name: str) -> History:
        """The Deployment and the revisions its ReplicaSets hold; NotFound when it does not
        exist, ClusterError when the cluster cannot be read."""
        ...


class Clusters(Protocol):
    """The clusters by kubeconfig context (None: the default one)."""

    def cluster(self, context: str | None) -> DeploymentHistories: ...
