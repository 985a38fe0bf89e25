"""GitOps that would undo a rollback (argo-cd #2441, #5351, #9570; flux #2285): the catalog's
`gitops` policy applied to a rollback, the "Resume auto-sync" button, and the reminders while
the bot keeps auto-sync suspended (argo-cd #9344).

- `warn`: the confirmation says the rollback will be reverted (and a CLI rollback logs it).
- `refuse`: no rollback; the person is told what to do in Git instead.
- `suspend`: just before the patch, auto-sync is turned off (Argo CD: no
  `spec.syncPolicy.automated`, as its own rollback does; Flux: `spec.suspend: true`), with the
  bot's mark on the object (what to restore, the thread). Recorded and told in the thread.

Everything later (the button, the reminders) is derived from that mark in the cluster, never
from a replica's memory: any replica, or a restarted one, sees the same suspension.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import ClusterError, Conflict, RollbackBotError, RollbackRefused
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.gitops import (
    REMINDER_INTERVAL,
    GitopsNote,
    Managed,
    Policy,
    Suspension,
    in_git_instead,
    reminder_due,
    resume_warning,
)
from bot.domain.rollback.models import Deployment, RunInfo, Target, Thread
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.ports import Clusters, GitOps, GitopsNotices

if TYPE_CHECKING:
    from bot.usecases.rollback.requests import RollbackRequest

log = logging.getLogger(__name__)

POLICIES: tuple[Policy, ...] = ("suspend", "warn", "refuse")
WRITE_ATTEMPTS = 3
WRITE_BACKOFF = Backoff(first=0.05, factor=2.0, cap=0.5)


def policy_of(value: str | None) -> Policy:
    """The catalog's `gitops` value (validated there); anything else is the default, warn."""
    for policy in POLICIES:
        if value == policy:
            return policy
    return "warn"


@dataclass(frozen=True)
class ResumeResult:
    outcome: Literal["resumed", "warn", "not_suspended"]
    message: str
    managed: Managed | None = None


class GitopsGuard:
    def __init__(
        self,
        gitops: GitOps,
        clusters: Clusters,
        audit: AuditTrail,
        notices: GitopsNotices | None = None,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._gitops = gitops
        self._clusters = clusters
        self._audit = audit
        self._notices = notices
        self._now = now

    async def note(self, target: Target, policy: str | None) -> GitopsNote | None:
        """What manages the Deployment and what the policy makes of it; None when nothing."""
        managed = await self._gitops.inspect(target)
        return None if managed is None else GitopsNote(managed, policy_of(policy))

    async def refusal(self, request: RollbackRequest) -> str | None:
        """Why this rollback may not start because of GitOps, or None."""
        note = await self.note(request.target, request.gitops)
        if note is None:
            return None
        if note.action == "refuse":
            return in_git_instead(note.managed, request.service)
        if note.action == "suspend" and note.managed.state is None:
            return _cannot_suspend(note.managed)
        return None

    async def before_patch(
        self, request: RollbackRequest, run: RunInfo, deployment: Deployment
    ) -> bool:
        """Just before the patch: under `suspend`, turn auto-sync off (recorded, told in the
        thread); under `warn`, say it in the log (the CLI shows it). True when this turned it
        off (the caller turns it back on if the patch then never goes out). Raises
        RollbackRefused when the rollback must not go out (it would be reverted, and auto-sync
        could not be suspended, or the catalog refuses)."""
        target = request.target
        note = await self.note(target, request.gitops)
        if note is None or note.action == "none":
            return False
        if note.action == "warn":
            log.warning("%s is %s", request.service, note.text)
            return False
        if note.action == "refuse":
            raise RollbackRefused(in_git_instead(note.managed, request.service))
        state = note.managed.state
        if state is None:
            raise RollbackRefused(_cannot_suspend(note.managed))
        thread = request.thread
        suspension = Suspension(
            at=self._now(),
            by=request.actor,
            service=request.service,
            namespace=target.namespace,
            deployment=target.name,
            context=target.context,
            channel=thread.channel if thread else None,
            thread_ts=thread.thread_ts if thread else None,
            rollback_id=run.rollback_id,
            previous=state.automated if state.kind == "Application" else state.suspend,
            bad_version=deployment.version,
            revision=state.revision,
        )
        managed = note.managed

        async def attempt(number: int) -> Managed | None:
            current = managed if number == 1 else await self._gitops.inspect(target)
            if current is None or current.state is None or not current.state.auto_sync:
                return current  # someone else turned it off meanwhile
            return await self._gitops.suspend(target, current, suspension)

        try:
            suspended = await retry(
                attempt, retry_on=Conflict, attempts=WRITE_ATTEMPTS, backoff=WRITE_BACKOFF
            )
        except ClusterError as exc:
            raise RollbackRefused(
                f"auto-sync of {managed.label} could not be suspended ({exc}), and the rollback "
                "would be reverted without that: nothing was changed"
            ) from None
        if suspended is None or suspended.state is None or suspended.state.suspension is None:
            return False  # turned off by someone else: not the bot's to resume
        await self._audit.record(
            self._record(
                Step.GITOPS_SUSPENDED,
                suspension,
                detail=f"auto-sync of {suspended.label} turned off before the rollback",
                from_version=run.from_version,
                to_version=run.to_version,
            ),
            deployment,
        )
        if self._notices is not None and thread is not None:
            await _quietly(
                self._notices.suspended(thread, suspended, suspension), "tell the suspension"
            )
        return True

    async def resume(
        self, target: Target, actor: str, via: str, *, force: bool = False
    ) -> ResumeResult:
        """Turn back on the auto-sync the bot suspended, exactly as it was. Unless `force`,
        first says ("warn") when Git may still name the bad version."""
        managed = await self._gitops.inspect(target)
        if managed is None:
            return ResumeResult("not_suspended", f"nothing manages {target} through GitOps now")
        state = managed.state
        if state is None:
            raise ClusterError(f"{managed.label} could not be read: {managed.problem}")
        if state.suspension is None:
            return ResumeResult(
                "not_suspended",
                f"auto-sync of {managed.label} is not suspended by the bot (resumed already?)",
                managed,
            )
        warning = resume_warning(state) if state.suspended_by_bot else None
        if warning is not None and not force:
            return ResumeResult("warn", warning, managed)

        async def attempt(number: int) -> Managed:
            current = managed if number == 1 else await self._gitops.inspect(target)
            if current is None or current.state is None or current.state.suspension is None:
                raise _AlreadyResumed
            return await self._gitops.resume(target, current)

        try:
            resumed = await retry(
                attempt, retry_on=Conflict, attempts=WRITE_ATTEMPTS, backoff=WRITE_BACKOFF
            )
        except _AlreadyResumed:
            return ResumeResult(
                "not_suspended", f"auto-sync of {managed.label} was resumed meanwhile", managed
            )
        suspension = state.suspension
        detail = f"auto-sync of {resumed.label} restored as it was before the rollback"
        if not state.suspended_by_bot:
            detail = f"auto-sync of {resumed.label} was already back on; the bot's mark removed"
        if warning is not None:
            detail += f"; resumed despite: {warning}"
        deployment = await self._deployment(target)
        await self._audit.record(
            self._record(Step.GITOPS_RESUMED, suspension, actor=actor, via=via, detail=detail),
            deployment,
        )
        thread = _thread(suspension)
        if self._notices is not None and thread is not None:
            await _quietly(
                self._notices.resumed(thread, resumed, actor, warning), "tell the resumption"
            )
        return ResumeResult("resumed", detail, resumed)

    async def _deployment(self, target: Target) -> Deployment | None:
        try:
            return await self._clusters.cluster(target.context).read(
                target.namespace, target.name, kind=target.kind
            )
        except RollbackBotError as exc:
            log.warning("could not read %s to record the GitOps step: %s", target, exc)
            return None

    def _record(
        self,
        step: Step,
        suspension: Suspension,
        *,
        detail: str,
        actor: str | None = None,
        via: str = "Slack",
        from_version: str | None = None,
        to_version: str | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            step=step,
            service=suspension.service,
            namespace=suspension.namespace,
            deployment=suspension.deployment,
            actor=actor or suspension.by,
            via=via,
            at=self._now(),
            from_version=from_version,
            to_version=to_version,
            detail=detail,
            rollback_id=suspension.rollback_id,
            channel=suspension.channel,
            thread_ts=suspension.thread_ts,
            context=suspension.context,
        )


class GitopsReminders:
    """Every `interval` while the bot keeps a service's auto-sync suspended, one reminder in the
    rollback's thread. Each replica looks at the catalog's Deployments; the reminder's time is
    written on the GitOps object with a precondition first, so one replica reminds."""

    def __init__(
        self,
        gitops: GitOps,
        notices: GitopsNotices,
        services: Mapping[Target, str],
        *,
        interval: timedelta = REMINDER_INTERVAL,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._gitops = gitops
        self._notices = notices
        self._targets = sorted(services, key=lambda t: (t.context or "", t.namespace, t.name))
        self._interval = interval
        self._now = now
        self._failing: set[Target] = set()
        # How often to look: a small share of the interval, at most every 5 minutes.
        self.every = min(max(interval.total_seconds() / 8, 0.05), 300.0)

    async def scan(self) -> int:
        """Look once; how many reminders this replica posted."""
        posted = 0
        for target in self._targets:
            try:
                managed = await self._gitops.inspect(target)
                now = self._now()
                if managed is None or managed.state is None:
                    continue
                if not reminder_due(managed.state, now, self._interval):
                    continue
                if not await self._gitops.mark_reminded(target, managed, now):
                    continue  # another replica reminded, or the object changed: next time
            except RollbackBotError as exc:
                if target not in self._failing:  # said once per outage
                    log.warning("could not look for a GitOps suspension of %s: %s", target, exc)
                self._failing.add(target)
                continue
            self._failing.discard(target)
            thread = _thread(managed.state.suspension)
            if thread is not None:
                await _quietly(self._notices.reminder(thread, managed, now), "post a reminder")
                posted += 1
        return posted

    async def run(self) -> None:
        """Look every `every` seconds until cancelled."""
        while True:
            await self.scan()
            await asyncio.sleep(self.every)


class _AlreadyResumed(Exception):
    pass


def _thread(suspension: Suspension | None) -> Thread | None:
    if suspension is None or suspension.channel is None or suspension.thread_ts is None:
        return None
    return Thread(suspension.channel, suspension.thread_ts)


def _cannot_suspend(managed: Managed) -> str:
    return (
        f"the catalog says to suspend the auto-sync of {managed.label} before rolling back, "
        f"and it could not be read ({managed.problem}): nothing was changed"
    )


async def _quietly(awaitable: Awaitable[None], what: str) -> None:
    try:
        await awaitable
    except Exception:  # a Slack hiccup must not undo what was done and recorded
        log.exception("could not %s", what)
