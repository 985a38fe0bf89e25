"""The audit trail: every step of a rollback, written to each configured sink (a JSON log line,
a Kubernetes Event on the Deployment, …). A sink that fails is logged; it never stops a rollback."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from bot.config.catalog import ServiceRef
from bot.domain.audit import AuditRecord, Step
from bot.domain.rollback.models import Deployment

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None: ...


class AuditTrail:
    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self._sinks = tuple(sinks)

    async def record(self, record: AuditRecord, deployment: Deployment | None = None) -> None:
        for sink in self._sinks:
            try:
                await sink.write(record, deployment)
            except Exception as exc:  # a sink's failure must not stop the rollback it records
                log.warning(
                    "audit sink %s failed for %s: %s", type(sink).__name__, record.step, exc
                )


def slack_step(step: Step, ref: ServiceRef, user: str, at: datetime, **details: Any) -> AuditRecord:
    """A step a Slack user took about a catalog service (asked, denied)."""
    return AuditRecord(
        step=step,
        service=ref.name,
        namespace=ref.namespace,
        deployment=ref.deployment,
        actor=user,
        via="Slack",
        at=at,
        context=ref.context,
        **details,
    )
