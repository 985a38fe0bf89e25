"""Blue-green switches through the cluster's client layer (the use case's `BlueGreenCluster`):
the Service (read, and its selector's merge patch under a resourceVersion precondition), its
EndpointSlices (listed and watched by `kubernetes.io/service-name`, read as raw JSON: the
official client cannot read a placeholder slice whose `endpoints` is null), the colours'
Deployments (read, watched, scaled by a merge patch of `spec.replicas`) and the names of their
ReplicaSets (their pods are named after them: the bot never reads pods). The Leases are the
rollbacks' own, on the cluster's shared client.

What comes back is bounded before it is kept: a list response is read up to a number of items,
names are taken only when they are Kubernetes names."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator

from kubernetes.client.exceptions import ApiException

from bot.adapters.kube.client import MERGE_PATCH, KubeClient
from bot.adapters.kube.clusters import ClusterRegistry, KubernetesCluster
from bot.adapters.kube.errors import TRANSPORT_ERRORS
from bot.adapters.kube.parsing import is_owned_by, label_selector, parse_deployment
from bot.domain.errors import ClusterError
from bot.domain.retry import Backoff
from bot.domain.rollback.blue_green import MAX_SLICES, SERVICE_NAME_LABEL
from bot.domain.rollback.models import Deployment, JsonDict, RunInfo

log = logging.getLogger(__name__)

CORE = "/api/v1"
APPS = "/apis/apps/v1"
DISCOVERY = "/apis/discovery.k8s.io/v1"
MAX_REPLICASETS = 1000  # a Deployment keeps 10 by default; more is not read
MAX_NAME = 253
WATCH_SECONDS = 30  # the server ends the stream after this long; it is then resumed
WATCH_RETRY_LIMIT = 8
WATCH_BACKOFF = Backoff(first=0.2, factor=2.0, cap=5.0, jitter=0.5)
SERVICE_HINT = "the bot's role needs get and patch on services, list and watch on endpointslices"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _name(obj: object) -> str | None:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if isinstance(name, str) and len(name) <= MAX_NAME and _DNS_SUBDOMAIN.match(name):
        return name
    return None


def _items(listing: JsonDict, limit: int) -> list[JsonDict]:
    items = listing.get("items")
    if not isinstance(items, list):
        return []
    return [item for item in items[:limit] if isinstance(item, dict)]


class KubeBlueGreen:
    """One cluster as a switch sees it, on that cluster's shared client and Leases."""

    def __init__(self, cluster: KubernetesCluster) -> None:
        self._cluster = cluster
        self._kube: KubeClient = cluster.kube

    @property
    def server(self) -> str:
        return self._cluster.server

    # -- the Service ---------------------------------------------------------------------------

    async def read_service(self, namespace: str, name: str) -> JsonDict:
        return await self._kube.request(
            f"reading service {namespace}/{name}",
            "GET",
            f"{CORE}/namespaces/{namespace}/services/{name}",
            forbidden_hint=SERVICE_HINT,
        )

    async def patch_service(self, namespace: str, name: str, patch: JsonDict) -> JsonDict:
        """A merge patch (the plan's, with its resourceVersion precondition: 409 Conflict when
        the Service changed since it was read)."""
        return await self._kube.request(
            f"patching service {namespace}/{name}",
            "PATCH",
            f"{CORE}/namespaces/{namespace}/services/{name}",
            patch,
            content_type=MERGE_PATCH,
            forbidden_hint=SERVICE_HINT,
        )

    # -- its EndpointSlices --------------------------------------------------------------------

    def _slices(self, namespace: str, service: str) -> tuple[str, list[tuple[str, str]]]:
        return (
            f"{DISCOVERY}/namespaces/{namespace}/endpointslices",
            [("labelSelector", f"{SERVICE_NAME_LABEL}={service}")],
        )

    async def endpoint_slices(self, namespace: str, service: str) -> JsonDict:
        path, query = self._slices(namespace, service)
        return await self._kube.request(
            f"listing the EndpointSlices of service {namespace}/{service}",
            "GET",
            path,
            query=query,
            forbidden_hint=SERVICE_HINT,
        )

    async def watch_endpoint_slices(
        self, namespace: str, service: str
    ) -> AsyncGenerator[list[JsonDict], None]:
        """The slices now, then all of them again after each change: listed, then watched from
        the list's resourceVersion, resumed after a disconnect and listed again on 410 Gone.
        Past `WATCH_RETRY_LIMIT` failures in a row it gives up (ClusterError)."""
        what = f"watching the EndpointSlices of service {namespace}/{service}"
        path, selector = self._slices(namespace, service)
        slices: dict[str, JsonDict] = {}
        resource_version: str | None = None
        failures = 0
        while True:
            if resource_version is None:
                try:
                    listing = await self._kube.request(
                        what, "GET", path, query=selector, forbidden_hint=SERVICE_HINT
                    )
                except ClusterError as exc:
                    failures += 1
                    if failures > WATCH_RETRY_LIMIT or not exc.transient:
                        raise
                    await asyncio.sleep(WATCH_BACKOFF.delay(failures))
                    continue
                # One more than the domain reads, so that it knows some were left out.
                slices = {}
                for item in _items(listing, MAX_SLICES + 1):
                    slices[_name(item) or f"#{len(slices)}"] = item
                metadata = listing.get("metadata")
                version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
                resource_version = version if isinstance(version, str) else ""
                yield list(slices.values())
            query = [
                *selector,
                ("watch", "true"),
                ("resourceVersion", resource_version),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", str(WATCH_SECONDS)),
            ]
            try:
                stream = self._kube.lines(what, path, query, seconds=WATCH_SECONDS)
                async with contextlib.aclosing(stream) as events:
                    async for event in events:
                        failures = 0
                        kind = event.get("type")
                        obj = event.get("object")
                        if not isinstance(obj, dict):
                            continue
                        if kind == "ERROR":
                            if obj.get("code") == 410:
                                resource_version = None
                                break
                            raise ClusterError(f"{what}: {str(obj.get('message'))[:300]}")
                        metadata = obj.get("metadata")
                        version = (
                            metadata.get("resourceVersion") if isinstance(metadata, dict) else None
                        )
                        if isinstance(version, str):
                            resource_version = version
                        name = _name(obj)
                        if kind not in ("ADDED", "MODIFIED", "DELETED") or name is None:
                            continue
                        if kind == "DELETED":
                            slices.pop(name, None)
                        elif name in slices or len(slices) <= MAX_SLICES:
                            slices[name] = obj
                        yield list(slices.values())
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                    continue
                failures += 1
                if failures > WATCH_RETRY_LIMIT or exc.status in (401, 403, 404):
                    raise self._kube.api_error(what, exc, SERVICE_HINT) from None
                await asyncio.sleep(WATCH_BACKOFF.delay(failures))
            except TRANSPORT_ERRORS as exc:
                failures += 1
                log.info("%s: the watch dropped (%s); resuming", what, type(exc).__name__)
                if failures > WATCH_RETRY_LIMIT:
                    raise self._kube.transport_error(what, exc) from None
                await asyncio.sleep(WATCH_BACKOFF.delay(failures))

    # -- the colours' Deployments --------------------------------------------------------------

    async def read_deployment(self, namespace: str, name: str) -> Deployment:
        return await self._cluster.read(namespace, name)

    def watch_deployment(self, namespace: str, name: str) -> AsyncGenerator[Deployment, None]:
        return self._cluster.watch(namespace, name)

    async def scale_deployment(self, namespace: str, name: str, patch: JsonDict) -> Deployment:
        """The plan's scale patch (`{"spec": {"replicas": N}}`) as a merge patch, as `kubectl
        scale` sets the replicas whatever else changed."""
        obj = await self._kube.request(
            f"scaling deployment {namespace}/{name}",
            "PATCH",
            f"{APPS}/namespaces/{namespace}/deployments/{name}",
            patch,
            content_type=MERGE_PATCH,
        )
        return parse_deployment(obj)

    async def replicaset_names(self, deployment: Deployment) -> frozenset[str]:
        """The ReplicaSets the Deployment controls, listed by its selector as kubectl does."""
        listing = await self._kube.request(
            f"listing the replicasets of deployment {deployment.namespace}/{deployment.name}",
            "GET",
            f"{APPS}/namespaces/{deployment.namespace}/replicasets",
            query=[("labelSelector", label_selector(deployment.selector))],
        )
        return frozenset(
            name
            for item in _items(listing, MAX_REPLICASETS)
            if is_owned_by(item, deployment.uid) and (name := _name(item)) is not None
        )

    # -- the lock (the rollbacks' Leases, named by the switch's lock key) ------------------------

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        return await self._cluster.acquire_lock(namespace, deployment, me, run, seconds)

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None:
        await self._cluster.renew_lock(namespace, deployment, me)

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        await self._cluster.release_lock(namespace, deployment, me)


class BlueGreenClusterRegistry:
    """The switch's clusters by context, on the wiring's `ClusterRegistry` (one client layer
    and one set of Leases per cluster, shared with the rollbacks)."""

    def __init__(self, registry: ClusterRegistry) -> None:
        self._registry = registry

    def cluster(self, context: str | None) -> KubeBlueGreen:
        # Holds nothing of its own: the registry's cluster (built on first use) is the state.
        return KubeBlueGreen(self._registry.cluster(context))
