"""One `Cluster` per kubeconfig context, so one bot can serve services on several clusters."""

from __future__ import annotations

from collections.abc import Callable

from bot.usecases.rollback.ports import Cluster
from bot.adapters.kube.deployments import KubernetesCluster

ClusterFactory = Callable[[str | None, str | None, float], Cluster]


def _official_client(kubeconfig: str | None, context: str | None, timeout: float) -> Cluster:
    return KubernetesCluster.from_kubeconfig(kubeconfig, context, request_timeout=timeout)


class ClusterRegistry:
    """Clusters by context name (None: the kubeconfig's current context, or in-cluster)."""

    def __init__(
        self,
        kubeconfig: str | None,
        default_context: str | None,
        *,
        request_timeout: float = 10.0,
        factory: ClusterFactory = _official_client,
    ) -> None:
        self._kubeconfig = kubeconfig
        self._default_context = default_context
        self._timeout = request_timeout
        self._factory = factory
        self._clusters: dict[str | None, Cluster] = {}

    def get(self, context: str | None) -> Cluster:
        key = context or self._default_context
        if key not in self._clusters:
            self._clusters[key] = self._factory(self._kubeconfig, key, self._timeout)
        return self._clusters[key]

    async def close(self) -> None:
        for cluster in self._clusters.values():
            await cluster.close()
        self._clusters.clear()
