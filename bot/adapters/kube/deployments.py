"""Deployments and their ReplicaSets through the cluster's client layer: read, history, the
rollback patch, and a watch that resumes on disconnect and lists again on 410 Gone."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot.adapters.kube.client import KubeClient
from bot.adapters.kube.errors import TRANSPORT_ERRORS
from bot.adapters.kube.parsing import label_selector, parse_deployment, parse_history
from bot.domain.errors import ClusterError, NotFound
from bot.domain.retry import Backoff
from bot.domain.rollback.models import Deployment, History, JsonDict

log = logging.getLogger(__name__)

# A watch asks the server to end the stream after this long; we then resume from the last
# resourceVersion, so a silently dead connection is noticed within this bound.
WATCH_SECONDS = 30
WATCH_RETRY_LIMIT = 8
WATCH_BACKOFF = Backoff(first=0.2, factor=2.0, cap=5.0, jitter=0.5)


class Deployments:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._apps = client.AppsV1Api(kube.api_client)

    async def ping(self) -> str:
        version = await self._kube.call(
            "asking the Kubernetes API for its version",
            client.VersionApi(self._kube.api_client).get_code,
        )
        return str(version.get("gitVersion", "unknown"))

    async def read(self, namespace: str, name: str) -> Deployment:
        obj = await self._kube.call(
            f"reading deployment {namespace}/{name}",
            self._apps.read_namespaced_deployment,
            name,
            namespace,
        )
        return parse_deployment(obj)

    async def history(self, namespace: str, name: str) -> History:
        what = f"reading the history of deployment {namespace}/{name}"
        deployment = await self._kube.call(
            what, self._apps.read_namespaced_deployment, name, namespace
        )
        selector = label_selector((deployment.get("spec") or {}).get("selector") or {})
        # Scoped by the Deployment's selector as kubectl does; ownership is checked when parsing.
        listing = await self._kube.call(
            what, self._apps.list_namespaced_replica_set, namespace, label_selector=selector
        )
        return parse_history(deployment, listing.get("items") or [])

    async def patch(
        self, namespace: str, name: str, patch: Sequence[JsonDict], *, dry_run: bool
    ) -> Deployment:
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        obj = await self._kube.call(
            f"patching deployment {namespace}/{name}",
            self._apps.patch_namespaced_deployment,
            name,
            namespace,
            list(patch),
            **kwargs,
        )
        return parse_deployment(obj)

    async def watch(self, namespace: str, name: str) -> AsyncGenerator[Deployment, None]:
        what = f"watching deployment {namespace}/{name}"
        resource_version: str | None = None
        failures = 0
        while True:
            if resource_version is None:
                listing = await self._kube.call(
                    what,
                    self._apps.list_namespaced_deployment,
                    namespace,
                    field_selector=f"metadata.name={name}",
                )
                items = listing.get("items") or []
                if not items:
                    raise NotFound(f"{what}: deployment not found")
                resource_version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
                yield parse_deployment(items[0])
            try:
                async for event in self._watch_events(namespace, name, resource_version):
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

    async def _watch_events(
        self, namespace: str, name: str, resource_version: str
    ) -> AsyncIterator[JsonDict]:
        """One watch request's events, read by a worker thread and handed to the loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def reader() -> None:
            try:
                response: Any = self._apps.list_namespaced_deployment(
                    namespace,
                    field_selector=f"metadata.name={name}",
                    watch=True,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_SECONDS,
                    _preload_content=False,
                    _request_timeout=(self._kube.timeout, WATCH_SECONDS + self._kube.timeout),
                )
                holder["response"] = response
                try:
                    for line in _lines(response.stream(None, decode_content=False)):
                        if stop.is_set():
                            return
                        put("event", json.loads(line))
                finally:
                    response.release_conn()
                put("end", None)
            except BaseException as exc:  # handed to the loop, which raises it
                if not stop.is_set():
                    put("error", exc)

        future = loop.run_in_executor(self._kube.executor, reader)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "event":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            stop.set()
            response = holder.get("response")
            if response is not None and not future.done():
                # Unblocks the reader thread's socket read so it ends now, not at timeout.
                try:
                    response.shutdown()
                except (AttributeError, RuntimeError, ValueError, OSError):
                    response.close()
            future.cancel()


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            if line.strip():
                yield line.decode("utf-8")
    if buffer.strip():
        yield buffer.decode("utf-8")
