"""Who may roll a service back, asked again on every click and confirmation (group membership can
change mid-incident, and is read afresh at confirmation); a refusal is recorded.

The bot acts with its own service account, so a Deployment the catalog does not list is nobody's
to roll back from Slack unless the catalog's `uncataloged` policy names who may.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.config.catalog import Catalog, ServiceRef
from bot.domain.audit import Step
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.guards import AccessPolicy, may_roll_back
from bot.domain.rollback.models import Deployment
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail, slack_step
from bot.usecases.rollback.ports import Clusters, GroupDirectory

log = logging.getLogger(__name__)

NOT_BREAK_GLASS = (
    "only the catalog's break-glass people may skip approval or override the migration guard"
)


def policy_of(catalog: Catalog, ref: ServiceRef) -> AccessPolicy | None:
    """The service's policy; None for a Deployment outside the catalog with no policy for it."""
    if ref.entry is not None:
        return AccessPolicy(
            users=frozenset(ref.entry.allowed_users), groups=frozenset(ref.entry.allowed_groups)
        )
    if catalog.uncataloged is None:
        return None
    return AccessPolicy(
        users=frozenset(catalog.uncataloged.allowed_users),
        groups=frozenset(catalog.uncataloged.allowed_groups),
        anyone=False,
    )


def approvers_of(ref: ServiceRef) -> tuple[str, ...]:
    """Who may approve a rollback of `ref`: its `approvers`, else who may roll it back (empty:
    anyone who may roll it back)."""
    entry = ref.entry
    if entry is None:
        return ()
    return entry.approvers or (*entry.allowed_users, *entry.allowed_groups)


class Access:
    def __init__(
        self,
        catalog: Catalog,
        directory: GroupDirectory,
        clusters: Clusters,
        audit: AuditTrail,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._catalog = catalog
        self._directory = directory
        self._clusters = clusters
        self._audit = audit
        self._now = now

    async def refusal(
        self, ref: ServiceRef, user: str, *, external: bool = False, fresh: bool = False
    ) -> str | None:
        """Why `user` may not roll `ref` back now, or None when they may (nothing recorded).

        `external`: the user belongs to another workspace (Slack Connect). People of another
        workspace and guests are let in only where named: "anyone" and groups mean the
        workspace's own people. `fresh`: ask Slack for group membership now rather than trust
        the short cache (the last check before acting)."""
        policy = policy_of(self._catalog, ref)
        if policy is None:
            return (
                f"{ref.qualified} is not in the service catalog, and the bot rolls back only the "
                "services its catalog names (an admin may add it, or allow uncataloged "
                "deployments for named users)"
            )
        if user in policy.users:
            return None
        if external:
            return "people of another workspace may roll back only where the catalog names them"
        # Guests are let in only by name: "anyone" and groups mean the workspace's own people.
        if await self._directory.is_guest(user):
            return "guests of the workspace may roll back only where the catalog names them"
        if policy.open:
            return None
        groups: frozenset[str] = frozenset()
        if policy.groups:
            groups = await self._directory.groups_of(user, policy.groups, fresh=fresh)
        if may_roll_back(policy, user, groups):
            return None
        if ref.entry is None:
            return (
                f"{ref.qualified} is not in the service catalog, and only the users and groups "
                "its `uncataloged` policy names may use such deployments"
            )
        return "only the users and groups its catalog entry names may"

    async def approval_refusal(
        self, ref: ServiceRef, user: str, *, external: bool = False
    ) -> str | None:
        """Why `user` may not approve a rollback of `ref` now (groups asked afresh), or None."""
        approvers = approvers_of(ref)
        if not approvers:
            return await self.refusal(ref, user, external=external, fresh=True)
        if user in approvers:
            return None
        if external:
            return "people of another workspace may approve only where the catalog names them"
        if await self._directory.is_guest(user):
            return "guests of the workspace may approve only where the catalog names them"
        groups = frozenset(a for a in approvers if a.startswith("S"))
        if groups and await self._directory.groups_of(user, groups, fresh=True):
            return None
        return "only the approvers its catalog entry names may approve"

    async def authorize_approval(
        self, ref: ServiceRef, user: str, *, external: bool = False
    ) -> str | None:
        """None when `user` may approve or reject a rollback of `ref`; else why not, recorded."""
        refusal = await self.approval_refusal(ref, user, external=external)
        if refusal is not None:
            await self._denied(ref, user, "approval", refusal)
        return refusal

    async def may_break_glass(self, user: str, *, external: bool = False) -> bool:
        """Whether `user` is one of the catalog's break-glass people (groups asked afresh)."""
        policy = self._catalog.break_glass
        if policy is None or external:
            return False
        if user in policy.allowed_users:
            return True
        if not policy.allowed_groups or await self._directory.is_guest(user):
            return False
        return bool(await self._directory.groups_of(user, policy.allowed_groups, fresh=True))

    async def authorize_break_glass(
        self, ref: ServiceRef, user: str, what: str, *, external: bool = False
    ) -> str | None:
        """None when `user` may break glass (skip approvals, override the migration guard): one
        of the catalog's break-glass people; else why not, recorded as a denied `what`."""
        if await self.may_break_glass(user, external=external):
            return None
        await self._denied(ref, user, what, NOT_BREAK_GLASS)
        return NOT_BREAK_GLASS

    async def may_name_uncataloged(self, user: str) -> bool:
        """Whether `user` may name Deployments outside the catalog at all."""
        policy = self._catalog.uncataloged
        if policy is None:
            return False
        if user in policy.allowed_users:
            return True
        return bool(await self._directory.groups_of(user, policy.allowed_groups))

    async def may_roll_back(self, ref: ServiceRef, user: str) -> bool:
        """For listings: whether `user` may roll `ref` back (nothing is recorded)."""
        return await self.refusal(ref, user) is None

    async def authorize(
        self,
        ref: ServiceRef,
        user: str,
        what: str,
        *,
        external: bool = False,
        fresh: bool = False,
    ) -> str | None:
        """None when `user` may do `what` ("click", "confirmation", "view") about `ref`; else
        why not, and the refusal is recorded (on the Deployment too when it can be read)."""
        refusal = await self.refusal(ref, user, external=external, fresh=fresh)
        if refusal is not None:
            await self._denied(ref, user, what, refusal)
        return refusal

    async def _denied(self, ref: ServiceRef, user: str, what: str, refusal: str) -> None:
        """Record a refusal, on the Deployment too when it can be read."""
        deployment: Deployment | None = None
        try:
            deployment = await self._clusters.cluster(ref.context).read(
                ref.namespace, ref.deployment, kind=ref.kind
            )
        except RollbackBotError:
            log.warning("could not read %s to record a denied %s", ref.qualified, what)
        denied = slack_step(Step.DENIED, ref, user, self._now(), detail=f"{what}: {refusal}")
        await self._audit.record(denied, deployment)
