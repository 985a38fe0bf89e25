"""Workloads through the cluster's client layer: Deployments and their ReplicaSets, StatefulSets
and DaemonSets and their ControllerRevisions. Read, history, the rollback patch, and a watch that
resumes on disconnect and lists again on 410 Gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from bot.adapters.kube.client import JSON_PATCH, MERGE_PATCH, KubeClient
from bot.adapters.kube.errors import TRANSPORT_ERRORS
from bot.adapters.kube.parsing import (
    label_selector,
    parse_deployment,
    parse_history,
    parse_workload,
    parse_workload_history,
)
from bot.domain.errors import ClusterError, NotFound
from bot.domain.retry import Backoff
from bot.domain.rollback.models import (
    Deployment,
    DeploymentChange,
    History,
    JsonDict,
    WorkloadKind,
)
from bot.domain.rollback.workload_undo import STRATEGIC_MERGE_PATCH

log = logging.getLogger(__name__)

APPS = "/apis/apps/v1"
DEPLOYMENT = WorkloadKind.DEPLOYMENT
# A watch asks the server to end the stream after this long; we then resume from the last
# resourceVersion, so a silently dead connection is noticed within this bound.
WATCH_SECONDS = 30
WATCH_RETRY_LIMIT = 8
WATCH_BACKOFF = Backoff(first=0.2, factor=2.0, cap=5.0, jitter=0.5)


class Deployments:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def ping(self) -> str:
        version = await self._kube.request(
            "asking the Kubernetes API for its version", "GET", "/version"
        )
        return str(version.get("gitVersion", "unknown"))

    async def read(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> Deployment:
        if kind in (WorkloadKind.STATEFULSET, WorkloadKind.DAEMONSET):
            # its revision number is known from its history only
            return (await self.history(namespace, name, kind=kind)).deployment
        if kind is not DEPLOYMENT:
            obj = await self._kube.request(
                f"reading {kind.noun} {namespace}/{name}",
                "GET",
                f"{kind.api_path}/namespaces/{namespace}/{kind.plural}/{name}",
            )
            return parse_workload(kind, obj)
        obj = await self._kube.request(
            f"reading deployment {namespace}/{name}",
            "GET",
            f"{APPS}/namespaces/{namespace}/deployments/{name}",
        )
        return parse_deployment(obj)

    async def history(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> History:
        what = f"reading the history of {kind.noun} {namespace}/{name}"
        workload = await self._kube.request(
            what, "GET", f"{kind.api_path}/namespaces/{namespace}/{kind.plural}/{name}"
        )
        selector = label_selector((workload.get("spec") or {}).get("selector") or {})
        # Scoped by the workload's selector as kubectl does; ownership is checked when parsing.
        owned = (
            "replicasets" if kind in (DEPLOYMENT, WorkloadKind.ROLLOUT) else "controllerrevisions"
        )
        listing = await self._kube.request(
            what,
            "GET",
            f"{APPS}/namespaces/{namespace}/{owned}",
            query=[("labelSelector", selector)],
        )
        items = listing.get("items") or []
        if kind is DEPLOYMENT:
            return parse_history(workload, items)
        return parse_workload_history(kind, workload, items)

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
        """A JSON Patch (a list of operations: a Deployment's, a Rollout's undo), or one object:
        a StatefulSet's or DaemonSet's strategic merge patch, as kubectl sends it, or a JSON merge
        patch of a Rollout (its abort, on the `status` subresource, as the plugin sends it: again
        without the subresource when the CRD has none)."""
        body: Any = patch if isinstance(patch, dict) else list(patch)
        if not isinstance(patch, dict):
            content_type = JSON_PATCH
        elif kind is WorkloadKind.ROLLOUT:
            content_type = MERGE_PATCH
        else:
            content_type = STRATEGIC_MERGE_PATCH
        path = f"{kind.api_path}/namespaces/{namespace}/{kind.plural}/{name}"
        what = f"patching {kind.noun} {namespace}/{name}"
        query = [("dryRun", "All")] if dry_run else []
        if subresource is not None:
            try:
                obj = await self._kube.request(
                    what, "PATCH", f"{path}/{subresource}", body, query=query,
                    content_type=content_type,
                )  # fmt: skip
                return parse_workload(kind, obj)
            except NotFound:
                log.info("%s: no %s subresource; patching the object", what, subresource)
        obj = await self._kube.request(
            what, "PATCH", path, body, query=query, content_type=content_type
        )
        return parse_workload(kind, obj)

    async def watch(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> AsyncGenerator[Deployment, None]:
        what = f"watching {kind.noun} {namespace}/{name}"
        events = self._events(
            what, namespace, f"metadata.name={name}", WATCH_RETRY_LIMIT, kind=kind
        )
        async with contextlib.aclosing(events) as changes:
            async for change in changes:
                if change.listed and not change.objects:
                    raise NotFound(f"{what}: {kind.noun} not found")
                if change.deleted:
                    raise NotFound(f"{what}: the {kind.noun} was deleted")
                for obj in change.objects[:1]:
                    yield parse_workload(kind, obj)

    async def watch_namespace(self, namespace: str) -> AsyncGenerator[DeploymentChange, None]:
        """Every Deployment of `namespace` (one per change; all of them again after a re-list),
        then each change, for as long as it is iterated: it never gives up, backing off while
        the cluster cannot be reached. An object that does not parse is skipped (logged)."""
        what = f"watching the deployments of namespace {namespace}"
        events = self._events(what, namespace, None, None)
        async with contextlib.aclosing(events) as changes:
            async for change in changes:
                for obj in change.objects:
                    name = str((obj.get("metadata") or {}).get("name") or "")[:253]
                    if change.deleted:
                        yield DeploymentChange(name, None)
                        continue
                    try:
                        yield DeploymentChange(name, parse_deployment(obj))
                    except (ValueError, TypeError, KeyError) as exc:
                        log.warning("deployment %s/%s skipped: %s", namespace, name, exc)

    async def _events(
        self,
        what: str,
        namespace: str,
        field_selector: str | None,
        retry_limit: int | None,
        *,
        kind: WorkloadKind = DEPLOYMENT,
    ) -> AsyncGenerator[_Change, None]:
        """A list, then the watch from its resourceVersion, resumed after a disconnect and
        listed again on 410 Gone. `retry_limit` failures in a row end it (None: never)."""
        collection = f"{kind.api_path}/namespaces/{namespace}/{kind.plural}"
        selector = [("fieldSelector", field_selector)] if field_selector else []
        resource_version: str | None = None
        failures = 0

        def give_up() -> bool:
            return retry_limit is not None and failures > retry_limit

        while True:
            if resource_version is None:
                try:
                    listing = await self._kube.request(what, "GET", collection, query=selector)
                except ClusterError as exc:
                    # One 503 must not end a story as a failure: list again, a few times.
                    failures += 1
                    if give_up() or (retry_limit is not None and not exc.transient):
                        raise
                    log.info("%s: listing failed (%s); again", what, exc)
                    await asyncio.sleep(WATCH_BACKOFF.delay(failures))
                    continue
                resource_version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
                items = [item for item in listing.get("items") or [] if isinstance(item, dict)]
                yield _Change(tuple(items), listed=True)
            try:
                query = [
                    *selector,
                    ("watch", "true"),
                    ("resourceVersion", resource_version),
                    ("allowWatchBookmarks", "true"),
                    ("timeoutSeconds", str(WATCH_SECONDS)),
                ]
                stream = self._kube.lines(what, collection, query, seconds=WATCH_SECONDS)
                opened, seen = asyncio.get_running_loop().time(), 0
                # Closed as soon as this loop is left (410, a deletion), not when collected.
                async with contextlib.aclosing(stream) as events:
                    async for event in events:
                        failures, seen = 0, seen + 1
                        happened = event.get("type")
                        obj = event.get("object") or {}
                        if happened == "ERROR":
                            if obj.get("code") == 410:
                                log.info("%s: the watch expired; listing again", what)
                                resource_version = None
                                break
                            raise ClusterError(f"{what}: {obj.get('message', 'watch error')}")
                        resource_version = str(
                            (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                        )
                        if happened in ("ADDED", "MODIFIED", "DELETED") and isinstance(obj, dict):
                            yield _Change((obj,), deleted=happened == "DELETED")
                # A watch that ends at once with nothing (a proxy or a draining API server
                # closing it) is not asked again in a tight loop.
                if not seen and asyncio.get_running_loop().time() - opened < 1.0:
                    failures += 1
                    await asyncio.sleep(WATCH_BACKOFF.delay(failures))
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                    continue
                failures += 1
                if give_up() or (retry_limit is not None and exc.status in (401, 403, 404)):
                    raise self._kube.api_error(what, exc) from None
                await asyncio.sleep(WATCH_BACKOFF.delay(failures))
            except ClusterError:
                if retry_limit is not None:
                    raise
                failures += 1
                resource_version = None
                await asyncio.sleep(WATCH_BACKOFF.delay(failures))
            except TRANSPORT_ERRORS as exc:
                failures += 1
                log.info("%s: the watch dropped (%s); resuming", what, type(exc).__name__)
                if give_up():
                    raise self._kube.transport_error(what, exc) from None
                await asyncio.sleep(WATCH_BACKOFF.delay(failures))


@dataclass(frozen=True)
class _Change:
    """What one list or watch event held: the objects, and whether they were deleted."""

    objects: tuple[JsonDict, ...]
    listed: bool = False
    deleted: bool = False
