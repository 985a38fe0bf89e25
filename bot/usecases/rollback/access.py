"""Who may roll a service back: its catalog entry's users and groups, asked again on every click
and confirmation (group membership can change mid-incident); a refusal is recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.config.catalog import ServiceRef
from bot.domain.audit import Step
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.guards import AccessPolicy, may_roll_back
from bot.domain.rollback.models import Deployment
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail, slack_step
from bot.usecases.rollback.ports import Clusters, GroupDirectory

log = logging.getLogger(__name__)


class Access:
    def __init__(
        self,
        directory: GroupDirectory,
        clusters: Clusters,
        audit: AuditTrail,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._directory = directory
        self._clusters = clusters
        self._audit = audit
        self._now = now

    async def may_roll_back(self, ref: ServiceRef, user: str) -> bool:
        """Whether `user` may roll `ref` back now (nothing is recorded: for listings)."""
        entry = ref.entry
        if entry is None or not entry.restricted:
            return True
        policy = AccessPolicy(
            users=frozenset(entry.allowed_users), groups=frozenset(entry.allowed_groups)
        )
        if user in policy.users:
            return True
        groups = await self._directory.groups_of(user, policy.groups)
        return may_roll_back(policy, user, groups)

    async def authorize(self, ref: ServiceRef, user: str, what: str) -> bool:
        """Whether `user` may do `what` ("click", "confirmation") to roll `ref` back; a refusal
        is recorded, on the Deployment too when it can be read."""
        if await self.may_roll_back(ref, user):
            return True
        deployment: Deployment | None = None
        try:
            deployment = await self._clusters.cluster(ref.context).read(
                ref.namespace, ref.deployment
            )
        except RollbackBotError:
            log.warning("could not read %s to record a denied %s", ref.qualified, what)
        denied = slack_step(Step.DENIED, ref, user, self._now(), detail=what)
        await self._audit.record(denied, deployment)
        return False
