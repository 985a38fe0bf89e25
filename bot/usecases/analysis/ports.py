"""What automatic rollback's analysis needs from the outside, in the domain's words: a
Deployment's history (which revision, which pods, since when) and the metrics of its pods.

The adapters implement these (`bot.adapters.kube`, `bot.adapters.prometheus`); the wiring
(`bot.entry`) passes them down. Nothing here imports an adapter.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import Protocol

from bot.config.catalog import ServiceRef
from bot.domain.analysis.config import PrometheusConfig
from bot.domain.analysis.report import Report
from bot.domain.analysis.series import Series
from bot.domain.analysis.watching import Claimed, Phase, WatchClaim, WatchStatus
from bot.domain.rollback.models import DeploymentChange, History, Thread
from bot.domain.rollback.views import ServiceView
from bot.usecases.rollback.requests import RollbackRequest, StartResult


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


# -- automatic rollback: the watch of new rollouts ------------------------------------------


class DeploymentWatches(Protocol):
    """One cluster's Deployments, watched a namespace at a time (one watch shared by every
    catalog service of that namespace)."""

    def watch_namespace(self, namespace: str) -> AsyncGenerator[DeploymentChange, None]:
        """Every Deployment of `namespace`, then each change, for as long as it is iterated."""
        ...


class WatchLeases(Protocol):
    """The watch Lease of each Deployment: which replica analyses its rollout, and what it
    keeps for another replica (`bot.domain.analysis.watching.WatchClaim`)."""

    async def claim(
        self, namespace: str, deployment: str, me: str, revision: int, seconds: int
    ) -> Claimed: ...

    async def renew(self, namespace: str, deployment: str, me: str) -> WatchClaim:
        """The claim now; LockLost when it is not ours any more."""
        ...

    async def note_thread(
        self, namespace: str, deployment: str, me: str, thread: Thread, *, revision: int
    ) -> None: ...

    async def end(
        self, namespace: str, deployment: str, me: str, phase: Phase, *, revision: int
    ) -> None:
        """Mark the analysis of `revision` ended and release the Lease (not when it holds
        another revision's claim)."""
        ...

    async def hand_over(
        self, namespace: str, deployment: str, me: str, *, revision: int
    ) -> None: ...

    async def ask_stop(
        self, namespace: str, deployment: str, revision: int, user: str
    ) -> WatchClaim | None: ...


class WatchedCluster(DeploymentHistories, DeploymentWatches, WatchLeases, Protocol):
    """One cluster, as the watch of new rollouts uses it."""


class WatchedClusters(Protocol):
    def cluster(self, context: str | None) -> WatchedCluster: ...


class AnalysisMessages(Protocol):
    """Where a watch tells its story: the service's channel, the watch message's thread."""

    async def post_watching(self, channel: str, status: WatchStatus) -> Thread:
        """Post the watch message ("watching 2.14.0 (revision 4) for 10 minutes against
        2.13.0", with a "Stop watching" button); its thread."""
        ...

    async def update(self, thread: Thread, status: WatchStatus) -> None:
        """Edit the watch message to show `status` (quietly: no new message)."""
        ...

    async def notice(self, thread: Thread, text: str) -> None:
        """A line in the thread (no data, not enough traffic, Prometheus unreachable)."""
        ...

    async def verdict(
        self,
        thread: Thread,
        status: WatchStatus,
        report: Report,
        *,
        offer: ServiceView | None,
        loud: bool,
    ) -> None:
        """The breach in the thread: the evidence of each signal, what was done (`status`),
        the on-call group mentioned, a rollback button for `offer`'s previous revision when
        nothing was rolled back; `loud`: also shown in the channel."""
        ...

    async def chart(self, thread: Thread, title: str, png: bytes) -> None:
        """Upload the verdict's chart (a PNG) in the thread."""
        ...


class Charts(Protocol):
    async def png(self, report: Report, rolled_back_at: float | None) -> bytes: ...


class ServiceViewer(Protocol):
    """A service as shown (its versions and what a rollback would do), for the button offered
    with a verdict that did not roll back."""

    async def view(self, ref: ServiceRef, asked_by: str) -> ServiceView: ...


class Rollbacks(Protocol):
    """The rollback runner, as automatic rollback asks it: the same guards and record as a
    person's rollback."""

    async def start(self, request: RollbackRequest) -> StartResult: ...


class AnalysisMetrics(Protocol):
    def analysed(self, service: str, verdict: str) -> None: ...

    def detected(self, seconds: float) -> None:
        """From the first breaching sample to the rollback's patch."""
        ...
