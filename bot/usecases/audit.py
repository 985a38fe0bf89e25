"""Where audit records go: a JSON log line always, a Kubernetes Event on the Deployment, and
whatever else is configured. A sink that fails is logged; it never stops a rollback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from bot.domain.audit import AuditRecord
from bot.domain.rollback.models import Deployment

log = logging.getLogger(__name__)
audit_log = logging.getLogger("rollback_bot.audit")


class AuditSink(Protocol):
    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None: ...


class JsonLogSink:
    """One JSON object per line on the `rollback_bot.audit` logger."""

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        audit_log.info(json.dumps(record.to_json(), sort_keys=True))


class EventRecorder(Protocol):
    """What this sink needs of a cluster (`bot.adapters.kube.Cluster` has it)."""

    async def record_event(
        self, deployment: Deployment, reason: str, message: str, *, warning: bool, source: str
    ) -> None: ...


class KubernetesEventSink:
    """A Kubernetes Event on the Deployment (needs the Deployment's uid, so only when known)."""

    def __init__(self, cluster_for: Callable[[str | None], EventRecorder], source: str) -> None:
        self._cluster_for = cluster_for
        self._source = source

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        if deployment is None:
            return
        await self._cluster_for(record.context).record_event(
            deployment,
            record.event_reason,
            record.sentence(),
            warning=record.warning,
            source=self._source,
        )


class AuditTrail:
    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self._sinks = tuple(sinks)

    async def record(self, record: AuditRecord, deployment: Deployment | None = None) -> None:
        for sink in self._sinks:
            try:
                await sink.write(record, deployment)
            except Exception as exc:  # a sink's failure must not stop the rollback it records
                log.warning(
                    "audit sink %s failed for %s: %s",
                    type(sink).__name__,
                    record.step,
                    exc,
                )
