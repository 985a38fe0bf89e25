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
        return self.phase in (Phase.COMPLETE, Phase.FAILED)

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
