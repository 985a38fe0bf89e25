"""Handing a run over and picking it up, against the simulated cluster over real HTTP: the Lease
keeps the run (thread, id, from and to) for another replica; a release forgets it; a hand-over
keeps it marked; two replicas racing to pick one run up cannot both get it."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from bot.domain.rollback.locks import HANDED_OVER_BY, MANAGED_BY_LABEL
from bot.domain.rollback.models import RunInfo, Thread
from tests.integration.test_leases import read_lease
from tests.lease_fixtures import DEPLOYMENT, NAMESPACE, SECONDS, Replica

THREAD = Thread("C0INCIDENT", "1795752000.000100", message_ts="1795752000.000100")


STARTED = datetime.now(UTC).replace(microsecond=0)


def run_of(actor: str) -> RunInfo:
    return RunInfo(
        service="checkout",
        actor=actor,
        from_version="2.14.0",
        to_version="2.13.0",
        to_revision=1,
        started_at=STARTED,
        via="slack",
        reason="5xx since 2.14.0",
        rollback_id="0a1b2c3d4e5f",
        thread=THREAD,
        deployment=DEPLOYMENT,
        from_revision=2,
        target_replicaset="checkout-5d8f",
    )


async def acquire(replica: Replica) -> RunInfo | None:
    return await replica.leases.acquire_lock(
        NAMESPACE, DEPLOYMENT, replica.me, run_of("U0ALICE"), SECONDS
    )


async def unfinished(replica: Replica) -> list[RunInfo]:
    return await replica.leases.unfinished_runs(NAMESPACE, replica.me)


async def test_the_lease_is_labelled_and_keeps_the_whole_run(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert await acquire(a) is None
    lease = await read_lease(a)
    assert lease["metadata"]["labels"][MANAGED_BY_LABEL] == "rollback-bot"
    held = await acquire(b)
    assert held == dataclasses.replace(run_of("U0ALICE"), holder="bot-a")


async def test_a_release_forgets_the_run(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    assert await acquire(a) is None
    await a.release()
    notes = (await read_lease(a))["metadata"].get("annotations") or {}
    assert not [k for k in notes if k.startswith("rollback-bot.io/")]
    b.clock.advance(SECONDS * 10)
    assert await unfinished(b) == []
    assert await acquire(b) is None  # free at once


async def test_a_hand_over_keeps_the_run_for_another_replica_at_once(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert await acquire(a) is None
    await a.leases.hand_over_lock(NAMESPACE, DEPLOYMENT, a.me)
    lease = await read_lease(a)
    assert not lease["spec"].get("holderIdentity")
    assert lease["metadata"]["annotations"][HANDED_OVER_BY] == "bot-a"

    # A new rollback does not run over it: it waits to be picked up.
    assert await acquire(b) is not None
    [found] = await unfinished(b)  # first seen now, and yet at once
    assert found == dataclasses.replace(run_of("U0ALICE"), holder="bot-a")
    taken = await b.leases.take_over_lock(NAMESPACE, DEPLOYMENT, b.me, SECONDS)
    assert taken == found
    lease = await read_lease(b)
    assert lease["spec"]["holderIdentity"] == "bot-b"
    assert HANDED_OVER_BY not in lease["metadata"]["annotations"]
    assert lease["metadata"]["annotations"]["rollback-bot.io/rollback-id"] == "0a1b2c3d4e5f"
    # Now it is an ordinary held run: renewed by B, nothing left for A to pick up.
    await b.renew()
    assert await unfinished(a) == []


async def test_a_silent_holder_is_picked_up_only_after_its_duration(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert await acquire(a) is None
    assert await unfinished(b) == []  # B sees it for the first time now
    b.clock.advance(SECONDS)
    assert await unfinished(b) == []
    assert await b.leases.take_over_lock(NAMESPACE, DEPLOYMENT, b.me, SECONDS) is None
    b.clock.advance(1.5)
    [found] = await unfinished(b)
    assert found.holder == "bot-a"
    assert await b.leases.take_over_lock(NAMESPACE, DEPLOYMENT, b.me, SECONDS) is not None


async def test_two_replicas_racing_to_pick_one_run_up_cannot_both_get_it(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert await acquire(a) is None
    await a.leases.hand_over_lock(NAMESPACE, DEPLOYMENT, a.me)
    # A restarted under the same name and B both want it, in the same instant.
    results = await asyncio.gather(
        a.leases.take_over_lock(NAMESPACE, DEPLOYMENT, a.me, SECONDS),
        b.leases.take_over_lock(NAMESPACE, DEPLOYMENT, b.me, SECONDS),
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    holder = (await read_lease(a))["spec"]["holderIdentity"]
    assert holder == ("bot-a" if results[0] is not None else "bot-b")
