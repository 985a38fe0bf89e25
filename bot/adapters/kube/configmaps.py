"""Which Slack message shows which alert group, kept in a ConfigMap in the bot's namespace.

One message per Alertmanager group (groupKey), across bot restarts and replicas: the first
replica to `claim` a group posts its message and `record_posted`s the ts; every other delivery of
that group (repeats, retries, resolution, another replica) gets the channel and ts to update.

Layout: ConfigMap `rollback-bot-alert-messages`, one data key per group, `g.` + the first 40 hex
digits of the groupKey's SHA-256 (groupKeys hold braces, quotes and spaces, which ConfigMap keys
may not), each value the JSON `{"groupKey", "channel", "ts", "status", "firstSeen", "updated"}`
(plus `claim`, the claimer's token, while `status` is "posting").

Concurrency is optimistic: every change reads the ConfigMap, decides, and writes it back with
the resourceVersion it read; a 409 (another replica wrote first) re-reads and decides again, so
two replicas can never both win a claim. A "posting" placeholder expires after `posting_ttl`, so
a replica that died between claiming and posting does not block the group forever. Old resolved
entries, entries not touched for a long time, and (oldest first) whatever keeps the data over
`max_bytes` are pruned on every write, keeping the ConfigMap well under its 1 MiB limit.

Calls go through the official client in this store's worker threads, always with a request
timeout, reading raw JSON; errors are `ClusterError`s of one sentence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot.usecases.alerts.index import (
    DEFAULT_NAME,
    KEEP_RESOLVED,
    KEEP_UNTOUCHED,
    LABELS,
    MAX_DATA_BYTES,
    POSTING_TTL,
    AlertMessageEntry,
    AlertMessageIndex,
    Claim,
    ClaimOutcome,
    MemoryAlertMessageIndex,
    _Index,
    service_account_namespace,
)
from bot.adapters.kube.errors import TRANSPORT_ERRORS, api_error, transport_error
from bot.adapters.kube.deployments import load_api_client
from bot.domain.errors import ClusterError, NotFound
from bot.domain.rollback.models import JsonDict

__all__ = [
    "AlertMessageEntry",
    "AlertMessageIndex",
    "AlertMessageStore",
    "Claim",
    "ClaimOutcome",
    "MemoryAlertMessageIndex",
    "service_account_namespace",
]


class AlertMessageStore(_Index):
    """The groupKey → Slack message index in a ConfigMap. Build with `from_kubeconfig`."""

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        *,
        name: str = DEFAULT_NAME,
        request_timeout: float = 10.0,
        posting_ttl: timedelta = POSTING_TTL,
        keep_resolved: timedelta = KEEP_RESOLVED,
        keep_untouched: timedelta = KEEP_UNTOUCHED,
        max_bytes: int = MAX_DATA_BYTES,
        attempts: int = 10,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_workers: int = 4,
    ) -> None:
        super().__init__(
            posting_ttl=posting_ttl,
            keep_resolved=keep_resolved,
            keep_untouched=keep_untouched,
            max_bytes=max_bytes,
            attempts=attempts,
            clock=clock,
        )
        self._api_client = api_client
        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self._timeout = request_timeout
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kube-am")

    @classmethod
    def from_kubeconfig(
        cls,
        kubeconfig: str | None,
        context: str | None,
        namespace: str,
        **options: Any,
    ) -> AlertMessageStore:
        """From the kubeconfig (or in-cluster config); `options` as for the constructor."""
        return cls(load_api_client(kubeconfig, context), namespace, **options)

    @property
    def where(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self._api_client.close)

    # -- plumbing -------------------------------------------------------------------------

    async def _read(self, what: str) -> JsonDict | None:
        try:
            return await self._call(
                what, self._core.read_namespaced_config_map, self.name, self.namespace
            )
        except NotFound:
            return None

    async def _write(self, what: str, version: str | None, data: dict[str, str]) -> None:
        body: JsonDict = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": LABELS},
            "data": data,
        }
        if version is None:
            await self._call(what, self._core.create_namespaced_config_map, self.namespace, body)
        else:
            body["metadata"]["resourceVersion"] = version
            await self._call(
                what, self._core.replace_namespaced_config_map, self.name, self.namespace, body
            )

    async def _call(self, what: str, call: Callable[..., Any], *args: Any) -> JsonDict:
        def blocking() -> JsonDict:
            response = call(*args, _preload_content=False, _request_timeout=self._timeout)
            try:
                data: JsonDict = json.loads(response.data)
                return data
            finally:
                response.release_conn()

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, blocking)
        except ApiException as exc:
            raise self._api_error(what, exc) from None
        except TRANSPORT_ERRORS as exc:
            raise self._transport_error(what, exc) from None

    def _api_error(self, what: str, exc: ApiException) -> ClusterError:
        return api_error(
            what,
            exc,
            str(self._api_client.configuration.host),
            forbidden_hint="the bot's role needs get, create and update on configmaps in "
            f"namespace {self.namespace}",
        )

    def _transport_error(self, what: str, exc: BaseException) -> ClusterError:
        server = str(self._api_client.configuration.host)
        return transport_error(what, exc, server, self._timeout)
