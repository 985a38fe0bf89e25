"""The alert index over a document: one claim wins, the others update or wait; writes prune."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.adapters.memory import MemoryDocument
from bot.domain.alerts.index import POSTING_TTL, ClaimOutcome
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
