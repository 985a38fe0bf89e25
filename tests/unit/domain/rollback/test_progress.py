"""kubectl rollout status's verdicts, one per rule, in its own words."""

from __future__ import annotations

from typing import Any

from bot.adapters.kube.parsing import parse_deployment
from bot.domain.rollback.progress import Phase, rollout_progress
from tests.builders import deployment, template


def progress_of(generation: int = 6, **status: Any) -> tuple[Phase, str]:
    full = {"observedGeneration": 6, **status}
    p = rollout_progress(
        parse_deployment(deployment(template("1"), revision=4, generation=generation, status=full))
    )
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
