"""Audit sinks: one JSON object per line on the `rollback_bot.audit` logger, a Kubernetes Event
on the Deployment, so `kubectl describe` and `kubectl get events` tell the story too, and the
audit trail kept in the cluster for months (`ClusterStoreSink`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from pathlib import Path
from typing import Protocol

from bot.domain.audit import AuditRecord
from bot.domain.audit_store import entry_key
from bot.domain.errors import ClusterError, Conflict, Forbidden
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


class AuditAppender(Protocol):
    """Where records are kept for months (`bot.adapters.kube.audit_store.ClusterAuditStore`)."""

    @property
    def where(self) -> str: ...

    async def append(self, record: AuditRecord, entry: str) -> str: ...


STORE_ATTEMPTS = 8
STORE_BACKOFF = Backoff(first=0.05, factor=2.0, cap=2.0)
# Records waiting for the store; past this many (a store down for long) the newest are logged
# loudly instead of queued: they are in the JSON log line and the Event still.
STORE_QUEUE = 10_000
store_log = logging.getLogger("bot.adapters.audit.store")


class _Retriable(Exception):
    def __init__(self, error: ClusterError) -> None:
        super().__init__(str(error))
        self.error = error


class ClusterStoreSink:
    """Each record appended to the audit trail kept in the cluster, in the background and in
    order: `write` only queues it, so a slow or failing store never holds up the rollback it
    records. A conflict with another replica's append, or a cluster that does not answer, is
    retried (`domain.retry`); a record that still cannot be stored is logged loudly, whole.

    `fallback`: where the record is kept anyway (the CLI's file). With it, credentials the
    store refuses (403: the CLI user may not touch the bot's namespace) are said once, as a
    warning, and the store is not tried again; without it (the bot) every refusal is an error.
    `close` waits for what is queued, up to a grace period."""

    def __init__(
        self,
        store: AuditAppender,
        *,
        fallback: str | None = None,
        attempts: int = STORE_ATTEMPTS,
        backoff: Backoff = STORE_BACKOFF,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._attempts = attempts
        self._backoff = backoff
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(STORE_QUEUE)
        self._worker: asyncio.Task[None] | None = None
        self._refused = False
        self.stored = 0  # records written so far (what `close` reports on)

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        if self._refused:
            return
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain(), name="audit-store")
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._lost(record, f"{STORE_QUEUE} records are already waiting for the store")

    async def _drain(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                await self._store_one(record)
            except asyncio.CancelledError:
                self._lost(
                    record, "the process stopped while it was being stored (it may be there)"
                )
                raise
            except Exception as exc:  # the worker must outlive any one record
                self._lost(record, f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    async def _store_one(self, record: AuditRecord) -> None:
        if self._refused:
            return
        entry = entry_key(record, secrets.token_hex(4))

        async def attempt(_number: int) -> str:
            try:
                return await self._store.append(record, entry)
            except Conflict as exc:
                raise _Retriable(exc) from None
            except ClusterError as exc:
                if exc.transient:
                    raise _Retriable(exc) from None
                raise

        try:
            await retry(
                attempt, retry_on=_Retriable, attempts=self._attempts, backoff=self._backoff
            )
        except _Retriable as exc:
            self._lost(record, str(exc.error))
            return
        except Forbidden as exc:
            if self._fallback is None:
                self._lost(record, str(exc))
                return
            self._refused = True
            store_log.warning(
                "the audit trail is kept in %s only: the cluster's audit trail (%s) cannot be "
                "written with these credentials (%s)",
                self._fallback,
                self._store.where,
                exc,
            )
            return
        except ClusterError as exc:
            self._lost(record, str(exc))
            return
        self.stored += 1

    def _lost(self, record: AuditRecord, why: str) -> None:
        """Loudly, with the whole record, so that it can be put back by hand."""
        store_log.error(
            "AUDIT RECORD NOT STORED in %s: %s; the record: %s",
            self._store.where,
            why,
            json.dumps(record.to_json(), sort_keys=True),
            extra={FIELDS: {"audit_record": record.to_json(), "audit_lost": True}},
        )

    async def close(self, grace: float) -> None:
        """Wait up to `grace` seconds for the queued records; those left are logged loudly."""
        worker = self._worker
        if worker is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._queue.join()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        while not self._queue.empty():
            self._lost(self._queue.get_nowait(), "the process stopped before it was stored")
