"""A replica that lost its rollback lock to another stops acting and says so."""

from __future__ import annotations

from bot.domain.audit import Step
from bot.domain.rollback.locks import LockLost, lease_state
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.runner import RolloutRunner
from tests.builders import OneCluster
from tests.unit.usecases.rollback.test_runner import (
    ME,
    NOW,
    FakeCluster,
    RecordingMessages,
    RecordingReporter,
    RecordingReporters,
    RecordingSink,
    after,
    before,
    outcome_of,
    request,
    rollout,
)


class LosingCluster(FakeCluster):
    """Another replica took the Lease: every renewal says so."""

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None:
        self.locks.append(("renew", deployment, me))
        taken = {"spec": {"holderIdentity": "bot-b", "renewTime": "2026-11-27T04:00:31.000000Z"}}
        raise LockLost(
            f"renewing the lock of deployment {namespace}/{deployment}", lease_state(taken)
        )


async def test_losing_the_lock_stops_the_run_and_its_story_says_so() -> None:
    # A third of the pods updated, then nothing more: the rollout runs on when the lock goes.
    cluster = LosingCluster(before(), after=after(), watch=[rollout(1)], endless=True)
    reporter = RecordingReporter()
    sink = RecordingSink()
    runner = RolloutRunner(
        RollbackEngine(OneCluster(cluster)),
        AuditTrail([sink]),
        RecordingReporters(reporter),
        replica_id=ME,
        messages=RecordingMessages(),
        lease_seconds=1,  # the first renewal comes after a third of a second
        now=lambda: NOW,
    )
    outcome = await outcome_of(await runner.start(request()))
    assert not outcome.succeeded
    assert outcome.error is not None and "the lock was lost: bot-b holds it" in outcome.error
    # Another replica holds it and tells the end: this one lost sight, the rollout did not fail.
    assert sink.steps()[-1] is Step.UNKNOWN and outcome.unknown
    # It acted no more: one renewal tried, no release of a lock that is bot-b's now.
    assert [what for what, _, _ in cluster.locks] == ["acquire", "renew"]
    assert runner.running(request().target) is None


async def test_a_stopping_replica_starts_no_new_rollback() -> None:
    cluster = FakeCluster(before(), after=after())
    runner = RolloutRunner(
        RollbackEngine(OneCluster(cluster)),
        AuditTrail([RecordingSink()]),
        RecordingReporters(RecordingReporter()),
        replica_id=ME,
        now=lambda: NOW,
    )
    runner.stop_accepting()
    result = await runner.start(request())
    assert (result.outcome, result.message) == (
        "refused",
        "the bot is restarting; try again in a moment",
    )
    assert cluster.locks == [] and cluster.patches == [] and cluster.history_reads == 0
