"""What the Slack handlers need, built once by the composition root (`bot.entry.serve.wiring`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.domain.audit import AuditRecord, Step
from bot.usecases.audit import AuditTrail
from bot.config.catalog import Catalog, ServiceRef
from bot.usecases.rollback.engine import RollbackEngine, Target
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.guards import AccessPolicy, may_roll_back
from bot.domain.rollback.models import Deployment
from bot.usecases.rollback.runner import RolloutRunner
from bot.adapters.slack.directory import UserDirectory

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    catalog: Catalog
    engine: RollbackEngine
    runner: RolloutRunner
    audit: AuditTrail
    directory: UserDirectory
    command: str = "/rollback"
    now: Callable[[], datetime] = _now

    def target(self, ref: ServiceRef) -> Target:
        return Target(ref.namespace, ref.deployment, ref.context)

    def cluster_name(self, ref: ServiceRef) -> str:
        return ref.context or self.engine.cluster(self.target(ref)).server

    async def record(
        self,
        step: Step,
        ref: ServiceRef,
        user: str,
        deployment: Deployment | None = None,
        **details: Any,
    ) -> None:
        """One step of the audit trail, by a Slack user about a catalog service."""
        await self.audit.record(
            AuditRecord(
                step=step,
                service=ref.name,
                namespace=ref.namespace,
                deployment=ref.deployment,
                actor=user,
                via="Slack",
                at=self.now(),
                context=ref.context,
                **details,
            ),
            deployment,
        )

    async def record_denied(self, ref: ServiceRef, user: str, what: str) -> None:
        """A refused click or confirmation, recorded on the Deployment too when it can be read."""
        deployment = None
        try:
            deployment = await self.engine.status(self.target(ref))
        except RollbackBotError:
            log.warning("could not read %s to record a denied %s", ref.qualified, what)
        await self.record(Step.DENIED, ref, user, deployment, detail=what)

    async def may_roll_back(self, ref: ServiceRef, user: str) -> bool:
        """Re-asked on every click and confirmation: group membership can change mid-incident."""
        entry = ref.entry
        if entry is None or not entry.restricted:
            return True
        policy = AccessPolicy(
            users=frozenset(entry.allowed_users), groups=frozenset(entry.allowed_groups)
        )
        if user in policy.users:
            return True
        groups = await self.directory.groups_of(user, policy.groups)
        return may_roll_back(policy, user, groups)
