"""Running rollbacks: one per Deployment at a time (in this replica, and across replicas and the
CLI through the cluster's Lease), in the background, told step by step to a reporter and the
audit trail.

`start` decides quickly (fresh state, stale check, plan, lock) and returns, so a Slack handler
answers within its 3 seconds; the rollout itself runs as a task. The history is read once to
decide, once more per conflict while patching, and once after the outcome to show the new state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import (
    ClusterError,
    RollbackBotError,
    RollbackRefused,
    RolloutTimedOut,
    Stale,
)
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.guards import staleness
from bot.domain.rollback.locks import LockLost
from bot.domain.rollback.models import Deployment, History, RunInfo, Target, WorkloadKind
from bot.domain.rollback.pickup import pickup
from bot.domain.rollback.planning import RollbackCause, RollbackPlan, plan_abort, plan_rollback
from bot.domain.rollback.progress import Phase, Progress
from bot.domain.rollback.views import ServiceView
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.ports import Reporter, Reporters, VersionMessages
from bot.usecases.rollback.requests import RESTARTING, RollbackRequest, RunOutcome, StartResult

if TYPE_CHECKING:  # the CLI, which counts nothing, does not load prometheus_client
    from bot.observability.metrics import Metrics
    from bot.usecases.rollback.gitops import GitopsGuard

log = logging.getLogger(__name__)

DONE = (Phase.COMPLETE, Phase.PODS_TO_DELETE)

LEASE_SECONDS = 30
RELEASE_ATTEMPTS = 4
RELEASE_BACKOFF = Backoff(first=0.5, factor=2.0, cap=4.0)
# Rollback ids told here lately: a run whose unlock did not get through is not picked up again.
TOLD_KEPT = 256
PROGRESS_AUDIT_EVERY = 0.5  # record a progress milestone at each half of the pods updated


def replica_id() -> str:
    """Who holds a rollback lock: the pod's name in a cluster (kept across a container restart,
    so the restarted bot picks up its own unfinished rollouts at once), elsewhere host, pid and
    a few random digits (two bots in one process are two replicas)."""
    return (
        os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
    )


@dataclass
class _Active:
    run: RunInfo
    task: asyncio.Task[None] | None = None
    lost: LockLost | None = None  # another replica holds the lock now: stop acting
    handing_over: bool = False  # this replica is stopping: another one finishes the story
    ending: bool = False  # following is over and the end is being told: never cut short
    # Set once nothing is on its way to the Deployment any more (the patch went out, or never
    # will): only then may the run be handed over.
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: asyncio.Future[RunOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True)
class _Story:
    """One rollback being told, as it stands when following it ended."""

    request: RollbackRequest
    reporter: Reporter
    plan: RollbackPlan | None
    record: _Records
    run: RunInfo
    slot: _Active
    last: Progress | None
    elapsed: float


@dataclass(frozen=True)
class _Ending:
    """How following a rollout ended, before the outcome is decided."""

    error: str | None
    timed_out: bool
    stale: bool
    unknown: bool


@dataclass(frozen=True)
class _Records:
    """Audit records of one request, each built at the step it records."""

    request: RollbackRequest
    deployment: Deployment | None  # None: asked before the Deployment was read
    now: Callable[[], datetime]
    run: RunInfo | None = None  # a run picked up: its versions, as the Lease kept them

    def __call__(
        self,
        step: Step,
        *,
        plan: RollbackPlan | None = None,
        detail: str | None = None,
        rollback_id: str | None = None,
        at: datetime | None = None,
    ) -> AuditRecord:
        request, deployment, run = self.request, self.deployment, self.run
        kind = request.target.kind
        from_version: str | None
        if plan is not None:
            from_version, to_version = plan.from_version, plan.target.version
            from_revision, to_revision = plan.from_revision, plan.target.number
        elif run is not None:
            from_version, to_version = run.from_version, run.to_version
            from_revision, to_revision = run.from_revision, run.to_revision
        else:
            from_version = deployment.version if deployment else None
            from_revision = deployment.revision if deployment else None
            to_version, to_revision = None, request.target_revision
        return AuditRecord(
            step=step,
            service=request.service,
            namespace=request.target.namespace,
            deployment=request.target.name,
            actor=request.actor,
            via=request.via,
            at=at or self.now(),
            from_version=from_version,
            to_version=to_version,
            from_revision=from_revision,
            to_revision=to_revision,
            reason=request.reason,
            detail=detail,
            rollback_id=rollback_id,
            channel=request.thread.channel if request.thread else None,
            thread_ts=request.thread.thread_ts if request.thread else None,
            context=request.target.context,
            kind=None if kind is WorkloadKind.DEPLOYMENT else kind.value,
        )


class RolloutRunner:
    def __init__(
        self,
        engine: RollbackEngine,
        audit: AuditTrail,
        reporters: Reporters,
        *,
        replica_id: str,
        messages: VersionMessages | None = None,
        rollout_timeout: float = 900.0,
        lease_seconds: int = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
        gitops: GitopsGuard | None = None,
    ) -> None:
        self._engine = engine
        self._gitops = gitops
        self._audit = audit
        self._reporters = reporters
        self._messages = messages
        self._me = replica_id
        self._rollout_timeout = rollout_timeout
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._now = now
        self._metrics = metrics
        self._active: dict[Target, _Active] = {}
        self._told: deque[str] = deque(maxlen=TOLD_KEPT)
        self._accepting = True

    @property
    def replica(self) -> str:
        """Who this replica is, as its Leases name it."""
        return self._me

    def stop_accepting(self) -> None:
        """This replica is stopping: no new rollback starts here (the running ones go on)."""
        self._accepting = False

    def running(self, target: Target) -> RunInfo | None:
        active = self._active.get(target)
        return active.run if active else None

    async def start(self, request: RollbackRequest) -> StartResult:
        target = request.target
        if not self._accepting:
            return StartResult("refused", RESTARTING)
        if target in self._active:
            run = self._active[target].run
            await self._audit.record(self._busy(request, run))
            return StartResult("running", f"{run.actor} is already rolling back", run)
        # Reserved before the first await: two clicks in the same instant cannot both pass.
        slot = _Active(
            run=RunInfo(
                service=request.service,
                actor=request.actor,
                from_version="?",
                to_version=request.target_version,
                to_revision=request.target_revision,
                started_at=self._now(),
            )
        )
        self._active[target] = slot
        try:
            result = await self._prepare(request, slot)
        except BaseException:
            self._release_slot(target, slot)
            raise
        if result.outcome != "started":
            self._release_slot(target, slot)
        return result

    def _release_slot(self, target: Target, slot: _Active) -> None:
        slot.sent.set()
        if self._active.get(target) is slot:
            del self._active[target]

    async def _prepare(self, request: RollbackRequest, slot: _Active) -> StartResult:
        target = request.target
        history = await self._engine.history(target)
        deployment = history.deployment
        record = _Records(request, deployment, self._now)
        stale = self._stale(request, history)
        if stale is not None:
            await self._audit.record(record(Step.REFUSED, detail=f"stale: {stale}"), deployment)
            # What the asker saw is out of date: show them the state just read.
            await self._show(request, history, None, "refresh the stale message")
            return StartResult("stale", stale)
        # An abort changes the Rollout's status only: nothing GitOps would revert.
        gitops = (
            await self._gitops.refusal(request)
            if self._gitops is not None and not request.abort
            else None
        )
        if gitops is not None:
            await self._audit.record(record(Step.REFUSED, detail=gitops), deployment)
            return StartResult("refused", gitops)
        chosen = next(r for r in history.revisions if r.replicaset == request.target_replicaset)
        cause = RollbackCause(
            actor=request.actor_name or request.actor,
            via=request.via,
            reason=request.reason,
            at=self._now(),
            actor_id=request.actor if request.actor_name else None,
        )
        try:
            plan = (
                plan_abort(history)
                if request.abort
                else plan_rollback(history, chosen.number, cause, override=request.override)
            )
        except RollbackRefused as exc:
            await self._audit.record(record(Step.REFUSED, detail=str(exc)), deployment)
            return StartResult("refused", str(exc))
        if plan.action == "skip":
            await self._audit.record(
                record(Step.SKIPPED, plan=plan, detail=plan.summary), deployment
            )
            return StartResult("skipped", plan.summary, plan=plan)
        rollback_id = uuid.uuid4().hex[:12]
        # All a replica needs to finish the story if this one stops: the Lease keeps it.
        run = RunInfo(
            service=request.service,
            actor=request.actor,
            from_version=plan.from_version,
            to_version=plan.target.version,
            to_revision=plan.target.number,
            started_at=cause.at,
            via=request.via,
            reason=request.reason,
            rollback_id=rollback_id,
            thread=request.thread,
            deployment=target.name,
            from_revision=plan.from_revision,
            target_replicaset=plan.target.replicaset,
            kind=target.kind,
            abort=plan.abort,
        )
        # Made before the lock is taken: a rollback that cannot be told is not started.
        reporter = self._reporters.reporter(request.thread, target)
        holder = await self._engine.cluster(target).acquire_lock(
            target.namespace, target.lock_key, self._me, run, self._lease_seconds
        )
        if holder is not None:
            await self._audit.record(self._busy(request, holder, deployment), deployment)
            return StartResult("running", f"{holder.actor} is already rolling back", holder)
        slot.run = run
        if plan.overridden is not None:
            await self._audit.record(
                record(
                    Step.OVERRIDE,
                    plan=plan,
                    detail=f"migration guard: {plan.overridden}",
                    rollback_id=rollback_id,
                ),
                deployment,
            )
        await self._audit.record(
            # At the instant the Deployment will say it went out (rolled-back-at): one time.
            record(Step.CONFIRMED, plan=plan, rollback_id=rollback_id, at=cause.at),
            deployment,
        )
        slot.task = asyncio.create_task(
            self._run(request, reporter, plan, cause, run, history, slot),
            name=f"rollback {target}",
        )
        return StartResult(
            "started", f"rolling back to {plan.target.version}", run, plan, slot.outcome
        )

    def _busy(
        self, request: RollbackRequest, run: RunInfo, deployment: Deployment | None = None
    ) -> AuditRecord:
        since = f"{run.actor} is rolling back to {run.to_version} since {run.started_at:%H:%M}"
        asked = _Records(request, deployment, self._now)(Step.BUSY, detail=since)
        return replace(asked, to_version=request.target_version)

    @staticmethod
    def _stale(request: RollbackRequest, history: History) -> str | None:
        if request.snapshot is not None:
            reason = staleness(request.snapshot, history)
            if reason is not None:
                return reason
        if not any(r.replicaset == request.target_replicaset for r in history.revisions):
            return f"revision {request.target_revision} is no longer kept in the history"
        return None

    async def _run(
        self,
        request: RollbackRequest,
        reporter: Reporter,
        plan: RollbackPlan | None,
        cause: RollbackCause | None,
        run: RunInfo,
        history: History,
        slot: _Active,
        *,
        picked_up_from: str | None = None,
    ) -> None:
        """Patch (unless picking up a run whose patch went out), follow, and tell the end: or,
        when this replica stops meanwhile, hand the run over for another one to tell."""
        target = request.target
        deployment = history.deployment
        record = _Records(request, deployment, self._now, run)
        rollback_id = run.rollback_id
        started = self._clock()
        if picked_up_from is not None:
            # Its time counts from when it was asked, on whichever replica (bounded by the
            # rollout's own time-out: another node's clock may be off).
            asked = (self._now() - run.started_at).total_seconds()
            started -= max(0.0, min(asked, self._rollout_timeout))
        last: Progress | None = None
        error: str | None = None
        timed_out = stale = unknown = False
        renewer = asyncio.create_task(self._renew(target, slot))
        if self._metrics is not None:
            self._metrics.in_flight.inc()
        try:
            if picked_up_from is None:
                assert plan is not None
                suspended = False
                # Suspends auto-sync that would revert it; an abort changes the status only.
                if self._gitops is not None and not run.abort:
                    suspended = await self._gitops.before_patch(request, run, deployment)
                try:
                    applied = await self._engine.apply(
                        target, plan, cause, snapshot=request.snapshot
                    )
                except (Stale, RollbackRefused):
                    if suspended and self._gitops is not None:
                        # Nothing went out: auto-sync is turned back on as it was.
                        await _quietly(self._resume_gitops(request), "turn auto-sync back on")
                    raise
                finally:
                    slot.sent.set()
                plan = applied.plan
                await _quietly(reporter.started(run, plan, request.reason), "report the start")
                # In the rollback's own task, so the lock always comes before the final refresh.
                await self._show(request, history, run, "lock the versions message")
                await self._audit.record(
                    record(
                        Step.STARTED,
                        plan=plan,
                        rollback_id=rollback_id,
                        # An abort leaves the template at the aborted version: said so.
                        detail=f"abort: {plan.warnings[0]}"
                        if plan.abort and plan.warnings
                        else None,
                    ),
                    deployment,
                )
            else:
                await _quietly(reporter.picked_up(run, picked_up_from), "report the pick-up")
            next_milestone = PROGRESS_AUDIT_EVERY
            within = self._rollout_timeout
            if picked_up_from is not None:  # what is left of it since it was asked
                within = max(1.0, within - (self._clock() - started))
            async for progress in self._engine.follow(target, within=within, abort=run.abort):
                last = progress
                await _quietly(
                    reporter.progress(progress, self._clock() - started), "report progress"
                )
                # The new version's share: updated replicas (available ones include the old pods).
                share = progress.updated / max(progress.desired, 1)
                # Milestones short of done; the outcome itself is recorded below.
                if next_milestone < 1 and share >= next_milestone and not progress.finished:
                    await self._audit.record(
                        record(
                            Step.PROGRESS,
                            plan=plan,
                            detail=progress.counts,
                            rollback_id=rollback_id,
                        ),
                        deployment,
                    )
                    next_milestone += PROGRESS_AUDIT_EVERY
        except asyncio.CancelledError:
            if slot.lost is None and not slot.handing_over:
                raise  # a shutdown: the finally below still tells what is known
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            if slot.lost is not None:
                # Another replica holds the Lease and tells the end: not a failure of the
                # rollout, only this replica's sight of it ending.
                error, unknown = f"stopped following: {slot.lost}", True
        except Stale as exc:
            error, stale = str(exc), True
        except RolloutTimedOut as exc:
            # Only the waiting ended: the patch is in, the rollout goes on without us.
            error, timed_out, unknown = str(exc), True, True
        except ClusterError as exc:
            # The cluster did not answer (or the patch's answer was lost): what the rollout did
            # is not known here, only that the bot can no longer see it.
            error, unknown = str(exc), True
        except RollbackBotError as exc:
            error = str(exc)
        except Exception as exc:  # reported to the thread, never silent
            log.exception("rollback of %s failed unexpectedly", target)
            error = f"unexpected error: {type(exc).__name__}"
        finally:
            slot.ending = True
            renewer.cancel()
            slot.sent.set()
            elapsed = self._clock() - started
            story = _Story(request, reporter, plan, record, run, slot, last, elapsed)
            if (
                slot.handing_over
                and slot.lost is None
                and error is None
                and not (last is not None and last.finished)
            ):
                await self._hand_over(story)
            else:
                await self._finish(story, _Ending(error, timed_out, stale, unknown))

    async def _finish(self, story: _Story, ending: _Ending) -> None:
        """The story's end: recorded, unlocked, told in the thread, the message refreshed."""
        request, reporter, plan, record, run, slot = (
            story.request,
            story.reporter,
            story.plan,
            story.record,
            story.run,
            story.slot,
        )
        last, elapsed = story.last, story.elapsed
        target = request.target
        error, unknown = ending.error, ending.unknown
        # OnDelete: the template is back and nothing more will move; the outcome says which
        # pods to delete (`Ending.PODS_TO_DELETE`), recorded as the rollback done.
        succeeded = error is None and last is not None and last.phase in DONE
        self._count(request.service, succeeded, ending.timed_out, unknown, elapsed)
        if not succeeded and error is None:
            # Following ended without the rollout's verdict: a shutdown stopped it.
            unknown = last is None or last.phase is not Phase.FAILED
            error = (
                last.message
                if last is not None and last.phase is Phase.FAILED
                else "the bot stopped following the rollout before it finished"
            )
        step = (
            Step.SUCCEEDED
            if succeeded
            else Step.REFUSED
            if ending.stale
            else Step.TIMED_OUT
            if ending.timed_out
            else Step.UNKNOWN
            if unknown
            else Step.FAILED
        )
        detail = (
            f"in {elapsed:.1f}s"
            + (
                "; the pods take it once deleted (OnDelete)"
                if last and last.phase is Phase.PODS_TO_DELETE
                else ""
            )
            if succeeded
            else f"{error}"
        ) + (f" ({last.counts})" if last else "")
        await self._audit.record(
            record(step, plan=plan, detail=detail, rollback_id=run.rollback_id), record.deployment
        )
        if run.rollback_id is not None:
            self._told.append(run.rollback_id)
        if slot.lost is None:
            await self._release(target)
        # Released before the outcome is told, so what is rendered then shows no run.
        self._release_slot(target, slot)
        await _quietly(
            reporter.finished(last, elapsed, None if succeeded else error, unknown=unknown),
            "report the outcome",
        )
        await _quietly(self._show_after(request), "refresh the versions message")
        if not slot.outcome.done():
            slot.outcome.set_result(
                RunOutcome(
                    succeeded,
                    ending.timed_out,
                    None if succeeded else error,
                    last,
                    elapsed,
                    unknown,
                )
            )

    async def _hand_over(self, story: _Story) -> None:
        """This replica stops: the Lease is released keeping the run, for another replica (or
        this one's successor) to pick up at once and tell the end in the same thread."""
        request, reporter, plan, record, run, slot = (
            story.request,
            story.reporter,
            story.plan,
            story.record,
            story.run,
            story.slot,
        )
        last, elapsed = story.last, story.elapsed
        target = request.target
        if self._metrics is not None:
            self._metrics.in_flight.dec()
        where = f" at {last.counts}" if last else ""
        await self._audit.record(
            record(
                Step.HANDED_OVER,
                plan=plan,
                detail=f"replica {self._me} is stopping{where}",
                rollback_id=run.rollback_id,
            ),
            record.deployment,
        )
        try:
            await self._engine.cluster(target).hand_over_lock(
                target.namespace, target.lock_key, self._me
            )
        except RollbackBotError as exc:
            # Still held in our name: a replica picks it up once it saw the Lease go silent.
            log.warning("could not hand over the rollback of %s: %s", target, exc)
        self._release_slot(target, slot)
        await _quietly(reporter.handed_over(run, self._me), "report the hand-over")
        if not slot.outcome.done():
            slot.outcome.set_result(
                RunOutcome(
                    False, False, "handed over to another replica", last, elapsed, unknown=True
                )
            )

    async def _release(self, target: Target) -> None:
        """Unlock, forgetting the run. Tried a few times: a Lease left held with a run told
        here would be picked up by another replica and told twice."""
        cluster = self._engine.cluster(target)

        async def release(_number: int) -> None:
            await cluster.release_lock(target.namespace, target.lock_key, self._me)

        try:
            await retry(
                release, retry_on=ClusterError, attempts=RELEASE_ATTEMPTS, backoff=RELEASE_BACKOFF
            )
        except RollbackBotError as exc:
            log.warning("could not unlock %s: %s", target, exc)

    async def _view(
        self, request: RollbackRequest, history: History, run: RunInfo | None
    ) -> ServiceView:
        target = request.target
        gitops = None
        if self._gitops is not None:  # the message keeps saying what GitOps would do
            try:
                gitops = await self._gitops.note(target, request.gitops)
            except RollbackBotError as exc:
                log.warning("could not check the GitOps of %s: %s", target, exc)
        return ServiceView(
            service=request.service,
            namespace=target.namespace,
            cluster=target.context or self._engine.cluster(target).server,
            history=history,
            asked_by=request.actor,
            taken_at=self._now(),
            limit=request.history_limit,
            running=run,
            gitops=gitops,
        )

    async def _show(
        self, request: RollbackRequest, history: History, run: RunInfo | None, what: str
    ) -> None:
        """Keep the versions message the rollback was asked from in step, if there is one."""
        thread = request.thread
        if self._messages is None or thread is None or thread.message_ts is None:
            return
        view = await self._view(request, history, run)
        if run is None:
            await _quietly(self._messages.refresh(thread, view), what)
        else:
            await _quietly(self._messages.lock(thread, view), what)

    async def _resume_gitops(self, request: RollbackRequest) -> None:
        assert self._gitops is not None
        await self._gitops.resume(request.target, request.actor, request.via, force=True)

    async def _show_after(self, request: RollbackRequest) -> None:
        thread = request.thread
        if self._messages is None or thread is None or thread.message_ts is None:
            return
        history = await self._engine.history(request.target)
        await self._messages.refresh(thread, await self._view(request, history, None))

    def _count(
        self, service: str, succeeded: bool, timed_out: bool, unknown: bool, elapsed: float
    ) -> None:
        if self._metrics is None:
            return
        self._metrics.in_flight.dec()
        label = (
            "succeeded"
            if succeeded
            else "timed_out"
            if timed_out
            else "unknown"
            if unknown
            else "failed"
        )
        self._metrics.rollbacks.labels(service, label).inc()
        self._metrics.rollback_seconds.labels(service).observe(elapsed)

    async def _renew(self, target: Target, slot: _Active) -> None:
        """Renew the lock while the rollback runs. Once another replica holds it, this one stops
        acting on the Deployment: the run is stopped and its story ends saying so."""
        cluster = self._engine.cluster(target)
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await cluster.renew_lock(target.namespace, target.lock_key, self._me)
            except LockLost as exc:
                log.warning("lost the rollback lock of %s: %s", target, exc)
                slot.lost = exc
                if slot.task is not None:
                    slot.task.cancel()
                return
            except RollbackBotError as exc:
                log.warning("could not renew the rollback lock of %s: %s", target, exc)
            except Exception:  # renewing goes on: a Lease left unrenewed would be taken over
                log.exception("renewing the rollback lock of %s failed unexpectedly", target)

    async def pick_up(self, target: Target, found: RunInfo) -> bool:
        """Finish the story of a run another replica (or this one's earlier self) started and
        stopped telling: take its lock, then follow it in its thread, or say why there is
        nothing to follow. False when it is not ours to take: running here, stopping, told
        here already, or taken by someone quicker."""
        if not self._accepting or target in self._active or found.thread is None:
            return False
        # Reserved before the first await, as `start` does: nothing else acts on it meanwhile.
        slot = _Active(run=found)
        self._active[target] = slot
        try:
            if found.rollback_id in self._told:  # told here; its unlock did not get through
                await self._release(target)
                self._release_slot(target, slot)
                return False
            run = await self._engine.cluster(target).take_over_lock(
                target.namespace, target.lock_key, self._me, self._lease_seconds
            )
            if run is None:
                self._release_slot(target, slot)
                return False
            if run.thread is None or run.rollback_id in self._told:
                # Changed since the scan into a run told here (or one with no thread).
                await self._release(target)
                self._release_slot(target, slot)
                return False
            # The service is the one the caller knows the Deployment by, not the Lease's text.
            run = replace(run, service=found.service)
            slot.run = run
            previous = run.holder or "another replica"
            request = RollbackRequest(
                service=run.service,
                target=target,
                target_replicaset=run.target_replicaset or "",
                target_revision=run.to_revision,
                target_version=run.to_version,
                snapshot=None,
                actor=run.actor,
                via=run.via,
                reason=run.reason,
                thread=run.thread,
            )
            reporter = self._reporters.reporter(run.thread, target)
            slot.task = asyncio.create_task(
                self._picked_up(request, reporter, run, previous, slot),
                name=f"picked-up rollback {target}",
            )
        except BaseException:
            self._release_slot(target, slot)
            raise
        return True

    async def _picked_up(
        self,
        request: RollbackRequest,
        reporter: Reporter,
        run: RunInfo,
        previous: str,
        slot: _Active,
    ) -> None:
        target = request.target
        try:
            history = await self._engine.history(target)
        except RollbackBotError as exc:
            # Not seen yet: the Lease stays ours, silent, and is picked up once more later.
            log.warning("could not read %s to pick up its rollback: %s", target, exc)
            self._release_slot(target, slot)
            return
        decision = pickup(run, history)
        # Nothing of this replica's is on its way to the Deployment: it may be handed over.
        slot.sent.set()
        slot.ending = decision.action != "follow"
        record = _Records(request, history.deployment, self._now, run)
        await self._audit.record(
            record(
                Step.TAKEN_OVER,
                detail=f"picked up after replica {previous} stopped: {decision.detail}",
                rollback_id=run.rollback_id,
            ),
            history.deployment,
        )
        if decision.action == "follow":
            await self._run(
                request, reporter, None, None, run, history, slot, picked_up_from=previous
            )
            return
        step = Step.ABANDONED if decision.action == "not_sent" else Step.UNKNOWN
        await self._audit.record(
            record(step, detail=decision.detail, rollback_id=run.rollback_id), history.deployment
        )
        if run.rollback_id is not None:
            self._told.append(run.rollback_id)
        await self._release(target)
        self._release_slot(target, slot)
        await _quietly(
            reporter.not_picked_up(
                run, previous, decision.detail, sent=decision.action != "not_sent"
            ),
            "report what the stopped replica left",
        )
        await _quietly(self._show_after(request), "refresh the versions message")

    async def hand_over(self, grace: float) -> None:
        """Stopping: no new rollback starts here, and each running one, once its patch is out
        (waiting up to `grace` seconds for that), is handed over: its Lease released keeping
        the run, for another replica to pick up at once and tell the end in the same thread."""
        self._accepting = False
        slots = list(self._active.values())
        if not slots:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.gather(*(slot.sent.wait() for slot in slots))
        tasks = []
        for slot in slots:
            if slot.task is not None and not slot.task.done():
                tasks.append(slot.task)
                if not slot.ending:  # one already telling its end finishes telling it
                    slot.handing_over = True
                    slot.task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def shutdown(self, grace: float) -> None:
        """Let running rollouts finish reporting for up to `grace` seconds, then stop them."""
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _quietly(awaitable: Awaitable[None], what: str) -> None:
    try:
        await awaitable
    except Exception:  # a Slack hiccup must not abort the rollback it reports on
        log.exception("could not %s", what)
