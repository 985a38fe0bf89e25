"""Who may roll back, and whether a button still describes the cluster. Pure decisions."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.domain.rollback.models import History


@dataclass(frozen=True)
class AccessPolicy:
    """Slack users and user groups allowed to roll a service back. `anyone`: with neither named,
    everyone in the workspace may (a catalog entry's default); otherwise only those named."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    anyone: bool = True

    @property
    def open(self) -> bool:
        return self.anyone and not self.users and not self.groups


def may_roll_back(
    policy: AccessPolicy, user: str, user_groups: Collection[str], *, external: bool = False
) -> bool:
    """Allowed when the policy is open, names the user, or names one of the user's groups. A user
    of another workspace (Slack Connect) is allowed only when named: groups and "anyone" mean
    this workspace's people."""
    if external:
        return user in policy.users
    return policy.open or user in policy.users or any(g in policy.groups for g in user_groups)


@dataclass(frozen=True)
class Snapshot:
    """What a message showed when it was taken: the deployed revision and the spec generation."""

    revision: int | None
    generation: int
    target_replicaset: str
    target_revision: int


def staleness(snapshot: Snapshot, fresh: History) -> str | None:
    """Why acting on this snapshot would be acting on stale state, or None when it is current.

    A new revision (a deploy or someone's rollback), any spec change, or the target ReplicaSet
    gone or renumbered all mean the buttons no longer describe the cluster.
    """
    deployment = fresh.deployment
    target = next((r for r in fresh.revisions if r.replicaset == snapshot.target_replicaset), None)
    if deployment.revision != snapshot.revision:
        now = f"revision {deployment.revision} ({deployment.version})"
        cause = f": {deployment.change_cause}" if deployment.change_cause else ""
        return f"the deployment moved from revision {snapshot.revision} to {now}{cause}"
    if deployment.generation != snapshot.generation:
        return "the deployment's spec changed since this message was taken"
    if target is None:
        return f"revision {snapshot.target_revision} is no longer kept in the history"
    if target.number != snapshot.target_revision:
        return f"revision {snapshot.target_revision} is now revision {target.number}"
    return None
