"""Running rollbacks: one per Deployment at a time, decided quickly, then told step by step.

The cluster, the reporter, the versions message and the audit sink are in-memory fakes that
record what they were asked; the runner's clocks are injected. The cluster's watch yields a
scripted rollout and moves the runner's clock on by ten seconds per event.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_deployment, parse_history
from bot.domain.audit import AuditRecord, Step
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.models import (
    Deployment,
    History,
    JsonDict,
    RunInfo,
    Target,
    Thread,
    WorkloadKind,
)
from bot.domain.rollback.planning import RollbackPlan
from bot.domain.rollback.progress import Phase, Progress
from bot.domain.rollback.views import ServiceView
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.ports import Reporter
from bot.usecases.rollback.requests import RollbackRequest, RunOutcome, StartResult
from bot.usecases.rollback.runner import RolloutRunner
from tests.builders import OneCluster, deployment, replicaset, template

NOW = datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
TARGET = Target("shop", "checkout")
THREAD = Thread("C0SHOP", "1795752000.000100", message_ts="1795752000.000100")
SERVER = "https://k8s.example.com"
ME = "bot-7f9c-1"
STEP_SECONDS = 10.0

BOB = RunInfo(
    service="checkout",
    actor="U0BOB",
    from_version="1.2",
    to_version="1.0",
    to_revision=1,
    started_at=datetime(2026, 11, 27, 4, 4, tzinfo=UTC),
)


# -- the cluster's state ------------------------------------------------------------------


def replicasets(current_revision_of_b: int = 2) -> list[JsonDict]:
    return [
        replicaset(template("1.0"), revision=1, pod_hash="a", created="2026-11-20T10:00:00Z"),
        replicaset(
            template("1.1"),
            revision=current_revision_of_b,
            pod_hash="b",
            created="2026-11-21T10:00:00Z",
        ),
        replicaset(template("1.2"), revision=3, pod_hash="c", created="2026-11-27T03:40:00Z"),
    ]


def before(*, paused: bool = False) -> History:
    """Version 1.2 runs (revision 3); 1.1 (checkout-b, revision 2) and 1.0 are kept."""
    return parse_history(deployment(template("1.2"), revision=3, paused=paused), replicasets())


def after() -> History:
    """After rolling back to 1.1: checkout-b became revision 4."""
    return parse_history(deployment(template("1.1"), revision=4, generation=6), replicasets(4))


def rollout(
    updated: int,
    *,
    ready: int = 3,
    available: int | None = None,
    replicas: int | None = None,
    deadline_exceeded: bool = False,
) -> Deployment:
    status: JsonDict = {
        "observedGeneration": 6,
        "replicas": replicas if replicas is not None else max(3, updated + 1),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready if available is None else available,
    }
    if deadline_exceeded:
        status["conditions"] = [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "checkout-b" has timed out progressing.',
            }
        ]
    return parse_deployment(
        deployment(template("1.1"), revision=4, generation=6, observed=6, status=status)
    )


DONE = rollout(3, replicas=3)
SMOOTH = (rollout(1), rollout(2), DONE)


# -- the fakes ------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCluster:
    """One Deployment: its history (swapped for `after` by the patch), a scripted watch, a lock."""

    server = SERVER

    def __init__(
        self,
        history: History,
        *,
        after: History | None = None,
        watch: Sequence[Deployment] = SMOOTH,
        endless: bool = False,
        holder: RunInfo | None = None,
        clock: Clock | None = None,
        left: RunInfo | None = None,
    ) -> None:
        self.current = history
        self.left = left  # a run another replica left in the Lease, to pick up
        self.after = after
        self.script = list(watch)
        self.endless = endless  # after the script, no event ever again
        self.holder = holder
        self.clock = clock
        self.history_reads = 0
        self.reading = asyncio.Event()
        self.history_gate: asyncio.Event | None = None
        self.watching = asyncio.Event()
        self.watch_gate: asyncio.Event | None = None
        self.patches: list[tuple[JsonDict, ...]] = []
        self.patch_gate: asyncio.Event | None = None
        self.patching = asyncio.Event()
        self.locks: list[tuple[str, str, str]] = []  # (what, deployment, me)
        self.lock_runs: list[tuple[RunInfo, int]] = []

    async def ping(self) -> str:
        return "v1.31.0"

    async def read(
        self, namespace: str, name: str, *, kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    ) -> Deployment:
        return self.current.deployment

    async def history(
        self, namespace: str, name: str, *, kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    ) -> History:
        self.history_reads += 1
        self.reading.set()
        if self.history_gate is not None:
            await self.history_gate.wait()
        return self.current

    async def patch(
        self,
        namespace: str,
        name: str,
        patch: Sequence[JsonDict] | JsonDict,
        *,
        dry_run: bool,
        kind: WorkloadKind = WorkloadKind.DEPLOYMENT,
        subresource: str | None = None,
    ) -> Deployment:
        assert not dry_run
        self.patching.set()
        if self.patch_gate is not None:
            await self.patch_gate.wait()
        self.patches.append((patch,) if isinstance(patch, dict) else tuple(patch))
        if self.after is not None:
            self.current = self.after
        return self.current.deployment

    async def watch(
        self, namespace: str, name: str, *, kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    ) -> AsyncGenerator[Deployment, None]:
        self.watching.set()
        for event in self.script:
            if self.watch_gate is not None:
                await self.watch_gate.wait()
            await asyncio.sleep(0)  # events arrive over the network: one turn of the loop each
            if self.clock is not None:
                self.clock.now += STEP_SECONDS
            yield event
        if self.endless:
            await asyncio.Event().wait()

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        self.locks.append(("acquire", deployment, me))
        self.lock_runs.append((run, seconds))
        return self.holder

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None:
        self.locks.append(("renew", deployment, me))

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        self.locks.append(("release", deployment, me))

    async def hand_over_lock(self, namespace: str, deployment: str, me: str) -> None:
        self.locks.append(("hand over", deployment, me))

    async def unfinished_runs(self, namespace: str, me: str) -> list[RunInfo]:
        return [self.left] if self.left is not None else []

    async def take_over_lock(
        self, namespace: str, deployment: str, me: str, seconds: int
    ) -> RunInfo | None:
        self.locks.append(("take over", deployment, me))
        left, self.left = self.left, None
        return left


class RecordingReporter:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.told: list[tuple[Any, ...]] = []

    def _maybe_fail(self) -> None:
        if self.fail:
            raise ConnectionError("slack is down")

    async def started(self, run: RunInfo, plan: RollbackPlan, reason: str | None) -> None:
        self.told.append(("started", run, plan, reason))
        self._maybe_fail()

    async def picked_up(self, run: RunInfo, previous: str) -> None:
        self.told.append(("picked up", run, previous))
        self._maybe_fail()

    async def handed_over(self, run: RunInfo, me: str) -> None:
        self.told.append(("handed over", run, me))
        self._maybe_fail()

    async def not_picked_up(self, run: RunInfo, previous: str, detail: str, *, sent: bool) -> None:
        self.told.append(("not picked up", run, previous, detail, sent))
        self._maybe_fail()

    async def progress(self, progress: Progress, elapsed: float) -> None:
        self.told.append(("progress", progress, elapsed))
        self._maybe_fail()

    async def finished(
        self, last: Progress | None, elapsed: float, error: str | None, *, unknown: bool = False
    ) -> None:
        self.told.append(("finished", last, elapsed, error))
        self.unknown = unknown
        self._maybe_fail()

    def kinds(self) -> list[str]:
        return [str(t[0]) for t in self.told]


class RecordingReporters:
    def __init__(self, reporter: RecordingReporter, *, fail: bool = False) -> None:
        self.the_reporter = reporter
        self.fail = fail
        self.asked: list[tuple[Thread | None, Target]] = []

    def reporter(self, thread: Thread | None, target: Target) -> Reporter:
        self.asked.append((thread, target))
        if self.fail:
            raise ValueError("no reporter for this rollback")
        return self.the_reporter


class RecordingMessages:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Thread, ServiceView]] = []

    async def lock(self, thread: Thread, view: ServiceView) -> None:
        self.calls.append(("lock", thread, view))

    async def refresh(self, thread: Thread, view: ServiceView) -> None:
        self.calls.append(("refresh", thread, view))

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.calls]


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[tuple[AuditRecord, Deployment | None]] = []

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        self.records.append((record, deployment))

    def steps(self) -> list[Step]:
        return [r.step for r, _ in self.records]

    def of(self, step: Step) -> list[AuditRecord]:
        return [r for r, _ in self.records if r.step is step]


class World:
    def __init__(
        self,
        cluster: FakeCluster | None = None,
        *,
        rollout_timeout: float = 60.0,
        failing_reporter: bool = False,
        failing_reporters: bool = False,
        messages: bool = True,
    ) -> None:
        self.clock = Clock()
        self.cluster = cluster or FakeCluster(before(), after=after())
        self.cluster.clock = self.clock
        self.reporter = RecordingReporter(fail=failing_reporter)
        self.reporters = RecordingReporters(self.reporter, fail=failing_reporters)
        self.messages = RecordingMessages()
        self.sink = RecordingSink()
        self.runner = RolloutRunner(
            RollbackEngine(OneCluster(self.cluster)),
            AuditTrail([self.sink]),
            self.reporters,
            replica_id=ME,
            messages=self.messages if messages else None,
            rollout_timeout=rollout_timeout,
            clock=self.clock,
            now=lambda: NOW,
        )


def request(**changes: Any) -> RollbackRequest:
    asked = RollbackRequest(
        service="checkout",
        target=TARGET,
        target_replicaset="checkout-b",
        target_revision=2,
        target_version="1.1",
        snapshot=Snapshot(
            revision=3, generation=5, target_replicaset="checkout-b", target_revision=2
        ),
        actor="U0ALICE",
        via="slack",
        reason="5xx since 1.2",
        thread=THREAD,
        actor_name="@alice",
    )
    return dataclasses.replace(asked, **changes)


async def outcome_of(result: StartResult) -> RunOutcome:
    assert result.outcome == "started", result
    assert result.completion is not None
    return await asyncio.wait_for(result.completion, timeout=5.0)


# -- a rollback from start to end -------------------------------------------------------------


async def test_a_rollback_is_patched_followed_and_succeeds() -> None:
    world = World()
    result = await world.runner.start(request())

    assert result.outcome == "started"
    assert result.message == "rolling back to 1.1"
    assert result.run is not None
    assert result.run == RunInfo(
        service="checkout",
        actor="U0ALICE",
        from_version="1.2",
        to_version="1.1",
        to_revision=2,
        started_at=NOW,
        # All another replica needs to finish the story, kept in the Lease.
        via="slack",
        reason="5xx since 1.2",
        rollback_id=result.run.rollback_id,
        thread=THREAD,
        deployment="checkout",
        from_revision=3,
        target_replicaset="checkout-b",
    )
    assert result.run.rollback_id is not None
    assert re.fullmatch(r"[0-9a-f]{12}", result.run.rollback_id)
    assert result.plan is not None and result.plan.target.replicaset == "checkout-b"

    outcome = await outcome_of(result)
    assert outcome.succeeded and not outcome.timed_out
    assert outcome.error is None
    assert outcome.last is not None and outcome.last.phase is Phase.COMPLETE
    assert outcome.elapsed == pytest.approx(3 * STEP_SECONDS)

    [patch] = world.cluster.patches
    ops = {op["path"]: op["value"] for op in patch}
    assert ops["/spec/template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.1"
    assert ops["/metadata/annotations"]["kubernetes.io/change-cause"] == (
        "rolled back to revision 2 (1.1) by @alice via slack: 5xx since 1.2"
    )
    assert world.cluster.lock_runs == [(result.run, 30)]


async def test_the_run_is_known_while_it_runs_and_forgotten_after() -> None:
    world = World()
    world.cluster.watch_gate = asyncio.Event()
    result = await world.runner.start(request())
    await world.cluster.watching.wait()
    assert world.runner.running(TARGET) == result.run
    assert world.runner.running(Target("shop", "cart")) is None

    world.cluster.watch_gate.set()
    await outcome_of(result)
    assert world.runner.running(TARGET) is None
    # The slot is free again: a new rollback starts (here back to 1.0), not "running".
    again = await world.runner.start(
        request(
            target_replicaset="checkout-a", target_revision=1, target_version="1.0", snapshot=None
        )
    )
    assert again.outcome == "started"
    await outcome_of(again)


async def test_the_lock_is_taken_then_released_at_the_end() -> None:
    world = World()
    await outcome_of(await world.runner.start(request()))
    assert [what for what, _, _ in world.cluster.locks if what != "renew"] == ["acquire", "release"]
    assert {(d, me) for _, d, me in world.cluster.locks} == {("checkout", ME)}


async def test_the_reporter_hears_the_start_each_step_and_the_outcome() -> None:
    world = World()
    result = await world.runner.start(request())
    await outcome_of(result)

    assert world.reporters.asked == [(THREAD, TARGET)]
    assert world.reporter.kinds() == ["started", "progress", "progress", "progress", "finished"]
    _, run, plan, reason = world.reporter.told[0]
    assert (run, plan.target.replicaset, reason) == (result.run, "checkout-b", "5xx since 1.2")
    steps = [(t[1].updated, t[2]) for t in world.reporter.told if t[0] == "progress"]
    assert steps == [(1, 10.0), (2, 20.0), (3, 30.0)]
    _, last, elapsed, error = world.reporter.told[-1]
    assert (last.phase, elapsed, error) == (Phase.COMPLETE, 30.0, None)


# -- the audit trail -----------------------------------------------------------------------------


async def test_each_step_is_audited_in_order_with_the_rollbacks_fields() -> None:
    world = World()
    await outcome_of(await world.runner.start(request()))

    assert world.sink.steps() == [Step.CONFIRMED, Step.STARTED, Step.PROGRESS, Step.SUCCEEDED]
    records = [r for r, _ in world.sink.records]
    ids = {r.rollback_id for r in records}
    assert len(ids) == 1
    [rollback_id] = ids
    assert rollback_id is not None and re.fullmatch(r"[0-9a-f]{12}", rollback_id)
    for record in records:
        assert (record.service, record.namespace, record.deployment) == (
            "checkout",
            "shop",
            "checkout",
        )
        assert (record.actor, record.via, record.reason, record.at) == (
            "U0ALICE",
            "slack",
            "5xx since 1.2",
            NOW,
        )
        assert (record.from_version, record.to_version) == ("1.2", "1.1")
        assert (record.from_revision, record.to_revision) == (3, 2)
        assert (record.channel, record.thread_ts, record.context) == (
            THREAD.channel,
            THREAD.thread_ts,
            None,
        )
    assert [r.detail for r in records] == [
        None,
        None,
        "2/3 updated, 3/3 ready, 3/3 available",
        "in 30.0s (3/3 updated, 3/3 ready, 3/3 available)",
    ]
    # Every record is written against the Deployment as it was when the rollback was decided.
    assert {d.resource_version if d else None for _, d in world.sink.records} == {"1042"}
    assert all(d is not None and d.version == "1.2" for _, d in world.sink.records)


@pytest.mark.parametrize(
    ("script", "milestones"),
    [
        pytest.param(SMOOTH, ["2/3 updated, 3/3 ready, 3/3 available"], id="one pod at a time"),
        pytest.param(
            (rollout(0), rollout(3, ready=0, replicas=3), DONE),
            ["3/3 updated, 0/3 ready, 0/3 available"],
            id="all at once, not yet available",
        ),
        pytest.param(
            (rollout(2), rollout(3, ready=1, replicas=3), rollout(3, ready=2, replicas=3), DONE),
            ["2/3 updated, 3/3 ready, 3/3 available"],
            id="all updated, then waiting for them: no milestone for the whole",
        ),
        pytest.param((rollout(1), DONE), [], id="done before half"),
        pytest.param((DONE,), [], id="done at once"),
    ],
)
async def test_progress_is_audited_once_past_half_of_the_pods_updated(
    script: tuple[Deployment, ...], milestones: list[str]
) -> None:
    world = World(FakeCluster(before(), after=after(), watch=script))
    outcome = await outcome_of(await world.runner.start(request()))
    assert outcome.succeeded
    assert [r.detail for r in world.sink.of(Step.PROGRESS)] == milestones


# -- the outcome -------------------------------------------------------------------------------


async def test_a_rollout_past_its_progress_deadline_fails() -> None:
    stuck = rollout(1, ready=2, deadline_exceeded=True)
    world = World(FakeCluster(before(), after=after(), watch=(rollout(1), stuck)))
    outcome = await outcome_of(await world.runner.start(request()))

    assert not outcome.succeeded and not outcome.timed_out
    assert outcome.last is not None and outcome.last.phase is Phase.FAILED
    expected = (
        'deployment "checkout" exceeded its progress deadline: '
        'ReplicaSet "checkout-b" has timed out progressing.'
    )
    assert outcome.error == expected
    assert world.sink.steps()[-1] is Step.FAILED
    assert world.sink.of(Step.FAILED)[0].detail == (
        f"{expected} (1/3 updated, 2/3 ready, 2/3 available)"
    )
    assert world.reporter.told[-1] == ("finished", outcome.last, 20.0, expected)
    assert world.cluster.locks[-1][0] == "release"
    assert world.runner.running(TARGET) is None


async def test_a_rollout_that_never_finishes_times_out() -> None:
    # The watch never yields: only the rollout timeout (kept short, it is what is measured) ends it.
    cluster = FakeCluster(before(), after=after(), watch=(), endless=True)
    world = World(cluster, rollout_timeout=0.05)
    outcome = await outcome_of(await world.runner.start(request()))

    assert outcome.timed_out and not outcome.succeeded
    assert outcome.error == "rollout of shop/checkout did not finish within 0.05s"
    assert outcome.last is None
    # Only the waiting ended: recorded as such, told as not known, never as a failure.
    assert outcome.unknown
    assert world.sink.steps() == [Step.CONFIRMED, Step.STARTED, Step.TIMED_OUT]
    assert world.sink.of(Step.TIMED_OUT)[0].detail == outcome.error
    assert world.reporter.unknown
    assert world.reporter.told[-1] == ("finished", None, 0.0, outcome.error)
    assert world.cluster.locks[-1][0] == "release"
    assert world.runner.running(TARGET) is None


async def test_a_watch_that_ends_without_a_verdict_is_an_unknown_outcome_not_a_failure() -> None:
    # Only the rollout's own state may say "failed": here the bot merely lost sight of it.
    world = World(FakeCluster(before(), after=after(), watch=(rollout(1),)))
    outcome = await outcome_of(await world.runner.start(request()))
    assert not outcome.succeeded and not outcome.timed_out and outcome.unknown
    assert outcome.error is not None and "stopped following" in outcome.error
    assert outcome.last is not None and outcome.last.updated == 1
    assert world.sink.steps()[-1] is Step.UNKNOWN
    assert world.reporter.unknown


# -- the versions message and the history reads ---------------------------------------------


async def test_the_versions_message_is_locked_then_refreshed_after_the_outcome() -> None:
    world = World()
    result = await world.runner.start(request())
    await outcome_of(result)

    assert world.messages.kinds() == ["lock", "refresh"]
    (_, locked_thread, locked), (_, refreshed_thread, refreshed) = world.messages.calls
    assert locked_thread == refreshed_thread == THREAD
    assert locked.running == result.run
    assert locked.history.deployment.version == "1.2"  # as read to decide
    assert refreshed.running is None
    assert refreshed.history.deployment.version == "1.1"  # read again after the outcome
    assert refreshed.history.current is not None and refreshed.history.current.number == 4
    for view in (locked, refreshed):
        assert (view.service, view.namespace, view.cluster) == ("checkout", "shop", SERVER)
        assert (view.asked_by, view.taken_at, view.limit) == ("U0ALICE", NOW, 5)
    assert world.cluster.history_reads == 2  # once to decide, once after the outcome


async def test_without_a_versions_message_the_history_is_read_once() -> None:
    world = World()
    await outcome_of(await world.runner.start(request(thread=Thread("C0SHOP", "1.0"))))
    assert world.messages.calls == []
    assert world.cluster.history_reads == 1


async def test_without_message_port_nothing_is_refreshed() -> None:
    world = World(messages=False)
    await outcome_of(await world.runner.start(request()))
    assert world.cluster.history_reads == 1


# -- refusals ------------------------------------------------------------------------------------


async def test_a_stale_snapshot_is_refused_and_the_message_shows_the_state_just_read() -> None:
    world = World()
    stale = Snapshot(revision=2, generation=5, target_replicaset="checkout-b", target_revision=2)
    result = await world.runner.start(request(snapshot=stale))

    assert result.outcome == "stale"
    assert result.message == "the deployment moved from revision 2 to revision 3 (1.2)"
    assert result.completion is None
    [(kind, thread, view)] = world.messages.calls
    assert (kind, thread) == ("refresh", THREAD)
    assert view.history is world.cluster.current
    assert view.running is None
    assert world.cluster.history_reads == 1  # the state shown is the one just read
    [refused] = world.sink.records
    assert refused[0].step is Step.REFUSED
    assert refused[0].detail == "stale: the deployment moved from revision 2 to revision 3 (1.2)"
    assert world.cluster.locks == [] and world.cluster.patches == []
    assert world.runner.running(TARGET) is None


async def test_a_target_revision_no_longer_kept_is_stale() -> None:
    world = World()
    result = await world.runner.start(
        request(target_replicaset="checkout-gone", target_revision=7, snapshot=None)
    )
    assert result.outcome == "stale"
    assert result.message == "revision 7 is no longer kept in the history"
    assert world.sink.steps() == [Step.REFUSED]
    assert world.messages.kinds() == ["refresh"]
    assert world.cluster.locks == [] and world.cluster.patches == []


async def test_a_paused_deployment_is_refused() -> None:
    world = World(FakeCluster(before(paused=True)))
    result = await world.runner.start(request())
    assert result.outcome == "refused"
    assert "is paused" in result.message and "kubectl rollout resume" in result.message
    assert [(r.step, r.detail) for r in world.sink.of(Step.REFUSED)] == [
        (Step.REFUSED, result.message)
    ]
    assert world.cluster.locks == [] and world.cluster.patches == []
    assert world.runner.running(TARGET) is None
    assert (await world.runner.start(request())).outcome == "refused"  # not "running"


async def test_the_version_already_running_is_skipped() -> None:
    world = World()
    current = Snapshot(revision=3, generation=5, target_replicaset="checkout-c", target_revision=3)
    result = await world.runner.start(
        request(
            target_replicaset="checkout-c",
            target_revision=3,
            target_version="1.2",
            snapshot=current,
        )
    )
    assert result.outcome == "skipped"
    assert result.message == "skipped: deployment shop/checkout is already at revision 3 (1.2)"
    assert result.plan is not None and result.plan.action == "skip"
    assert result.completion is None
    assert world.cluster.locks == [] and world.cluster.patches == []
    assert world.runner.running(TARGET) is None
    assert world.sink.steps() == [Step.SKIPPED]  # the record says it was asked and not needed


async def test_a_lock_held_elsewhere_answers_running_with_the_holders_run() -> None:
    world = World(FakeCluster(before(), after=after(), holder=BOB))
    result = await world.runner.start(request())
    assert result.outcome == "running"
    assert result.message == "U0BOB is already rolling back"
    assert result.run == BOB
    assert result.completion is None
    assert [what for what, _, _ in world.cluster.locks] == ["acquire"]  # not released: not ours
    assert world.cluster.patches == []
    assert world.sink.steps() == [Step.BUSY]
    assert world.runner.running(TARGET) is None


# -- one at a time in this replica ----------------------------------------------------------------


async def test_two_starts_in_the_same_instant_start_one_rollback() -> None:
    world = World()
    world.cluster.history_gate = asyncio.Event()
    first = asyncio.create_task(world.runner.start(request()))
    await world.cluster.reading.wait()  # the first click is reading the cluster

    second = await world.runner.start(request(actor="U0CAROL"))
    assert second.outcome == "running"
    assert second.message == "U0ALICE is already rolling back"
    assert second.run is not None and second.run.actor == "U0ALICE"

    world.cluster.history_gate.set()
    started = await first
    await outcome_of(started)
    assert world.cluster.history_reads == 2  # the first decided and refreshed; the second, nothing
    assert [what for what, _, _ in world.cluster.locks if what == "acquire"] == ["acquire"]
    assert len(world.cluster.patches) == 1
    assert world.sink.steps().count(Step.CONFIRMED) == 1
    assert world.sink.steps().count(Step.BUSY) == 1  # the second click is on the record too


async def test_a_second_start_while_one_runs_says_who_runs_it() -> None:
    world = World()
    world.cluster.watch_gate = asyncio.Event()
    first = await world.runner.start(request())
    second = await world.runner.start(request(actor="U0CAROL"))
    assert (second.outcome, second.run) == ("running", first.run)
    world.cluster.watch_gate.set()
    await outcome_of(first)


async def test_a_failing_reporter_neither_stops_the_rollback_nor_keeps_the_slot() -> None:
    world = World(failing_reporter=True)
    outcome = await outcome_of(await world.runner.start(request()))
    assert outcome.succeeded
    assert world.reporter.kinds() == ["started", "progress", "progress", "progress", "finished"]
    assert world.sink.steps()[-1] is Step.SUCCEEDED
    assert world.messages.kinds() == ["lock", "refresh"]
    assert world.cluster.locks[-1][0] == "release"
    assert world.runner.running(TARGET) is None


async def test_a_rollback_that_cannot_be_told_is_not_started() -> None:
    world = World(failing_reporters=True)
    with pytest.raises(ValueError, match="no reporter"):
        await world.runner.start(request())
    assert world.runner.running(TARGET) is None
    assert not world.cluster.patches
    assert all(kind != "acquire" for kind, *_ in world.cluster.locks)


# -- shutting down -----------------------------------------------------------------------------


async def test_shutdown_without_rollbacks_returns_at_once() -> None:
    world = World()
    await asyncio.wait_for(world.runner.shutdown(grace=60.0), timeout=1.0)


async def test_shutdown_lets_a_running_rollout_finish_within_the_grace() -> None:
    world = World()
    world.cluster.watch_gate = asyncio.Event()
    result = await world.runner.start(request())
    await world.cluster.watching.wait()
    assert result.completion is not None

    stopping = asyncio.create_task(world.runner.shutdown(grace=30.0))
    await asyncio.sleep(0)  # one turn of the loop: shutdown is waiting for the rollout
    assert not stopping.done()
    world.cluster.watch_gate.set()
    await asyncio.wait_for(stopping, timeout=5.0)
    assert result.completion.done()  # shutdown returned only once the rollout had ended
    assert result.completion.result().succeeded
    assert world.sink.steps()[-1] is Step.SUCCEEDED


async def test_shutdown_stops_a_rollout_past_the_grace_and_still_cleans_up() -> None:
    cluster = FakeCluster(before(), after=after(), watch=(rollout(1),), endless=True)
    world = World(cluster)
    result = await world.runner.start(request())
    await world.cluster.watching.wait()

    await asyncio.wait_for(world.runner.shutdown(grace=0.05), timeout=5.0)
    assert result.completion is not None and result.completion.done()
    outcome = result.completion.result()
    assert not outcome.succeeded and not outcome.timed_out
    assert outcome.last is not None and outcome.last.updated == 1
    assert world.sink.steps()[-1] is Step.UNKNOWN  # a shutdown says nothing of the rollout
    assert world.cluster.locks[-1][0] == "release"
    assert world.reporter.kinds()[-1] == "finished"
    assert world.runner.running(TARGET) is None


async def test_shutdown_right_after_a_start_still_cleans_up() -> None:
    # No grace at all, and the rollback's task has not run yet: it is still ended properly.
    world = World()
    result = await world.runner.start(request())
    await world.runner.shutdown(grace=0.0)
    assert result.completion is not None and result.completion.done()
    assert world.cluster.locks[-1][0] == "release"
