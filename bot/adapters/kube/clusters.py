"""The clusters by kubeconfig context: for each, one client layer (`KubeClient`) shared by its
Deployments, Leases, Events and the alert index's ConfigMap, so one bot can serve services on
several clusters."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

from bot.adapters.kube.client import KubeClient
from bot.adapters.kube.configmaps import ConfigMapDocument
from bot.adapters.kube.deployments import Deployments
from bot.adapters.kube.events import Events
from bot.adapters.kube.leases import Leases
from bot.adapters.kube.watch_leases import WatchLeases
from bot.domain.analysis.watching import Claimed, Phase, WatchClaim
from bot.domain.rollback.models import (
    Deployment,
    DeploymentChange,
    History,
    JsonDict,
    RunInfo,
    Thread,
    WorkloadKind,
)

DEPLOYMENT = WorkloadKind.DEPLOYMENT


class KubernetesCluster:
    """One cluster as the use cases see it (their `Cluster` port)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._deployments = Deployments(kube)
        self._leases = Leases(kube)
        self._watches = WatchLeases(kube)
        self._events = Events(kube)

    @property
    def server(self) -> str:
        return self.kube.server

    async def ping(self) -> str:
        return await self._deployments.ping()

    async def read(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> Deployment:
        return await self._deployments.read(namespace, name, kind=kind)

    async def history(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> History:
        return await self._deployments.history(namespace, name, kind=kind)

    async def patch(
        self,
        namespace: str,
        name: str,
        patch: Sequence[JsonDict] | JsonDict,
        *,
        dry_run: bool,
        kind: WorkloadKind = DEPLOYMENT,
        subresource: str | None = None,
    ) -> Deployment:
        return await self._deployments.patch(
            namespace, name, patch, dry_run=dry_run, kind=kind, subresource=subresource
        )

    def watch(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> AsyncGenerator[Deployment, None]:
        return self._deployments.watch(namespace, name, kind=kind)

    def watch_namespace(self, namespace: str) -> AsyncGenerator[DeploymentChange, None]:
        return self._deployments.watch_namespace(namespace)

    async def claim(
        self, namespace: str, deployment: str, me: str, revision: int, seconds: int
    ) -> Claimed:
        return await self._watches.claim(namespace, deployment, me, revision, seconds)

    async def renew(self, namespace: str, deployment: str, me: str) -> WatchClaim:
        return await self._watches.renew(namespace, deployment, me)

    async def note_thread(
        self, namespace: str, deployment: str, me: str, thread: Thread, *, revision: int
    ) -> None:
        await self._watches.note_thread(namespace, deployment, me, thread, revision=revision)

    async def end(
        self, namespace: str, deployment: str, me: str, phase: Phase, *, revision: int
    ) -> None:
        await self._watches.end(namespace, deployment, me, phase, revision=revision)

    async def hand_over(self, namespace: str, deployment: str, me: str, *, revision: int) -> None:
        await self._watches.hand_over(namespace, deployment, me, revision=revision)

    async def ask_stop(
        self, namespace: str, deployment: str, revision: int, user: str
    ) -> WatchClaim | None:
        return await self._watches.ask_stop(namespace, deployment, revision, user)

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        return await self._leases.acquire_lock(namespace, deployment, me, run, seconds)

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None:
        await self._leases.renew_lock(namespace, deployment, me)

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        await self._leases.release_lock(namespace, deployment, me)

    async def hand_over_lock(self, namespace: str, deployment: str, me: str) -> None:
        await self._leases.hand_over_lock(namespace, deployment, me)

    async def unfinished_runs(self, namespace: str, me: str) -> list[RunInfo]:
        return await self._leases.unfinished_runs(namespace, me)

    async def take_over_lock(
        self, namespace: str, deployment: str, me: str, seconds: int
    ) -> RunInfo | None:
        return await self._leases.take_over_lock(namespace, deployment, me, seconds)

    async def record_event(
        self, deployment: Deployment, reason: str, message: str, *, warning: bool, source: str
    ) -> None:
        await self._events.record_event(deployment, reason, message, warning=warning, source=source)

    async def close(self) -> None:
        await self.kube.close()


KubeClientFactory = Callable[[str | None, str | None, float], KubeClient]


class ClusterRegistry:
    """Clusters by context name (None: the kubeconfig's current context, or in-cluster), each
    built on first use."""

    def __init__(
        self,
        kubeconfig: str | None,
        default_context: str | None,
        *,
        request_timeout: float = 10.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._kubeconfig = kubeconfig
        self._default_context = default_context
        self._timeout = request_timeout
        self._on_error = on_error
        self._clusters: dict[str | None, KubernetesCluster] = {}

    def cluster(self, context: str | None) -> KubernetesCluster:
        key = context or self._default_context
        if key not in self._clusters:
            kube = KubeClient.from_kubeconfig(
                self._kubeconfig, key, request_timeout=self._timeout, on_error=self._on_error
            )
            self._clusters[key] = KubernetesCluster(kube)
        return self._clusters[key]

    def cluster_ping(self, context: str | None) -> Callable[[], Awaitable[str]]:
        """A readiness check: the cluster's version, asked when called (built then if need be)."""

        async def ping() -> str:
            return await self.cluster(context).ping()

        return ping

    def events(self, context: str | None) -> KubernetesCluster:
        return self.cluster(context)

    def document(
        self,
        namespace: str,
        name: str,
        context: str | None = None,
        *,
        component: str = "alert-messages",
    ) -> ConfigMapDocument:
        """A ConfigMap of this bot's own (the alert index, the approval requests), on the
        cluster's shared client."""
        return ConfigMapDocument(self.cluster(context).kube, namespace, name, component)

    async def close(self) -> None:
        for cluster in self._clusters.values():
            await cluster.close()
        self._clusters.clear()
