"""The audit store's sink: in the background and in order, retried, never silent about a lost
record, and said once when the CLI's credentials may not write the bot's namespace."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from bot.adapters.audit import ClusterStoreSink
from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import ClusterError, Conflict, Forbidden
from bot.domain.retry import NO_WAIT

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def record(n: int) -> AuditRecord:
    return AuditRecord(
        step=Step.PROGRESS,
        service="checkout",
        namespace="shop",
        deployment="checkout",
        actor="U0ONCALL01",
        via="Slack",
        at=NOW,
        detail=f"record {n}",
    )


class Store:
    """Fails as told, then keeps what it is given; `gate` holds every append until set."""

    where = "configmaps of namespace test"

    def __init__(self, failures: list[ClusterError] | None = None) -> None:
        self.failures = list(failures or [])
        self.kept: list[tuple[str | None, str]] = []
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def append(self, record: AuditRecord, entry: str) -> str:
        self.calls += 1
        await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        if (record.detail, entry) not in self.kept:
            self.kept.append((record.detail, entry))
        return "object"


async def test_write_returns_at_once_and_the_records_are_stored_in_order() -> None:
    store = Store()
    store.gate.clear()
    sink = ClusterStoreSink(store, backoff=NO_WAIT)
    for n in range(5):
        await asyncio.wait_for(sink.write(record(n), None), timeout=1)
    assert store.kept == []  # nothing held the writer up
    store.gate.set()
    await sink.close(grace=5)
    assert [detail for detail, _ in store.kept] == [f"record {n}" for n in range(5)]
    assert sink.stored == 5


async def test_conflicts_and_transient_errors_are_retried_with_the_same_entry() -> None:
    store = Store([Conflict("another replica appended"), ClusterError("no answer", transient=True)])
    sink = ClusterStoreSink(store, backoff=NO_WAIT)
    await sink.write(record(1), None)
    await sink.close(grace=5)
    assert store.calls == 3
    assert len(store.kept) == 1 and sink.stored == 1


async def test_a_record_that_cannot_be_stored_is_logged_loudly_and_whole(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store([Conflict("again")] * 3)
    sink = ClusterStoreSink(store, attempts=3, backoff=NO_WAIT)
    with caplog.at_level(logging.ERROR):
        await sink.write(record(7), None)
        await sink.write(record(8), None)
        await sink.close(grace=5)
    lost = [r for r in caplog.records if "AUDIT RECORD NOT STORED" in r.getMessage()]
    assert len(lost) == 1 and lost[0].levelno == logging.ERROR
    assert '"detail": "record 7"' in lost[0].getMessage()
    assert "configmaps of namespace test" in lost[0].getMessage()
    assert [d for d, _ in store.kept] == ["record 8"]  # the next one is not held up


async def test_the_bot_reports_every_refusal_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    store = Store([Forbidden("403"), Forbidden("403")])
    sink = ClusterStoreSink(store, backoff=NO_WAIT)
    with caplog.at_level(logging.ERROR):
        await sink.write(record(1), None)
        await sink.write(record(2), None)
        await sink.close(grace=5)
    assert store.calls == 2  # not retried: RBAC does not change in a second
    assert len([r for r in caplog.records if "NOT STORED" in r.getMessage()]) == 2


async def test_the_cli_says_once_that_its_file_keeps_the_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store([Forbidden("403 on configmaps")])
    sink = ClusterStoreSink(store, fallback="/home/carol/audit.jsonl", backoff=NO_WAIT)
    with caplog.at_level(logging.WARNING):
        for n in range(4):
            await sink.write(record(n), None)
        await sink.close(grace=5)
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "/home/carol/audit.jsonl only" in said[0].getMessage()
    assert store.calls == 1 and store.kept == []


async def test_what_is_left_at_close_is_logged_not_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    store.gate.clear()  # a store that never answers
    sink = ClusterStoreSink(store, backoff=NO_WAIT)
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            await sink.write(record(n), None)
        await sink.close(grace=0.2)
    lost = [r.getMessage() for r in caplog.records if "NOT STORED" in r.getMessage()]
    assert len(lost) == 3  # the one being written and the two waiting
    assert all("the process stopped" in text for text in lost)
