"""Showing a service: its Deployment and revisions read once, as the view the renderers take,
and the "asked" step of the audit trail when someone is offered the rollback buttons."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from bot.config.catalog import ServiceRef
from bot.domain.audit import Step
from bot.domain.errors import RollbackBotError, RollbackRefused
from bot.domain.rollback.gitops import GitopsNote
from bot.domain.rollback.views import ServiceView
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail, slack_step
from bot.usecases.rollback.gitops import GitopsGuard
from bot.usecases.rollback.ports import Clusters, RunningRollbacks

log = logging.getLogger(__name__)


class ServiceViews:
    def __init__(
        self,
        clusters: Clusters,
        running: RunningRollbacks,
        audit: AuditTrail,
        *,
        now: Callable[[], datetime] = utc_now,
        gitops: GitopsGuard | None = None,
    ) -> None:
        self._clusters = clusters
        self._running = running
        self._audit = audit
        self._now = now
        self._gitops = gitops

    def cluster_name(self, ref: ServiceRef) -> str:
        return ref.context or self._clusters.cluster(ref.context).server

    async def view(self, ref: ServiceRef, asked_by: str) -> ServiceView:
        """The service as it is now, for `asked_by` (one history read)."""
        if ref.blue_green is not None:
            raise RollbackRefused(blue_green_refusal(ref.name))
        history = await self._clusters.cluster(ref.context).history(
            ref.namespace, ref.deployment, kind=ref.kind
        )
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

    async def _gitops_note(self, ref: ServiceRef) -> GitopsNote | None:
        """What GitOps would do to a rollback of `ref`, for the versions message."""
        if self._gitops is None:
            return None
        try:
            return await self._gitops.note(ref.target, ref.entry.gitops if ref.entry else None)
        except RollbackBotError as exc:
            log.warning("could not check the GitOps of %s: %s", ref.qualified, exc)
            return None

    async def offer(self, ref: ServiceRef, user: str, channel: str | None) -> ServiceView:
        """The view with rollback buttons for `user`; the offer is recorded."""
        view, gitops = await asyncio.gather(self.view(ref, user), self._gitops_note(ref))
        view = replace(view, gitops=gitops)
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


def blue_green_refusal(service: str) -> str:
    """What a blue-green service answers where a workload's revisions are asked for."""
    return (
        f"{service} is a blue-green service: it is rolled back by switching its Service to the "
        f"other colour (`/rollback {service}` shows the colours with a switch button; from a "
        f"terminal, `rollback-bot switch {service} --to COLOUR`)"
    )
