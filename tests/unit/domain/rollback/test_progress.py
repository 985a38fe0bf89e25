"""kubectl rollout status's verdicts, one per rule, in its own words."""

from __future__ import annotations

from typing import Any

from bot.adapters.kube.parsing import parse_deployment
from bot.domain.rollback.progress import Ending, Phase, Progress, ending, rollout_progress
from tests.builders import deployment, template


def observed(generation: int = 6, **status: Any) -> Progress:
    full = {"observedGeneration": 6, **status}
    return rollout_progress(
        parse_deployment(deployment(template("1"), revision=4, generation=generation, status=full))
    )


def progress_of(generation: int = 6, **status: Any) -> tuple[Phase, str]:
    p = observed(generation, **status)
    return p.phase, p.message


def test_waits_for_the_spec_to_be_observed() -> None:
    assert (
        progress_of(generation=7, replicas=3, updatedReplicas=3)[0] is Phase.WAITING_FOR_OBSERVATION
    )


def test_waits_for_new_replicas_to_be_updated() -> None:
    phase, message = progress_of(replicas=4, updatedReplicas=1)
    assert phase is Phase.UPDATING
    assert message == (
        'Waiting for deployment "checkout" rollout to finish: 1 out of 3 new replicas have been '
        "updated..."
    )


def test_waits_for_old_replicas_to_terminate() -> None:
    phase, message = progress_of(replicas=4, updatedReplicas=3)
    assert phase is Phase.TERMINATING_OLD
    assert "1 old replicas are pending termination" in message


def test_waits_for_updated_replicas_to_be_available() -> None:
    phase, message = progress_of(replicas=3, updatedReplicas=3, availableReplicas=2)
    assert phase is Phase.BECOMING_AVAILABLE
    assert "2 of 3 updated replicas are available" in message


def test_complete() -> None:
    phase, message = progress_of(
        replicas=3, updatedReplicas=3, availableReplicas=3, readyReplicas=3
    )
    assert phase is Phase.COMPLETE
    assert message == 'deployment "checkout" successfully rolled out'


def test_progress_deadline_exceeded_fails_with_the_condition_message() -> None:
    condition = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "checkout-h4" has timed out progressing.',
    }
    phase, message = progress_of(replicas=4, updatedReplicas=1, conditions=[condition])
    assert phase is Phase.FAILED
    assert "exceeded its progress deadline" in message
    assert "timed out progressing" in message


def test_a_stale_deadline_condition_does_not_fail_a_new_generation() -> None:
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    phase, _ = progress_of(generation=7, replicas=4, conditions=[condition])
    assert phase is Phase.WAITING_FOR_OBSERVATION


def test_steps_do_not_count_the_old_pods_that_are_still_available() -> None:
    # The thread's case: one new pod of three, the three old ones still serving.
    p = observed(replicas=4, updatedReplicas=1, readyReplicas=3, availableReplicas=3)
    assert p.phase is Phase.UPDATING
    assert p.steps == (1, 9)  # one pod updated; no old one gone, no updated one known available


def test_steps_follow_kubectls_three_waits_to_the_end() -> None:
    # 3 replicas, maxSurge 1, maxUnavailable 0: a new pod, then an old one goes, and so on.
    rollout = [
        {"replicas": 3, "updatedReplicas": 0, "availableReplicas": 3},
        {"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3},
        {"replicas": 4, "updatedReplicas": 1, "availableReplicas": 4},
        {"replicas": 3, "updatedReplicas": 1, "availableReplicas": 3},
        {"replicas": 4, "updatedReplicas": 2, "availableReplicas": 4},
        {"replicas": 3, "updatedReplicas": 2, "availableReplicas": 3},
        {"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3},  # waits: old terminating
        {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2},  # waits: available
        {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3},
    ]
    seen = [observed(**status) for status in rollout]
    done = [p.steps[0] for p in seen]
    assert done == sorted(done), done  # never goes back
    assert [p.phase for p in seen[-3:]] == [
        Phase.TERMINATING_OLD,
        Phase.BECOMING_AVAILABLE,
        Phase.COMPLETE,
    ]
    assert all(p.steps[0] < p.steps[1] for p in seen[:-1])
    assert seen[-1].steps == (9, 9)


def test_steps_are_full_only_when_the_rollout_is_complete() -> None:
    # The spec change not yet observed: the counts are the old version's, all caught up.
    waiting = observed(generation=7, replicas=3, updatedReplicas=3, availableReplicas=3)
    assert waiting.phase is Phase.WAITING_FOR_OBSERVATION
    assert waiting.steps == (0, 9)
    condition = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    failed = observed(
        replicas=3, updatedReplicas=3, availableReplicas=3, readyReplicas=3, conditions=[condition]
    )
    assert failed.phase is Phase.FAILED
    assert failed.steps[0] < failed.steps[1]


def test_the_ending_is_success_only_on_kubectls_verdict_without_error() -> None:
    complete = observed(replicas=3, updatedReplicas=3, availableReplicas=3, readyReplicas=3)
    updating = observed(replicas=4, updatedReplicas=1, availableReplicas=3)
    assert ending(complete, None) is Ending.SUCCEEDED
    assert ending(complete, "could not renew the lock") is Ending.FAILED
    assert ending(updating, "exceeded its progress deadline") is Ending.FAILED
    assert ending(updating, "the API did not answer", unknown=True) is Ending.UNKNOWN
    assert ending(None, "could not patch", unknown=True) is Ending.UNKNOWN
    assert ending(None, None) is Ending.FAILED
