"""Kubernetes Events on a Deployment: the audit trail where `kubectl describe` shows it."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.kube.client import KubeClient
from bot.domain.rollback.models import Deployment, JsonDict
from bot.domain.times import kube_time

EVENT_MESSAGE_MAX = 1024


class Events:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def record_event(
        self, deployment: Deployment, reason: str, message: str, *, warning: bool, source: str
    ) -> None:
        now = datetime.now(UTC)
        body: JsonDict = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{deployment.name}.", "namespace": deployment.namespace},
            "involvedObject": {
                "apiVersion": deployment.kind.api_path.removeprefix("/apis/"),
                "kind": deployment.kind.value,
                "name": deployment.name,
                "namespace": deployment.namespace,
                "uid": deployment.uid,
            },
            "reason": reason,
            "message": message[:EVENT_MESSAGE_MAX],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "rollback-bot"},
            "reportingComponent": "rollback-bot",
            "reportingInstance": source,
            "firstTimestamp": kube_time(now),
            "lastTimestamp": kube_time(now),
            "count": 1,
        }
        await self._kube.request(
            f"recording an event on deployment {deployment.namespace}/{deployment.name}",
            "POST",
            f"/api/v1/namespaces/{deployment.namespace}/events",
            body,
        )
