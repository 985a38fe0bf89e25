"""Audit sinks: one JSON object per line on the `rollback_bot.audit` logger, and a Kubernetes
Event on the Deployment, so `kubectl describe` and `kubectl get events` tell the story too."""

from __future__ import annotations

import json
import logging
from typing import Protocol

from bot.domain.audit import AuditRecord
from bot.domain.rollback.models import Deployment

audit_log = logging.getLogger("rollback_bot.audit")


class JsonLogSink:
    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        audit_log.info(json.dumps(record.to_json(), sort_keys=True))


class EventRecorder(Protocol):
    async def record_event(
        self, deployment: Deployment, reason: str, message: str, *, warning: bool, source: str
    ) -> None: ...


class EventRecorders(Protocol):
    """The Event recorder of each cluster, by kubeconfig context."""

    def events(self, context: str | None) -> EventRecorder: ...


class KubernetesEventSink:
    """An Event on the Deployment (it needs the Deployment's uid, so only when it is known)."""

    def __init__(self, clusters: EventRecorders, source: str) -> None:
        self._clusters = clusters
        self._source = source

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        if deployment is None:
            return
        await self._clusters.events(record.context).record_event(
            deployment,
            record.event_reason,
            record.sentence(),
            warning=record.warning,
            source=self._source,
        )
