"""Post-ack work waits its turn: never more than its slots at once, and all of it gets done."""

from __future__ import annotations

import asyncio
import contextlib

from handlers.after_ack import AfterAck


async def test_no_more_than_the_slots_run_at_once_and_every_one_runs() -> None:
    after_ack = AfterAck(slots=3)
    running, most, done = 0, 0, 0
    release, three_in = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        nonlocal running, most, done
        async with after_ack:
            running += 1
            most = max(most, running)
            if running == 3:
                three_in.set()
            await release.wait()
            running -= 1
            done += 1

    tasks = [asyncio.create_task(work()) for _ in range(10)]
    await asyncio.wait_for(three_in.wait(), timeout=5)
    for _ in range(20):  # many turns of the loop: the seven others stay out while slots are full
        await asyncio.sleep(0)
    assert most == 3
    release.set()
    await asyncio.gather(*tasks)
    assert (most, done) == (3, 10)


async def test_a_failure_gives_its_slot_back() -> None:
    after_ack = AfterAck(slots=1)

    async def fail() -> None:
        async with after_ack:
            raise RuntimeError("boom")

    for _ in range(3):  # a slot lost to each failure would block the second one for ever
        with contextlib.suppress(RuntimeError):
            await asyncio.wait_for(fail(), timeout=5)
    async with after_ack:
        pass
