"""The one adapter that speaks to Kubernetes, with the official (synchronous) client.

Every call runs in this adapter's own worker threads, never on the event loop, and always with
a request timeout. Responses are read as raw JSON so the rollback patch carries the pod template
exactly as the API server stored it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from bot.adapters.kube.errors import TRANSPORT_ERRORS, api_error, is_timeout, transport_error
from bot.adapters.kube.parsing import label_selector, parse_deployment, parse_history
from bot.domain.errors import ClusterError, ConfigError, Conflict, NotFound
from bot.domain.rollback.locks import is_free, lease_name, lease_state, run_annotations
from bot.domain.rollback.models import Deployment, History, JsonDict, RunInfo
from bot.domain.times import kube_time, micro_time

log = logging.getLogger(__name__)

T = TypeVar("T")

IN_CLUSTER_HOST_ENV = "KUBERNETES_SERVICE_HOST"
# A watch asks the server to end the stream after this long; we then resume from the last
# resourceVersion, so a silently dead connection is noticed within this bound.
WATCH_SECONDS = 30
WATCH_RETRY_LIMIT = 8
WORKER_THREADS = 16
LEASES = "/apis/coordination.k8s.io/v1"
MERGE_PATCH = "application/merge-patch+json"
WATCH_BACKOFF_MAX = 5.0


def load_api_client(
    kubeconfig: str | None, context: str | None, *, retries: int = 1
) -> client.ApiClient:
    """An ApiClient from the kubeconfig (paths joined like $KUBECONFIG), else in-cluster config.

    Raises ConfigError with one sentence; the kubeconfig's credentials never reach the message.
    """
    configuration = client.Configuration()
    candidates = kubeconfig or os.environ.get("KUBECONFIG") or ""
    default = Path("~/.kube/config").expanduser()
    try:
        if candidates or default.exists():
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=candidates or str(default),
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        elif os.environ.get(IN_CLUSTER_HOST_ENV):
            if context:
                raise ConfigError(f"context {context!r} was asked for, but there is no kubeconfig")
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            raise ConfigError(
                "no Kubernetes configuration: set KUBECONFIG or --kubeconfig, "
                "or run inside a cluster"
            )
    except ConfigException as exc:
        where = candidates or str(default)
        raise ConfigError(f"cannot use kubeconfig {where}: {_first_line(str(exc))}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {candidates}: {exc.strerror}") from None
    configuration.retries = retries
    # As many pooled connections as worker threads, so concurrent calls reuse them.
    configuration.connection_pool_maxsize = WORKER_THREADS
    return client.ApiClient(configuration)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid configuration"


class KubernetesCluster:
    """`Cluster` over the official client. Build with `from_kubeconfig`; `close` when done."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout: float = 10.0,
        max_workers: int = WORKER_THREADS,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._on_error = on_error
        self._api_client = api_client
        self._apps = client.AppsV1Api(api_client)
        self._timeout = request_timeout
        # Watches hold a thread for their whole life: keep them off the loop's default executor.
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kube")

    @classmethod
    def from_kubeconfig(
        cls,
        kubeconfig: str | None,
        context: str | None,
        *,
        request_timeout: float = 10.0,
        on_error: Callable[[str], None] | None = None,
    ) -> KubernetesCluster:
        return cls(
            load_api_client(kubeconfig, context),
            request_timeout=request_timeout,
            on_error=on_error,
        )

    @property
    def server(self) -> str:
        return str(self._api_client.configuration.host)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self._api_client.close)

    # -- plumbing ------------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _json(
        self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> JsonDict:
        """A typed API method of the official client, its answer read as raw JSON."""

        def blocking() -> JsonDict:
            response = call(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            try:
                data: JsonDict = json.loads(response.data)
                return data
            finally:
                response.release_conn()

        return await self._guarded(what, blocking)

    async def _rest(
        self,
        what: str,
        method: str,
        path: str,
        body: JsonDict | None = None,
        *,
        content_type: str = "application/json",
    ) -> JsonDict:
        """A request through the official client's ApiClient (its auth, TLS and pool) by path.

        For Leases and Events: the client's typed API classes for them import every model of
        their group, a third of a second that each CLI run and the first click would pay.
        """

        def blocking() -> JsonDict:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            request = self._api_client.param_serialize(
                method=method,
                resource_path=path,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self._api_client.call_api(*request, _request_timeout=self._timeout)
            raw: bytes = response.read()  # type: ignore[no-untyped-call]
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(
                    http_resp=response, body=raw.decode("utf-8", "replace"), data=None
                )
            data: JsonDict = json.loads(raw)
            return data

        return await self._guarded(what, blocking)

    async def _guarded(self, what: str, blocking: Callable[[], JsonDict]) -> JsonDict:
        try:
            return await self._run(blocking)
        except ApiException as exc:
            raise self._api_error(what, exc) from None
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(what, exc) from None

    def _count(self, kind: str) -> None:
        if self._on_error is not None:
            self._on_error(kind)

    def _api_error(self, what: str, exc: ApiException) -> ClusterError:
        self._count(str(exc.status))
        return api_error(what, exc, self.server)

    def _transport_error(self, what: str, exc: BaseException) -> ClusterError:
        self._count("timeout" if is_timeout(exc) else "unreachable")
        return transport_error(what, exc, self.server, self._timeout)

    # -- Cluster -------------------------------------------------------------------------

    async def ping(self) -> str:
        version = await self._json(
            "asking the Kubernetes API for its version",
            client.VersionApi(self._api_client).get_code,
        )
        return str(version.get("gitVersion", "unknown"))

    async def read(self, namespace: str, name: str) -> Deployment:
        obj = await self._json(
            f"reading deployment {namespace}/{name}",
            self._apps.read_namespaced_deployment,
            name,
            namespace,
        )
        return parse_deployment(obj)

    async def history(self, namespace: str, name: str) -> History:
        what = f"reading the history of deployment {namespace}/{name}"
        deployment = await self._json(what, self._apps.read_namespaced_deployment, name, namespace)
        selector = label_selector((deployment.get("spec") or {}).get("selector") or {})
        # Scoped by the Deployment's selector as kubectl does; ownership is checked when parsing.
        listing = await self._json(
            what, self._apps.list_namespaced_replica_set, namespace, label_selector=selector
        )
        return parse_history(deployment, listing.get("items") or [])

    async def patch(
        self, namespace: str, name: str, patch: Sequence[JsonDict], *, dry_run: bool
    ) -> Deployment:
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        obj = await self._json(
            f"patching deployment {namespace}/{name}",
            self._apps.patch_namespaced_deployment,
            name,
            namespace,
            list(patch),
            **kwargs,
        )
        return parse_deployment(obj)

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        """Take the Deployment's rollback Lease; None when taken, else who holds it.

        Optimistic: a create or update that loses a race (409) re-reads and decides again.
        """
        name = lease_name(deployment)
        what = f"locking deployment {namespace}/{deployment}"
        for _ in range(3):
            now = datetime.now(UTC)
            body: JsonDict = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "annotations": run_annotations(run),
                },
                "spec": {
                    "holderIdentity": me,
                    "leaseDurationSeconds": seconds,
                    "acquireTime": micro_time(now),
                    "renewTime": micro_time(now),
                },
            }
            try:
                current = await self._rest(
                    what, "GET", f"{LEASES}/namespaces/{namespace}/leases/{name}"
                )
            except NotFound:
                try:
                    await self._rest(what, "POST", f"{LEASES}/namespaces/{namespace}/leases", body)
                    return None
                except Conflict:
                    continue
            state = lease_state(current)
            if not is_free(state, now, me):
                return state.run or run
            body["metadata"]["resourceVersion"] = state.resource_version
            try:
                await self._rest(
                    what, "PUT", f"{LEASES}/namespaces/{namespace}/leases/{name}", body
                )
                return None
            except Conflict:
                continue
        raise Conflict(f"{what}: the lock kept changing under us; try again")

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None:
        patch = {"spec": {"holderIdentity": me, "renewTime": micro_time(datetime.now(UTC))}}
        await self._rest(
            f"renewing the lock of deployment {namespace}/{deployment}",
            "PATCH",
            f"{LEASES}/namespaces/{namespace}/leases/{lease_name(deployment)}",
            patch,
            content_type=MERGE_PATCH,
        )

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        name = lease_name(deployment)
        what = f"unlocking deployment {namespace}/{deployment}"
        current = lease_state(
            await self._rest(what, "GET", f"{LEASES}/namespaces/{namespace}/leases/{name}")
        )
        if current.holder != me:
            return
        await self._rest(
            what,
            "PATCH",
            f"{LEASES}/namespaces/{namespace}/leases/{name}",
            {"spec": {"holderIdentity": None, "renewTime": None, "acquireTime": None}},
            content_type=MERGE_PATCH,
        )

    async def record_event(
        self, deployment: Deployment, reason: str, message: str, *, warning: bool, source: str
    ) -> None:
        now = datetime.now(UTC)
        body: JsonDict = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{deployment.name}.", "namespace": deployment.namespace},
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment.name,
                "namespace": deployment.namespace,
                "uid": deployment.uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "rollback-bot"},
            "reportingComponent": "rollback-bot",
            "reportingInstance": source,
            "firstTimestamp": kube_time(now),
            "lastTimestamp": kube_time(now),
            "count": 1,
        }
        await self._rest(
            f"recording an event on deployment {deployment.namespace}/{deployment.name}",
            "POST",
            f"/api/v1/namespaces/{deployment.namespace}/events",
            body,
        )

    async def watch(self, namespace: str, name: str) -> AsyncGenerator[Deployment, None]:
        what = f"watching deployment {namespace}/{name}"
        resource_version: str | None = None
        failures = 0
        while True:
            if resource_version is None:
                listing = await self._json(
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
                    raise self._api_error(what, exc) from None
                await asyncio.sleep(min(WATCH_BACKOFF_MAX, 0.1 * 2**failures))
            except TRANSPORT_ERRORS as exc:
                failures += 1
                log.info(
                    "watch of %s/%s dropped (%s); resuming", namespace, name, type(exc).__name__
                )
                if failures > WATCH_RETRY_LIMIT:
                    raise self._transport_error(what, exc) from None
                await asyncio.sleep(min(WATCH_BACKOFF_MAX, 0.1 * 2**failures))

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
                    _request_timeout=(self._timeout, WATCH_SECONDS + self._timeout),
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

        future = loop.run_in_executor(self._executor, reader)
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
