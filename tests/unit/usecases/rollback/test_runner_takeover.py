"""Every story finished: a run picked up from a stopped replica is followed to its end in its
own thread; a stopping replica hands its runs over instead of telling a false end."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from bot.domain.audit import Step
from bot.domain.errors import ClusterError
from bot.domain.retry import NO_WAIT
from bot.domain.rollback.models import RunInfo, WorkloadKind
from bot.usecases.rollback import runner as runner_module
from bot.usecases.rollback.takeover import Takeover
from tests.builders import OneCluster
from tests.unit.usecases.rollback.test_runner import (
    ME,
    NOW,
    STEP_SECONDS,
    TARGET,
    THREAD,
    FakeCluster,
    World,
    after,
    before,
    outcome_of,
    request,
    rollout,
)

LEFT = RunInfo(
    service="checkout",
    actor="U0ALICE",
    from_version="1.2",
    to_version="1.1",
    to_revision=2,
    started_at=NOW,
    via="slack",
    reason="5xx since 1.2",
    rollback_id="0a1b2c3d4e5f",
    thread=THREAD,
    deployment="checkout",
    from_revision=3,
    target_replicaset="checkout-b",
    holder="bot-a",
)


async def until_idle(world: World) -> None:
    for _ in range(200):
        if world.runner.running(TARGET) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the picked-up run never ended")


async def test_a_run_whose_patch_went_out_is_followed_to_its_end_in_its_thread() -> None:
    world = World(FakeCluster(after(), left=LEFT))
    assert await world.runner.pick_up(TARGET, LEFT)
    await until_idle(world)

    assert world.cluster.patches == []  # the stopped replica sent it; nobody sends it again
    assert world.reporters.asked == [(THREAD, TARGET)]
    assert world.reporter.kinds() == ["picked up", "progress", "progress", "progress", "finished"]
    assert world.reporter.told[0][2] == "bot-a"
    assert world.reporter.told[-1][3] is None  # succeeded
    assert world.sink.steps()[0] is Step.TAKEN_OVER
    assert world.sink.steps()[-1] is Step.SUCCEEDED
    # One story: every record carries the run's own id and versions.
    assert {r.rollback_id for r, _ in world.sink.records} == {"0a1b2c3d4e5f"}
    succeeded = world.sink.of(Step.SUCCEEDED)[0]
    assert (succeeded.from_version, succeeded.to_version) == ("1.2", "1.1")
    assert succeeded.channel == THREAD.channel and succeeded.thread_ts == THREAD.thread_ts
    assert "picked up after replica bot-a stopped" in (
        world.sink.of(Step.TAKEN_OVER)[0].detail or ""
    )
    # Unlocked for good, and the versions message shows buttons again.
    assert [what for what, _, _ in world.cluster.locks] == ["take over", "release"]
    assert world.messages.kinds() == ["refresh"]


async def test_a_picked_up_runs_time_counts_from_when_it_was_asked() -> None:
    asked_earlier = dataclasses.replace(LEFT, started_at=NOW - timedelta(seconds=45))
    world = World(FakeCluster(after(), left=asked_earlier))
    assert await world.runner.pick_up(TARGET, asked_earlier)
    await until_idle(world)
    _, _, elapsed, error = world.reporter.told[-1]
    assert error is None and elapsed == pytest.approx(45 + 3 * STEP_SECONDS)


async def test_a_run_whose_patch_never_went_out_is_told_so_and_nothing_is_sent() -> None:
    world = World(FakeCluster(before(), left=LEFT))  # still at revision 3, as the run found it
    assert await world.runner.pick_up(TARGET, LEFT)
    await until_idle(world)

    assert world.cluster.patches == []
    assert world.reporter.kinds() == ["not picked up"]
    _, _, previous, detail, sent = world.reporter.told[0]
    assert previous == "bot-a" and not sent and "nothing changed" in detail
    assert world.sink.steps() == [Step.TAKEN_OVER, Step.ABANDONED]
    assert [what for what, _, _ in world.cluster.locks] == ["take over", "release"]
    assert world.messages.kinds() == ["refresh"]


async def test_a_deployment_that_moved_on_is_an_unknown_end_not_a_new_rollback() -> None:
    moved = dataclasses.replace(LEFT, from_revision=1)  # it ran revision 1; 3 runs now
    world = World(FakeCluster(before(), left=moved))
    assert await world.runner.pick_up(TARGET, moved)
    await until_idle(world)
    assert world.cluster.patches == []
    assert world.sink.steps() == [Step.TAKEN_OVER, Step.UNKNOWN]
    assert world.reporter.told[0][4] is True  # sent, then something else happened


async def test_a_run_someone_else_picked_up_first_is_left_alone() -> None:
    world = World(FakeCluster(after(), left=None))  # the take-over finds it taken
    assert not await world.runner.pick_up(TARGET, LEFT)
    assert world.reporter.told == [] and world.sink.records == []
    assert world.runner.running(TARGET) is None


async def test_a_run_running_here_is_not_picked_up() -> None:
    world = World(FakeCluster(before(), after=after(), watch=[rollout(1)], endless=True))
    result = await world.runner.start(request())
    await world.cluster.watching.wait()
    assert result.run is not None
    assert not await world.runner.pick_up(TARGET, dataclasses.replace(result.run, holder=ME))
    assert "take over" not in [what for what, _, _ in world.cluster.locks]


async def test_the_scan_picks_up_what_the_cluster_left_under_the_catalogs_name() -> None:
    left = dataclasses.replace(LEFT, service="<!channel> from a Lease")
    world = World(FakeCluster(after(), left=left))
    takeover = Takeover(
        OneCluster(world.cluster), world.runner, {TARGET: "checkout"}, me=ME, interval=1.0
    )
    assert await takeover.scan() == 1
    await until_idle(world)
    assert world.reporter.told[0][1].service == "checkout"
    assert {r.service for r, _ in world.sink.records} == {"checkout"}
    assert await takeover.scan() == 0  # nothing left


async def test_a_stopping_replica_hands_its_run_over_and_tells_no_end() -> None:
    world = World(FakeCluster(before(), after=after(), watch=[rollout(1)], endless=True))
    result = await world.runner.start(request())
    await world.cluster.watching.wait()

    await asyncio.wait_for(world.runner.hand_over(grace=5.0), timeout=5.0)

    outcome = await outcome_of(result)
    assert outcome.unknown and outcome.error == "handed over to another replica"
    assert [what for what, _, _ in world.cluster.locks] == ["acquire", "hand over"]
    assert world.reporter.kinds()[-1] == "handed over"
    assert "finished" not in world.reporter.kinds()
    assert world.sink.steps()[-1] is Step.HANDED_OVER
    assert Step.UNKNOWN not in world.sink.steps()
    assert world.messages.kinds() == ["lock"]  # stays locked: the story goes on elsewhere
    assert world.runner.running(TARGET) is None
    assert (await world.runner.start(request())).outcome == "refused"  # restarting


async def test_a_hand_over_waits_for_a_patch_on_its_way_then_hands_over() -> None:
    cluster = FakeCluster(before(), after=after(), watch=[rollout(1)], endless=True)
    cluster.patch_gate = asyncio.Event()
    world = World(cluster)
    result = await world.runner.start(request())
    await cluster.patching.wait()
    stopping = asyncio.create_task(world.runner.hand_over(grace=5.0))
    await asyncio.sleep(0)  # hand_over is waiting for the patch, not cancelling it
    assert not stopping.done() and cluster.patches == []
    cluster.patch_gate.set()
    await asyncio.wait_for(stopping, timeout=5.0)
    assert len(cluster.patches) == 1
    assert [what for what, _, _ in cluster.locks] == ["acquire", "hand over"]
    assert (await outcome_of(result)).unknown


async def test_a_finished_rollout_is_told_here_even_while_stopping() -> None:
    world = World()
    result = await world.runner.start(request())
    await outcome_of(result)
    await world.runner.hand_over(grace=1.0)
    assert [what for what, _, _ in world.cluster.locks][-1] == "release"
    assert world.sink.steps()[-1] is Step.SUCCEEDED


class UnlockFails(FakeCluster):
    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        self.locks.append(("release", deployment, me))
        raise ClusterError("the API server did not answer")


async def test_a_run_told_here_is_not_picked_up_again_when_its_unlock_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_module, "RELEASE_BACKOFF", NO_WAIT)
    world = World(UnlockFails(before(), after=after()))
    result = await world.runner.start(request())
    await outcome_of(result)
    assert result.run is not None
    releases = world.cluster.locks.count(("release", "checkout", ME))
    assert releases == runner_module.RELEASE_ATTEMPTS  # tried again before giving up

    # Still held in our name with the run: our own scan finds it, and only unlocks again.
    told = dataclasses.replace(result.run, holder=ME)
    assert not await world.runner.pick_up(TARGET, told)
    assert world.reporter.kinds().count("finished") == 1
    assert "take over" not in [what for what, _, _ in world.cluster.locks]
    assert world.cluster.locks.count(("release", "checkout", ME)) == 2 * releases


async def test_the_scan_takes_a_run_of_another_kind_only_for_that_kind() -> None:
    # A StatefulSet's run names its kind in the Lease: the scan picks it up as that kind, and
    # the catalog's Deployment of the same name is not it.
    sts = dataclasses.replace(TARGET, kind=WorkloadKind.STATEFULSET)
    left = dataclasses.replace(LEFT, kind=WorkloadKind.STATEFULSET)
    only_the_deployment = World(FakeCluster(after(), left=left))
    takeover = Takeover(
        OneCluster(only_the_deployment.cluster),
        only_the_deployment.runner,
        {TARGET: "checkout"},
        me=ME,
        interval=1.0,
    )
    assert await takeover.scan() == 0
    world = World(FakeCluster(after(), left=left))
    takeover = Takeover(
        OneCluster(world.cluster), world.runner, {sts: "orders"}, me=ME, interval=1.0
    )
    assert await takeover.scan() == 1
    assert world.cluster.locks[0] == ("take over", "statefulset:checkout", ME)
    for _ in range(200):
        if world.runner.running(sts) is None:
            break
        await asyncio.sleep(0.01)
    assert world.runner.running(sts) is None
