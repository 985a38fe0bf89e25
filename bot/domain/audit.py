"""The audit record: one line per step of a rollback, the same in every sink."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Step(StrEnum):
    ASKED = "asked"
    DENIED = "denied"
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    SKIPPED = "skipped"
    BUSY = "busy"
    STARTED = "started"
    PROGRESS = "progress"
    SUCCEEDED = "succeeded"
    UNKNOWN = "unknown"
    # The bot stopped waiting; the rollout itself goes on, its end not known here.
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    # A stopping replica handed its run over; another one took it over to finish it.
    HANDED_OVER = "handed_over"
    TAKEN_OVER = "taken_over"
    # Confirmed, but its replica stopped before sending the patch: nothing changed.
    ABANDONED = "abandoned"
    # The guards: a second approver, break glass, the migration override, GitOps.
    APPROVAL_REQUESTED = "approval_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    BREAK_GLASS = "break_glass"
    OVERRIDE = "override"
    GITOPS_SUSPENDED = "gitops_suspended"
    GITOPS_RESUMED = "gitops_resumed"
    # Automatic rollback: a new rollout watched, its verdict, a person stopping the watch.
    WATCHING = "watching"
    ANALYSED = "analysed"
    WATCH_STOPPED = "watch_stopped"


# Kubernetes Event reasons, CamelCase as the API's conventions ask.
EVENT_REASONS = {
    Step.ASKED: "RollbackOffered",
    Step.DENIED: "RollbackDenied",
    Step.CONFIRMED: "RollbackConfirmed",
    Step.REFUSED: "RollbackRefused",
    Step.SKIPPED: "RollbackSkipped",
    Step.BUSY: "RollbackAlreadyRunning",
    Step.STARTED: "RollbackStarted",
    Step.PROGRESS: "RollbackProgressing",
    Step.SUCCEEDED: "RollbackSucceeded",
    Step.UNKNOWN: "RollbackOutcomeUnknown",
    Step.TIMED_OUT: "RollbackTimedOutWaiting",
    Step.FAILED: "RollbackFailed",
    Step.HANDED_OVER: "RollbackHandedOver",
    Step.TAKEN_OVER: "RollbackTakenOver",
    Step.ABANDONED: "RollbackAbandoned",
    Step.APPROVAL_REQUESTED: "RollbackApprovalRequested",
    Step.APPROVED: "RollbackApproved",
    Step.REJECTED: "RollbackRejected",
    Step.EXPIRED: "RollbackRequestExpired",
    Step.BREAK_GLASS: "RollbackBreakGlass",
    Step.OVERRIDE: "RollbackGuardOverridden",
    Step.GITOPS_SUSPENDED: "RollbackGitOpsSuspended",
    Step.GITOPS_RESUMED: "RollbackGitOpsResumed",
    Step.WATCHING: "RolloutWatched",
    Step.ANALYSED: "RolloutAnalysed",
    Step.WATCH_STOPPED: "RolloutWatchStopped",
}
WARNING_STEPS = frozenset({Step.DENIED, Step.REFUSED, Step.FAILED, Step.UNKNOWN, Step.ABANDONED})


@dataclass(frozen=True)
class AuditRecord:
    step: Step
    service: str
    namespace: str
    deployment: str
    actor: str
    via: str
    at: datetime
    from_version: str | None = None
    to_version: str | None = None
    from_revision: int | None = None
    to_revision: int | None = None
    reason: str | None = None
    detail: str | None = None
    rollback_id: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    context: str | None = None
    # The workload's kind when it is not a Deployment ("StatefulSet", "DaemonSet").
    kind: str | None = None

    @property
    def event_reason(self) -> str:
        return EVENT_REASONS[self.step]

    @property
    def warning(self) -> bool:
        return self.step in WARNING_STEPS

    def sentence(self) -> str:
        """One sentence for a person: who, what, from which version to which, why, outcome."""
        versions = ""
        if self.to_version:
            versions = f" from {self.from_version or '?'} to {self.to_version}"
        verb = {
            Step.ASKED: "asked for the versions of",
            Step.DENIED: "was denied a rollback of",
            Step.CONFIRMED: "confirmed a rollback of",
            Step.REFUSED: "was refused a rollback of",
            Step.SKIPPED: "asked for a rollback already in place of",
            Step.BUSY: "asked for a rollback already running of",
            Step.STARTED: "started rolling back",
            Step.PROGRESS: "is rolling back",
            Step.SUCCEEDED: "rolled back",
            Step.UNKNOWN: "lost sight of the rollback of",
            Step.TIMED_OUT: "stopped waiting for the rollback of",
            Step.APPROVAL_REQUESTED: "asked for approval to roll back",
            Step.APPROVED: "approved the rollback of",
            Step.REJECTED: "rejected the rollback of",
            Step.BREAK_GLASS: "broke glass, without approval, to roll back",
            Step.OVERRIDE: "overrode a guard to roll back",
            Step.GITOPS_SUSPENDED: "had GitOps auto-sync suspended to roll back",
            Step.GITOPS_RESUMED: "resumed GitOps auto-sync of",
            Step.WATCHING: "started watching the new rollout of",
            Step.ANALYSED: "judged the new rollout of",
            Step.WATCH_STOPPED: "stopped the watch of",
            Step.FAILED: "failed to roll back",
        }.get(self.step)
        if verb is None:  # what happened to the rollback, not what its asker did
            happened = {
                Step.HANDED_OVER: "was handed over by a stopping replica",
                Step.TAKEN_OVER: "was picked up by another replica",
                Step.ABANDONED: "was never sent",
                Step.EXPIRED: "expired waiting for approval",
            }[self.step]
            text = (
                f"the rollback of {self.service}{versions} asked by {self.actor} via "
                f"{self.via} {happened}"
            )
        else:
            text = f"{self.actor} {verb} {self.service}{versions} via {self.via}"
        if self.reason:
            text += f" (reason: {self.reason})"
        if self.detail:
            text += f": {self.detail}"
        return text

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["step"] = str(self.step)
        data["at"] = self.at.isoformat()
        data["event"] = "rollback." + str(self.step)
        return data
