"""The one Kubernetes client layer: per kubeconfig context, one official `ApiClient` (its auth,
TLS and connection pool) and one pool of worker threads, shared by every adapter of that cluster
(Deployments, Leases, Events, the alert index's ConfigMap).

Every call runs in the worker threads, never on the event loop, always with a request timeout,
and is read as raw JSON (so the rollback patch carries the pod template exactly as the API
server stored it). Failures become one-sentence `ClusterError`s; credentials never reach them.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from bot.adapters.kube.errors import TRANSPORT_ERRORS, api_error, is_timeout, transport_error
from bot.adapters.kube.kubeconfig import explain
from bot.domain.errors import ClusterError, ConfigError
from bot.domain.rollback.models import JsonDict

IN_CLUSTER_HOST_ENV = "KUBERNETES_SERVICE_HOST"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
WORKER_THREADS = 16
# A watch holds its thread for as long as it follows a rollout: watches get threads of their own,
# so however many rollouts run, Lease renewals, reads and /readyz always find a free worker.
WATCH_THREADS = 64
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def load_api_client(
    kubeconfig: str | None, context: str | None, *, retries: int = 1
) -> client.ApiClient:
    """An ApiClient from the kubeconfig (paths joined like $KUBECONFIG), else in-cluster config.

    Raises ConfigError with one sentence (for a kubeconfig: the file, the line, what is wrong);
    the kubeconfig's credentials never reach the message.
    """
    configuration = client.Configuration()
    candidates = kubeconfig or os.environ.get("KUBECONFIG") or ""
    default = Path("~/.kube/config").expanduser()
    if candidates or default.exists():
        _load_kubeconfig(candidates or str(default), context, configuration)
    elif os.environ.get(IN_CLUSTER_HOST_ENV):
        if context:
            raise ConfigError(f"context {context!r} was asked for, but there is no kubeconfig")
        try:
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except ConfigException as exc:
            raise ConfigError(
                f"cannot use the in-cluster configuration: {_first_line(str(exc))}"
            ) from None
    else:
        raise ConfigError(
            "no Kubernetes configuration: set KUBECONFIG or --kubeconfig, or run inside a cluster"
        )
    configuration.retries = retries
    # As many pooled connections as worker threads, so concurrent calls reuse them.
    configuration.connection_pool_maxsize = WORKER_THREADS
    return client.ApiClient(configuration)


# What the official loader raises on a kubeconfig it cannot use: its own ConfigException, the
# YAML parser's errors, and plain Python errors where the file's shape is not what it expects.
_KUBECONFIG_ERRORS = (
    ConfigException, yaml.YAMLError, OSError, TypeError, AttributeError, KeyError, ValueError,
)  # fmt: skip


def _load_kubeconfig(files: str, context: str | None, configuration: client.Configuration) -> None:
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=files,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except _KUBECONFIG_ERRORS as exc:
        explained = explain(files, context)
        if explained is None:
            # Nothing wrong with the file's structure: what the client said (its ConfigException
            # names keys and names, never values), else no more than the kind of error.
            said = _first_line(str(exc)) if isinstance(exc, ConfigException) else ""
            if isinstance(exc, OSError):
                said = f"cannot read it ({exc.strerror})"
            explained = f"cannot use kubeconfig {files}: {said or 'it is not a valid kubeconfig'}"
        raise ConfigError(explained) from None
    if not configuration.host:  # the client accepts a cluster without a server, then calls ''
        raise ConfigError(
            explain(files, context) or f"kubeconfig {files}: the cluster in use has no 'server'"
        )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid configuration"


def service_account_namespace(path: Path = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
    """The namespace the bot's Pod runs in (its service account's), or None outside a cluster."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class KubeClient:
    """One cluster's connection: build with `from_kubeconfig`; `close` when done.

    `on_error` hears the kind of every failed call ("404", "timeout", "unreachable") for the
    metrics; `forbidden_hint` is added to 401/403 errors by the adapters that know their RBAC.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        request_timeout: float = 10.0,
        max_workers: int = WORKER_THREADS,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.api_client = api_client
        self.timeout = request_timeout
        self._on_error = on_error
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kube")
        self.watch_executor = ThreadPoolExecutor(
            max_workers=WATCH_THREADS, thread_name_prefix="kube-watch"
        )

    @classmethod
    def from_kubeconfig(
        cls,
        kubeconfig: str | None,
        context: str | None,
        *,
        request_timeout: float = 10.0,
        on_error: Callable[[str], None] | None = None,
    ) -> KubeClient:
        return cls(
            load_api_client(kubeconfig, context), request_timeout=request_timeout, on_error=on_error
        )

    @property
    def server(self) -> str:
        return str(self.api_client.configuration.host)

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.watch_executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self.api_client.close)

    async def request(
        self,
        what: str,
        method: str,
        path: str,
        body: JsonDict | list[JsonDict] | None = None,
        *,
        query: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
        forbidden_hint: str = "",
        missing_ok: bool = False,
    ) -> JsonDict:
        """One request by path through the ApiClient (its auth, TLS and pool), read as JSON.

        By path rather than through the client's typed API classes: those import every model of
        their API group (AppsV1Api alone: 159 modules, 0.6 s and 12 MiB) for nothing, since
        the answers are read as raw JSON anyway. `missing_ok`: a 404 is an answer the caller
        expects (an object of the bot's own not made yet), raised as NotFound but not counted
        among the API's errors.
        """

        def blocking() -> JsonDict:
            response = self._send(method, path, body, query, content_type, self.timeout)
            try:
                data: JsonDict = json.loads(response.read())
                return data
            finally:
                response.response.release_conn()

        return await self._guarded(what, blocking, forbidden_hint, missing_ok=missing_ok)

    def _send(
        self,
        method: str,
        path: str,
        body: JsonDict | list[JsonDict] | None,
        query: Sequence[tuple[str, str]],
        content_type: str,
        timeout: float | tuple[float, float],
    ) -> Any:
        """The request sent, its status checked (ApiException); the body not read yet."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response: Any = self.api_client.call_api(*request, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            raw: bytes = response.read()
            response.response.release_conn()
            raise ApiException.from_response(
                http_resp=response, body=raw.decode("utf-8", "replace"), data=None
            )
        return response

    async def lines(
        self, what: str, path: str, query: Sequence[tuple[str, str]], *, seconds: float
    ) -> AsyncGenerator[JsonDict, None]:
        """A streamed GET (a watch), one JSON object per line, read by a worker thread and
        handed to the loop. Leaving the iteration early closes the connection at once."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def put(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def reader() -> None:
            try:
                timeouts = (self.timeout, seconds + self.timeout)
                response = self._send("GET", path, None, query, "application/json", timeouts)
                stream = holder["stream"] = response.response
                try:
                    for line in _lines(stream.stream(None, decode_content=False)):
                        if stop.is_set():
                            return
                        put("line", json.loads(line))
                finally:
                    stream.release_conn()
                put("end", None)
            except BaseException as exc:  # handed to the loop, which raises it
                if not stop.is_set():
                    put("error", exc)

        future = loop.run_in_executor(self.watch_executor, reader)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "line":
                    yield value
                elif kind == "error":
                    if isinstance(value, (ApiException, *TRANSPORT_ERRORS)):
                        raise value  # the caller tells these apart (410, a dropped watch)
                    raise ClusterError(f"{what}: {type(value).__name__}") from None
                else:
                    return
        finally:
            stop.set()
            stream = holder.get("stream")
            if stream is not None and not future.done():
                # Unblocks the reader thread's socket read so it ends now, not at its timeout.
                try:
                    stream.shutdown()
                except (AttributeError, RuntimeError, ValueError, OSError):
                    stream.close()
            future.cancel()

    async def _guarded(
        self,
        what: str,
        blocking: Callable[[], JsonDict],
        forbidden_hint: str,
        *,
        missing_ok: bool = False,
    ) -> JsonDict:
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, blocking)
        except ApiException as exc:
            if missing_ok and exc.status == HTTPStatus.NOT_FOUND:
                raise api_error(what, exc, self.server) from None
            raise self.api_error(what, exc, forbidden_hint) from None
        except TRANSPORT_ERRORS as exc:
            raise self.transport_error(what, exc) from None

    def api_error(self, what: str, exc: ApiException, forbidden_hint: str = "") -> ClusterError:
        self._count(str(exc.status))
        return api_error(what, exc, self.server, forbidden_hint=forbidden_hint)

    def transport_error(self, what: str, exc: BaseException) -> ClusterError:
        self._count("timeout" if is_timeout(exc) else "unreachable")
        return transport_error(what, exc, self.server, self.timeout)

    def _count(self, kind: str) -> None:
        if self._on_error is not None:
            self._on_error(kind)


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
