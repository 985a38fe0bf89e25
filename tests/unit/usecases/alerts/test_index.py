"""The alert index over a document: one claim wins, the others update or wait; writes prune."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot.adapters.memory import MemoryDocument
from bot.domain.alerts.index import POSTING_TTL, ClaimOutcome
from bot.domain.errors import ClusterError
from bot.usecases.alerts.index import AlertIndex

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
GROUP = '{}/{severity="critical"}:{alertname="HighErrorRate", service="checkout"}'


async def test_one_claim_wins_and_the_rest_update_or_wait() -> None:
    now = [NOW]
    index = AlertIndex(MemoryDocument(), clock=lambda: now[0])
    claims = await asyncio.gather(*(index.claim(GROUP, "C0SHOP") for _ in range(5)))
    assert [c.outcome for c in claims].count(ClaimOutcome.POST) == 1
    winner = next(c for c in claims if c.must_post)
    assert await index.record_posted(GROUP, "1.1", token=winner.token)
    update = await index.claim(GROUP, "C0OTHER")
    assert (update.outcome, update.channel, update.ts) == (ClaimOutcome.UPDATE, "C0SHOP", "1.1")
    resolved = await index.set_status(GROUP, "resolved")
    assert resolved is not None and resolved.status == "resolved"
    assert (await index.lookup(GROUP)) == resolved
    assert (await index.wait_posted(GROUP, within=0)) == resolved

    second = await index.claim("other", "C0SHOP")
    assert second.token is not None
    await index.abandon("other", second.token)
    assert await index.lookup("other") is None

    now[0] += POSTING_TTL * 10_000  # long after: the resolved group is pruned on the next write
    fresh = await index.claim("third", "C0SHOP")
    assert fresh.must_post
    assert await index.lookup(GROUP) is None


class CountingDocument(MemoryDocument):
    """The in-memory document, counting reads and writes, each write taking a moment as a
    round trip to the API server would."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    async def read(self, what: str) -> dict[str, Any] | None:
        self.reads += 1
        return await super().read(what)

    async def write(self, what: str, version: str | None, data: dict[str, str]) -> str:
        self.writes += 1
        await asyncio.sleep(0)  # let the other deliveries queue behind this write
        return await super().write(what, version, data)


async def test_changes_that_arrive_together_are_written_together() -> None:
    document = CountingDocument()
    index = AlertIndex(document, clock=lambda: NOW)
    claims = await asyncio.gather(*(index.claim(f"group{i}", "C0SHOP") for i in range(50)))
    assert all(c.must_post for c in claims)
    assert document.writes <= 3, document.writes  # not one write per group
    for i, claim in enumerate(claims):
        entry = await index.lookup(f"group{i}")
        assert entry is not None and entry.claim == claim.token


async def test_a_batch_decides_each_change_on_what_the_ones_before_left() -> None:
    index = AlertIndex(CountingDocument(), clock=lambda: NOW)
    claims = await asyncio.gather(*(index.claim(GROUP, "C0SHOP") for _ in range(10)))
    assert [c.outcome for c in claims].count(ClaimOutcome.POST) == 1
    assert [c.outcome for c in claims].count(ClaimOutcome.BUSY) == 9


async def test_another_replicas_write_makes_the_whole_batch_decide_again() -> None:
    document = CountingDocument()
    mine, theirs = AlertIndex(document, clock=lambda: NOW), AlertIndex(document, clock=lambda: NOW)
    ours = [mine.claim(f"group{i}", "C0SHOP") for i in range(5)]
    results = await asyncio.gather(*ours, theirs.claim("group3", "C0SHOP"))
    winners = [c for c in results if c.must_post]
    assert len(winners) == 5  # group3 won by exactly one of the two replicas
    assert sum(1 for c in results if c.outcome is ClaimOutcome.BUSY) == 1


class FlakyDocument(MemoryDocument):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    async def write(self, what: str, version: str | None, data: dict[str, str]) -> str:
        if self.down:
            raise ClusterError(f"{what}: the API server is down")
        return await super().write(what, version, data)


async def test_a_store_that_cannot_be_written_fails_every_caller_of_the_batch() -> None:
    document = FlakyDocument()
    index = AlertIndex(document, clock=lambda: NOW)
    results = await asyncio.gather(
        *(index.claim(f"group{i}", "C0SHOP") for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ClusterError) for r in results)
    assert "API server is down" in str(results[0])
    # The next change gets its own try.
    document.down = False
    assert (await index.claim("group0", "C0SHOP")).must_post


async def test_a_replica_that_wrote_last_still_sees_what_another_wrote_since() -> None:
    document = MemoryDocument()
    mine, theirs = AlertIndex(document, clock=lambda: NOW), AlertIndex(document, clock=lambda: NOW)
    claim = await mine.claim(GROUP, "C0SHOP")
    assert await mine.record_posted(GROUP, "1.1", token=claim.token)
    resolved = await theirs.set_status(GROUP, "resolved")
    assert resolved is not None and resolved.status == "resolved"
    # Firing again, delivered to the replica whose own last write said "firing": it decides on
    # the document as it is now, not on what it wrote.
    again = await mine.set_status(GROUP, "firing")
    assert again is not None and again.status == "firing"
    stored = await theirs.lookup(GROUP)
    assert stored is not None and stored.status == "firing"


async def test_a_change_whose_caller_gave_up_is_not_made() -> None:
    document = CountingDocument()
    index = AlertIndex(document, clock=lambda: NOW)
    first = asyncio.ensure_future(index.claim("group0", "C0SHOP"))
    await asyncio.sleep(0)  # the first is being written: the next ones queue behind it
    gave_up = asyncio.ensure_future(index.claim("group1", "C0SHOP"))
    kept = asyncio.ensure_future(index.claim("group2", "C0SHOP"))
    await asyncio.sleep(0)
    gave_up.cancel()
    assert (await first).must_post and (await kept).must_post
    assert await index.lookup("group1") is None
