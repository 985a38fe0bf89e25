"""Showing a service: its Deployment and revisions read once, as the view the renderers take,
and the "asked" step of the audit trail when someone is offered the rollback buttons."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.config.catalog import ServiceRef
from bot.domain.audit import Step
from bot.domain.rollback.views import ServiceView
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail, slack_step
from bot.usecases.rollback.ports import Clusters, RunningRollbacks


class ServiceViews:
    def __init__(
        self,
        clusters: Clusters,
        running: RunningRollbacks,
        audit: AuditTrail,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._clusters = clusters
        self._running = running
        self._audit = audit
        self._now = now

    def cluster_name(self, ref: ServiceRef) -> str:
        return ref.context or self._clusters.cluster(ref.context).server

    async def view(self, ref: ServiceRef, asked_by: str) -> ServiceView:
        """The service as it is now, for `asked_by` (one history read)."""
        history = await self._clusters.cluster(ref.context).history(ref.namespace, ref.deployment)
        return ServiceView(
            service=ref.name,
            namespace=ref.namespace,
            cluster=self.cluster_name(ref),
            history=history,
            asked_by=asked_by,
            taken_at=self._now(),
            limit=ref.history_limit,
            running=self._running.running(ref.target),
        )

    async def offer(self, ref: ServiceRef, user: str, channel: str | None) -> ServiceView:
        """The view with rollback buttons for `user`; the offer is recorded."""
        view = await self.view(ref, user)
        deployment = view.history.deployment
        await self._audit.record(
            slack_step(
                Step.ASKED,
                ref,
                user,
                self._now(),
                from_version=deployment.version,
                from_revision=deployment.revision,
                channel=channel,
            ),
            deployment,
        )
        return view
