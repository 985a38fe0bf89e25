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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from bot.adapters.kube.errors import TRANSPORT_ERRORS, api_error, is_timeout, transport_error
from bot.domain.errors import ClusterError, ConfigError
from bot.domain.rollback.models import JsonDict

T = TypeVar("T")

IN_CLUSTER_HOST_ENV = "KUBERNETES_SERVICE_HOST"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
WORKER_THREADS = 16
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"


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
        # Watches hold a thread for their whole life: keep them off the loop's default executor.
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kube")

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
        await asyncio.get_running_loop().run_in_executor(None, self.api_client.close)

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn` in this cluster's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def call(
        self,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        forbidden_hint: str = "",
        **kwargs: Any,
    ) -> JsonDict:
        """A typed API method of the official client, its answer read as raw JSON."""

        def blocking() -> JsonDict:
            response = method(
                *args, _preload_content=False, _request_timeout=self.timeout, **kwargs
            )
            try:
                data: JsonDict = json.loads(response.data)
                return data
            finally:
                response.release_conn()

        return await self._guarded(what, blocking, forbidden_hint)

    async def request(
        self,
        what: str,
        method: str,
        path: str,
        body: JsonDict | None = None,
        *,
        content_type: str = "application/json",
        forbidden_hint: str = "",
    ) -> JsonDict:
        """A request by path through the ApiClient (its auth, TLS and pool).

        For Leases, Events and ConfigMaps: the client's typed API classes for them import every
        model of their group, a third of a second that each CLI run and the first click would pay.
        """

        def blocking() -> JsonDict:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = content_type
            request = self.api_client.param_serialize(
                method=method,
                resource_path=path,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*request, _request_timeout=self.timeout)
            raw: bytes = response.read()  # type: ignore[no-untyped-call]
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(
                    http_resp=response, body=raw.decode("utf-8", "replace"), data=None
                )
            data: JsonDict = json.loads(raw)
            return data

        return await self._guarded(what, blocking, forbidden_hint)

    async def _guarded(
        self, what: str, blocking: Callable[[], JsonDict], forbidden_hint: str
    ) -> JsonDict:
        try:
            return await self.run(blocking)
        except ApiException as exc:
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
