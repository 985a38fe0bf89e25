"""Picking up a rollback whose replica stopped telling it: what the Deployment shows of it. Pure.

The Lease kept what the run was to do (from which revision, to which ReplicaSet); the Deployment
now tells whether the patch went out before the replica stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.rollback.models import History, RunInfo
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
    if target is not None and equal_ignore_hash(target.template, deployment.template):
        return Pickup("follow", f"the rollback to {target.version} was sent; following it")
    now = f"revision {deployment.revision or '?'} ({deployment.version})"
    if run.from_revision is not None and deployment.revision == run.from_revision:
        return Pickup("not_sent", f"nothing changed: {now} is still deployed")
    return Pickup("moved", f"{now} is deployed now, neither what it ran nor the rollback's target")
