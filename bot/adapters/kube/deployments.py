"""Deployments and their ReplicaSets through the cluster's client layer: read, history, the
rollback patch, and a watch that resumes on disconnect and lists again on 410 Gone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Sequence

from kubernetes.client.exceptions import ApiException

from bot.adapters.kube.client import JSON_PATCH, KubeClient
from bot.adapters.kube.errors import TRANSPORT_ERRORS
from bot.adapters.kube.parsing import label_selector, parse_deployment, parse_history
from bot.domain.errors import ClusterError, NotFound
from bot.domain.retry import Backoff
from bot.domain.rollback.models import Deployment, History, JsonDict

log = logging.getLogger(__name__)

APPS = "/apis/apps/v1"
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

    async def read(self, namespace: str, name: str) -> Deployment:
        obj = await self._kube.request(
            f"reading deployment {namespace}/{name}",
            "GET",
            f"{APPS}/namespaces/{namespace}/deployments/{name}",
        )
        return parse_deployment(obj)

    async def history(self, namespace: str, name: str) -> History:
        what = f"reading the history of deployment {namespace}/{name}"
        deployment = await self._kube.request(
            what, "GET", f"{APPS}/namespaces/{namespace}/deployments/{name}"
        )
        selector = label_selector((deployment.get("spec") or {}).get("selector") or {})
        # Scoped by the Deployment's selector as kubectl does; ownership is checked when parsing.
        listing = await self._kube.request(
            what,
            "GET",
            f"{APPS}/namespaces/{namespace}/replicasets",
            query=[("labelSelector", selector)],
        )
        return parse_history(deployment, listing.get("items") or [])

    async def patch(
        self, namespace: str, name: str, patch: Sequence[JsonDict], *, dry_run: bool
    ) -> Deployment:
        obj = await self._kube.request(
            f"patching deployment {namespace}/{name}",
            "PATCH",
            f"{APPS}/namespaces/{namespace}/deployments/{name}",
            list(patch),
            query=[("dryRun", "All")] if dry_run else [],
            content_type=JSON_PATCH,
        )
        return parse_deployment(obj)

    async def watch(self, namespace: str, name: str) -> AsyncGenerator[Deployment, None]:
        what = f"watching deployment {namespace}/{name}"
        collection = f"{APPS}/namespaces/{namespace}/deployments"
        resource_version: str | None = None
        failures = 0
        while True:
            if resource_version is None:
                try:
                    listing = await self._kube.request(
                        what, "GET", collection, query=[("fieldSelector", f"metadata.name={name}")]
                    )
                except ClusterError as exc:
                    # One 503 must not end the story as a failure: list again, a few times.
                    failures += 1
                    if not exc.transient or failures > WATCH_RETRY_LIMIT:
                        raise
                    log.info("listing %s/%s failed (%s); again", namespace, name, exc)
                    await asyncio.sleep(WATCH_BACKOFF.delay(failures))
                    continue
                items = listing.get("items") or []
                if not items:
                    raise NotFound(f"{what}: deployment not found")
                resource_version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
                yield parse_deployment(items[0])
            try:
                query = [
                    ("fieldSelector", f"metadata.name={name}"),
                    ("watch", "true"),
                    ("resourceVersion", resource_version),
                    ("allowWatchBookmarks", "true"),
                    ("timeoutSeconds", str(WATCH_SECONDS)),
                ]
                stream = self._kube.lines(what, collection, query, seconds=WATCH_SECONDS)
                # Closed as soon as this loop is left (410, a deletion), not when collected.
                async with contextlib.aclosing(stream) as events:
                    async for event in events:
                        failures = 0
                        kind = event.get("type")
                        obj = event.get("object") or {}
                        if kind == "ERROR":
                            if obj.get("code") == 410:
                                log.info("watch of %s/%s expired; listing again", namespace, name)
                                resource_version = None
                                break
                            raise ClusterError(f"{what}: {obj.get('message', 'watch error')}")
                        resource_version = str(
                            (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                        )
                        if kind == "DELETED":
                            raise NotFound(f"{what}: the deployment was deleted")
                        if kind in ("ADDED", "MODIFIED"):
                            yield parse_deployment(obj)
            except ApiException as exc:
                if exc.status == 410:
                    resource_version = None
                    continue
                failures += 1
                if failures > WATCH_RETRY_LIMIT or exc.status in (401, 403, 404):
                    raise self._kube.api_error(what, exc) from None
                await asyncio.sleep(WATCH_BACKOFF.delay(failures))
            except TRANSPORT_ERRORS as exc:
                failures += 1
                log.info(
                    "watch of %s/%s dropped (%s); resuming", namespace, name, type(exc).__name__
                )
                if failures > WATCH_RETRY_LIMIT:
                    raise self._kube.transport_error(what, exc) from None
                await asyncio.sleep(WATCH_BACKOFF.delay(failures))
