"""The audit trail: every step of a rollback, written to each configured sink (a JSON log line,
a Kubernetes Event on the Deployment, the store in the cluster, …). A sink that fails is logged;
it never stops a rollback. The store's records are read back (`AuditReader`: `/rollback audit`,
`rollback-bot audit`) and the objects past retention deleted (`AuditRetention`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from bot.config.catalog import ServiceRef
from bot.domain.audit import AuditRecord, Step
from bot.domain.audit_store import DEFAULT_RETENTION_DAYS, AuditKey, days_back, newest_first
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.models import Deployment, WorkloadKind
from bot.domain.rollback.switches import BLUE_GREEN_KIND
from bot.domain.times import utc_now

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
        kind=_kind_of(ref),
        **details,
    )


class AuditStore(Protocol):
    """The records kept in the cluster (`bot.adapters.kube.audit_store.ClusterAuditStore`)."""

    @property
    def where(self) -> str: ...

    async def read(self, key: AuditKey, days: Sequence[date]) -> list[AuditRecord]: ...


class AuditReader:
    """A service's records of the last `since`, newest first, from the store every replica and
    the CLI write to: they outlive the bot's processes and the cluster's Events."""

    def __init__(
        self,
        store: AuditStore,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._retention_days = retention_days
        self._now = now

    @property
    def where(self) -> str:
        return self._store.where

    async def read(self, ref: ServiceRef, since: timedelta) -> list[AuditRecord]:
        now = self._now()
        key = AuditKey(ref.namespace, ref.deployment, ref.context, _kind_of(ref))
        records = await self._store.read(key, days_back(since, now, self._retention_days))
        return newest_first([r for r in records if r.at >= now - since])


class AuditPruner(Protocol):
    async def prune(self) -> list[str]: ...


RETENTION_INTERVAL_SECONDS = 3600.0


class AuditRetention:
    """Deletes the store's objects past retention: at start, then every `interval` seconds
    (each replica does; a deletion another one made first is no error)."""

    def __init__(
        self, pruner: AuditPruner, *, interval: float = RETENTION_INTERVAL_SECONDS
    ) -> None:
        self._pruner = pruner
        self._interval = interval

    async def run(self) -> None:
        while True:
            try:
                deleted = await self._pruner.prune()
            except RollbackBotError as exc:
                log.warning("audit retention: could not delete the objects past it: %s", exc)
            else:
                if deleted:
                    log.info(
                        "audit retention: deleted %d objects past it: %s",
                        len(deleted),
                        ", ".join(deleted),
                    )
            await asyncio.sleep(self._interval)


def _kind_of(ref: ServiceRef) -> str | None:
    """The kind its records carry: none for a Deployment, "BlueGreen" for a switched Service."""
    if ref.blue_green is not None:
        return BLUE_GREEN_KIND
    return None if ref.kind is WorkloadKind.DEPLOYMENT else ref.kind.value
