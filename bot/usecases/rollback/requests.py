"""What the runner is asked (a rollback, from Slack, an approval or the CLI) and what it answers:
the rollback use cases' inputs and outputs, apart from the runner so the guards that look at a
request need not import the runner."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.models import RunInfo, Target, Thread
from bot.domain.rollback.planning import RollbackPlan
from bot.domain.rollback.progress import Progress

# What a stopping replica answers: nothing started, and asking again elsewhere will do.
RESTARTING = "the bot is restarting; try again in a moment"


@dataclass(frozen=True)
class RollbackRequest:
    service: str
    target: Target
    target_replicaset: str
    target_revision: int
    target_version: str
    snapshot: Snapshot | None
    actor: str
    via: str
    reason: str | None
    thread: Thread | None = None
    # How the Deployment's change-cause names the actor ("@alice"); `actor` stays the id that
    # Slack mentions and the audit trail use.
    actor_name: str | None = None
    history_limit: int = 5
    # The catalog's `gitops` policy (suspend | warn | refuse): bot.usecases.rollback.gitops.
    gitops: str = "warn"
    # Break glass past the migration guard (who may was checked by the caller); recorded.
    override: bool = False
    # An Argo Rollout's abort (the traffic back to its stable version), not an undo.
    abort: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """How a started rollback ended. `unknown`: the bot lost sight of it (the cluster stopped
    answering, the patch's answer never came, a shutdown); only the rollout's own state says
    "failed"."""

    succeeded: bool
    timed_out: bool
    error: str | None
    last: Progress | None
    elapsed: float
    unknown: bool = False


@dataclass(frozen=True)
class StartResult:
    outcome: Literal["started", "running", "stale", "refused", "skipped"]
    message: str
    run: RunInfo | None = None
    plan: RollbackPlan | None = None
    completion: asyncio.Future[RunOutcome] | None = None
