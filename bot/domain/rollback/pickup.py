"""Picking up a rollback whose replica stopped telling it: what the Deployment shows of it. Pure.

The Lease kept what the run was to do (from which revision, to which ReplicaSet); the Deployment
now tells whether the patch went out before the replica stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.rollback.argo_rollouts import template_derives
from bot.domain.rollback.models import History, Revision, RunInfo, WorkloadKind
from bot.domain.rollback.planning import equal_ignore_hash


@dataclass(frozen=True)
class Pickup:
    """`follow`: the patch went out, follow the rollout to its end. `not_sent`: the Deployment
    is where the run found it, nothing changed. `moved`: it is somewhere else now."""

    action: Literal["follow", "not_sent", "moved"]
    detail: str


def pickup(run: RunInfo, history: History) -> Pickup:
    deployment = history.deployment
    target = next((r for r in history.revisions if r.replicaset == run.target_replicaset), None)
    if run.abort:
        # An abort leaves the template alone: the Rollout's status says whether it went out.
        status = deployment.raw.get("status")
        if isinstance(status, dict) and status.get("abort") is True:
            return Pickup("follow", "the abort was sent; following it")
    elif target is not None and _sent(history, target):
        return Pickup("follow", f"the rollback to {target.version} was sent; following it")
    now = f"revision {deployment.revision or '?'} ({deployment.version})"
    if run.from_revision is not None and deployment.revision == run.from_revision:
        return Pickup("not_sent", f"nothing changed: {now} is still deployed")
    return Pickup("moved", f"{now} is deployed now, neither what it ran nor the rollback's target")


def _sent(history: History, target: Revision) -> bool:
    """The workload's template is the target's: kubectl's comparison for its kinds, the
    plugin's (the Rollout's template derives from the ReplicaSet's) for a Rollout."""
    workload = history.deployment
    if workload.kind is WorkloadKind.ROLLOUT:
        return template_derives(workload.template, target.template)
    return equal_ignore_hash(target.template, workload.template)
