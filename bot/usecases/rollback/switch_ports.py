"""What the blue-green switch needs from the outside, in the domain's words.

The Kubernetes adapter (`bot.adapters.kube.services`) gives the cluster, the Slack adapter
(`bot.adapters.slack.switch_reporter`) and the CLI's console the reporters; the wiring passes
them down. The Service and the EndpointSlices come as the API server's JSON (read as raw JSON:
the official client cannot read a placeholder slice) and are parsed by the domain.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from bot.domain.rollback.blue_green import ColorState, SwitchPlan, SwitchProgress
from bot.domain.rollback.models import Deployment, JsonDict, RunInfo, Thread
from bot.domain.rollback.switches import SwitchOutcome, SwitchView


class BlueGreenCluster(Protocol):
    """One cluster, as a switch uses it: the Service, its EndpointSlices, the colours'
    Deployments, and the rollback Leases (a switch's is named by `switch_lock_key`)."""

    @property
    def server(self) -> str:
        """The API server's address, for messages."""
        ...

    async def read_service(self, namespace: str, name: str) -> JsonDict:
        """The Service's JSON; NotFound when it does not exist."""
        ...

    async def patch_service(self, namespace: str, name: str, patch: JsonDict) -> JsonDict:
        """A merge patch of the Service; Conflict when its resourceVersion precondition
        fails."""
        ...

    async def endpoint_slices(self, namespace: str, service: str) -> JsonDict:
        """The Service's EndpointSlices (labelled `kubernetes.io/service-name`), as the API's
        list response."""
        ...

    def watch_endpoint_slices(
        self, namespace: str, service: str
    ) -> AsyncGenerator[list[JsonDict], None]:
        """The Service's EndpointSlices now, then again after every change, until closed."""
        ...

    async def read_deployment(self, namespace: str, name: str) -> Deployment:
        """A colour's Deployment; NotFound when it does not exist."""
        ...

    def watch_deployment(self, namespace: str, name: str) -> AsyncGenerator[Deployment, None]:
        """The Deployment now, then every change, resuming across disconnects, until closed."""
        ...

    async def scale_deployment(self, namespace: str, name: str, patch: JsonDict) -> Deployment:
        """A merge patch of the Deployment (the plan's `spec.replicas`)."""
        ...

    async def replicaset_names(self, deployment: Deployment) -> frozenset[str]:
        """The names of the Deployment's ReplicaSets (its pods are named after them)."""
        ...

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        """Take the Lease named after `deployment` (a lock key): None when taken, else the
        holder's run."""
        ...

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None: ...

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None: ...


class BlueGreenClusters(Protocol):
    """The clusters by kubeconfig context (None: the default one)."""

    def cluster(self, context: str | None) -> BlueGreenCluster: ...


class SwitchReporter(Protocol):
    """Where a running switch tells its story (a Slack thread, a terminal)."""

    async def started(self, run: RunInfo, plan: SwitchPlan, reason: str | None) -> None: ...

    async def scaling_up(self, plan: SwitchPlan, current: ColorState) -> None:
        """The target colour is being scaled up to `plan.scale_to` first."""
        ...

    async def waiting(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        """The target colour as it comes up (often; only the latest needs showing)."""
        ...

    async def ready(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        """The target colour is available with the replicas the plan waits for."""
        ...

    async def patched(self, plan: SwitchPlan) -> None:
        """The Service's selector now names the target colour; the slices are awaited."""
        ...

    async def converging(self, plan: SwitchPlan, progress: SwitchProgress, elapsed: float) -> None:
        """What the slices show while the switch takes effect (only the latest needs
        showing)."""
        ...

    async def finished(self, outcome: SwitchOutcome) -> None: ...


class SwitchReporters(Protocol):
    """A reporter for each switch: its thread in Slack, or the terminal for the CLI."""

    def reporter(self, thread: Thread | None, namespace: str) -> SwitchReporter: ...


class SwitchMessages(Protocol):
    """The blue-green message a switch was asked from: locked while it runs (no buttons that
    invite a second one), and shown as the cluster is after it."""

    async def lock(self, thread: Thread, view: SwitchView) -> None: ...

    async def refresh(self, thread: Thread, view: SwitchView) -> None: ...
