"""Before a confirmation opens: what the rollback would change (the plan, read from the cluster
now), or why it is refused (the migration guard, a paused Deployment, a revision gone); and who
may break glass past the migration guard (the catalog's `break_glass` people), asked at the
click and again at the submit, a refusal recorded."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.config.catalog import ServiceRef
from bot.domain.audit import Step
from bot.domain.errors import RollbackRefused
from bot.domain.rollback.planning import RollbackPlan, plan_rollback
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail, slack_step
from bot.usecases.rollback.ports import Clusters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preview:
    """The plan towards the clicked revision as the cluster is now, or why there is none."""

    plan: RollbackPlan | None
    refusal: str | None = None


class Previews:
    def __init__(
        self,
        clusters: Clusters,
        audit: AuditTrail,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._clusters = clusters
        self._audit = audit
        self._now = now

    async def preview(
        self,
        ref: ServiceRef,
        target_replicaset: str,
        target_revision: int,
        user: str,
        *,
        override: bool = False,
        channel: str | None = None,
    ) -> Preview:
        """The plan for a click on revision `target_revision` (pinned by its ReplicaSet). A
        refusal (the migration guard unless `override`, a paused Deployment) is recorded; a
        revision no longer kept is only told (the confirmation would refuse it as stale)."""
        history = await self._clusters.cluster(ref.context).history(
            ref.namespace, ref.deployment, kind=ref.kind
        )
        chosen = next((r for r in history.revisions if r.replicaset == target_replicaset), None)
        if chosen is None:
            return Preview(None, f"revision {target_revision} is no longer kept in the history")
        try:
            plan = plan_rollback(history, chosen.number, override=override)
        except RollbackRefused as exc:
            deployment = history.deployment
            await self._audit.record(
                slack_step(
                    Step.REFUSED,
                    ref,
                    user,
                    self._now(),
                    from_version=deployment.version,
                    from_revision=deployment.revision,
                    to_version=chosen.version,
                    to_revision=chosen.number,
                    detail=f"click: {exc}",
                    channel=channel,
                ),
                deployment,
            )
            return Preview(None, str(exc))
        return Preview(plan)
