"""Rollout progress by `kubectl rollout status` rules.

Reference: kubectl pkg/polymorphichelpers/rollout_status.go (DeploymentStatusViewer).

Pure: a Deployment snapshot in, a verdict out. The watch that feeds it lives in bot.adapters.kube.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.domain.rollback.models import PROGRESS_DEADLINE_EXCEEDED, Deployment


class Phase(StrEnum):
    WAITING_FOR_OBSERVATION = "waiting"
    UPDATING = "updating"
    TERMINATING_OLD = "terminating"
    BECOMING_AVAILABLE = "available"
    COMPLETE = "complete"
    FAILED = "failed"
    # An OnDelete StatefulSet or DaemonSet: the template is back, and its controller replaces
    # no pod; each takes it once deleted. The rollback did all it can; nothing more will move.
    PODS_TO_DELETE = "pods-to-delete"


@dataclass(frozen=True)
class Progress:
    """One observation of a rollout, with kubectl's wording in `message`."""

    phase: Phase
    message: str
    desired: int
    updated: int
    ready: int
    available: int
    total: int
    revision: int | None

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.COMPLETE, Phase.FAILED, Phase.PODS_TO_DELETE)

    @property
    def steps(self) -> tuple[int, int]:
        """How far the rollout has come, as (done, of), counted the way kubectl waits for it: per
        desired pod, one step when it is updated, one when an old replica is gone, one when an
        updated replica is available. `done == of` only once the rollout is complete.

        The Deployment's available count holds old pods and new ones alike, so the updated
        replicas are known to be available only beyond the old replicas still running: a lower
        bound until the old ones are gone, exact from then on (kubectl's last wait)."""
        desired = max(self.desired, 1)
        of = 3 * desired
        if self.phase is Phase.COMPLETE:
            return of, of
        if self.phase is Phase.WAITING_FOR_OBSERVATION:
            return 0, of  # the counts are still those of the spec before the rollback
        updated = min(max(self.updated, 0), desired)
        old = max(self.total - self.updated, 0)
        gone = desired - min(old, desired)
        available = min(max(self.available - old, 0), updated)
        return min(updated + gone + available, of - 1), of

    @property
    def counts(self) -> str:
        return (
            f"{self.updated}/{self.desired} updated, {self.ready}/{self.desired} ready, "
            f"{self.available}/{self.desired} available"
        )


def rollout_progress(deployment: Deployment) -> Progress:
    """Where the rollout of this Deployment stands, by kubectl's DeploymentStatusViewer rules."""
    status = deployment.status
    desired = deployment.desired_replicas if deployment.desired_replicas is not None else 1
    name = f'deployment "{deployment.name}"'

    def progress(phase: Phase, message: str) -> Progress:
        return Progress(
            phase=phase,
            message=message,
            desired=desired,
            updated=status.updated_replicas,
            ready=status.ready_replicas,
            available=status.available_replicas,
            total=status.replicas,
            revision=deployment.revision,
        )

    if deployment.generation > status.observed_generation:
        return progress(
            Phase.WAITING_FOR_OBSERVATION, "Waiting for deployment spec update to be observed..."
        )
    progressing = status.condition("Progressing")
    if progressing is not None and progressing.reason == PROGRESS_DEADLINE_EXCEEDED:
        detail = f": {progressing.message}" if progressing.message else ""
        return progress(Phase.FAILED, f"{name} exceeded its progress deadline{detail}")
    if deployment.desired_replicas is not None and status.updated_replicas < desired:
        return progress(
            Phase.UPDATING,
            f"Waiting for {name} rollout to finish: {status.updated_replicas} out of {desired} "
            "new replicas have been updated...",
        )
    if status.replicas > status.updated_replicas:
        return progress(
            Phase.TERMINATING_OLD,
            f"Waiting for {name} rollout to finish: {status.replicas - status.updated_replicas} "
            "old replicas are pending termination...",
        )
    if status.available_replicas < status.updated_replicas:
        return progress(
            Phase.BECOMING_AVAILABLE,
            f"Waiting for {name} rollout to finish: {status.available_replicas} of "
            f"{status.updated_replicas} updated replicas are available...",
        )
    return progress(Phase.COMPLETE, f"{name} successfully rolled out")


class Ending(StrEnum):
    """How a followed rollout ended, as the thread tells it."""

    SUCCEEDED = "succeeded"
    # the template is rolled back; the pods take it only when deleted (OnDelete)
    PODS_TO_DELETE = "pods-to-delete"
    FAILED = "failed"  # the rollout's own state says so (or the rollback could not go on)
    UNKNOWN = "unknown"  # the bot lost sight of it: the rollout may well go on


def ending(last: Progress | None, error: str | None, *, unknown: bool = False) -> Ending:
    """Succeeded only when the last observation is kubectl's "successfully rolled out" and
    nothing went wrong; unknown when the bot lost sight of the rollout; failed otherwise."""
    if error is None and last is not None and last.phase is Phase.COMPLETE:
        return Ending.SUCCEEDED
    if error is None and last is not None and last.phase is Phase.PODS_TO_DELETE:
        return Ending.PODS_TO_DELETE
    return Ending.UNKNOWN if unknown else Ending.FAILED
