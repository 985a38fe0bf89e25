"""Audit sinks: one JSON object per line on the `rollback_bot.audit` logger, and a Kubernetes
Event on the Deployment, so `kubectl describe` and `kubectl get events` tell the story too."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Protocol

from bot.domain.audit import AuditRecord
from bot.domain.errors import ClusterError
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.models import Deployment
from bot.observability.logs import FIELDS

audit_log = logging.getLogger("rollback_bot.audit")


class JsonLogSink:
    """The audit line on its own logger (`configure_logging` keeps it at INFO whatever the
    log level), for the pod's log collector: one flat JSON object, the record's fields beside
    `message` (its sentence), never JSON inside it."""

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        audit_log.info("%s", record.sentence(), extra={FIELDS: record.to_json()})


class JsonFileSink:
    """Audit lines appended to a file, one JSON object each (the CLI's own trail: a terminal is
    no place for them, and a log level must not drop them)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        line = json.dumps(record.to_json(), sort_keys=True) + "\n"
        await asyncio.to_thread(self._append, line)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line)


class EventRecorder(Protocol):
    async def record_event(
        self, deployment: Deployment, reason: str, message: str, *, warning: bool, source: str
    ) -> None: ...


class EventRecorders(Protocol):
    """The Event recorder of each cluster, by kubeconfig context."""

    def events(self, context: str | None) -> EventRecorder: ...


EVENT_ATTEMPTS = 3
EVENT_BACKOFF = Backoff(first=0.2, factor=2.0, cap=1.0)


class KubernetesEventSink:
    """An Event on the Deployment (it needs the Deployment's uid, so only when it is known),
    retried a few times: a failed write is a lost line of `kubectl describe`."""

    def __init__(self, clusters: EventRecorders, source: str) -> None:
        self._clusters = clusters
        self._source = source

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        if deployment is None:
            return
        events = self._clusters.events(record.context)

        async def attempt(_number: int) -> None:
            await events.record_event(
                deployment,
                record.event_reason,
                record.sentence(),
                warning=record.warning,
                source=self._source,
            )

        await retry(attempt, retry_on=ClusterError, attempts=EVENT_ATTEMPTS, backoff=EVENT_BACKOFF)
