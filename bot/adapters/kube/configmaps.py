"""One ConfigMap of the bot's own as a document with a resourceVersion: where the alert message
index is kept (`bot.usecases.alerts.index` decides what goes in it). Read and replaced by path
through the cluster's shared client layer, so a write that lost a race is a `Conflict`."""

from __future__ import annotations

from collections.abc import Mapping

from bot.adapters.kube.client import KubeClient
from bot.domain.errors import NotFound
from bot.domain.rollback.models import JsonDict

DEFAULT_NAME = "rollback-bot-alert-messages"
LABELS = {"app.kubernetes.io/name": "rollback-bot", "app.kubernetes.io/component": "alert-messages"}


class ConfigMapDocument:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        name: str = DEFAULT_NAME,
        component: str = "alert-messages",
        *,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self._kube = kube
        self.namespace = namespace
        self.name = name
        self._labels = {**LABELS, "app.kubernetes.io/component": component, **(labels or {})}
        self._hint = (
            f"the bot's role needs get, create and update on configmaps in namespace {namespace}"
        )

    @property
    def where(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    async def read(self, what: str) -> JsonDict | None:
        try:
            return await self._kube.request(
                what,
                "GET",
                f"/api/v1/namespaces/{self.namespace}/configmaps/{self.name}",
                forbidden_hint=self._hint,
                missing_ok=True,
            )
        except NotFound:
            return None

    async def write(self, what: str, version: str | None, data: dict[str, str]) -> str:
        body: JsonDict = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self._labels},
            "data": data,
        }
        collection = f"/api/v1/namespaces/{self.namespace}/configmaps"
        if version is None:
            written = await self._kube.request(
                what, "POST", collection, body, forbidden_hint=self._hint
            )
        else:
            body["metadata"]["resourceVersion"] = version
            written = await self._kube.request(
                what, "PUT", f"{collection}/{self.name}", body, forbidden_hint=self._hint
            )
        return str(((written or {}).get("metadata") or {}).get("resourceVersion", ""))
