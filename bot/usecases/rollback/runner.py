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
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import (
    ClusterError,
    RollbackBotError,
    RollbackRefused,
    RolloutTimedOut,
    Stale,
)
from bot.domain.rollback.guards import Snapshot, staleness
from bot.domain.rollback.locks import LockLost
from bot.domain.rollback.models import Deployment, History, RunInfo, Target
from bot.domain.rollback.planning import RollbackCause, RollbackPlan, plan_rollback
from bot.domain.rollback.progress import Phase, Progress
from bot.domain.rollback.views import ServiceView, Thread
from bot.domain.times import utc_now
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.ports import Reporter, Reporters, VersionMessages

if TYPE_CHECKING:  # the CLI, which counts nothing, does not load prometheus_client
    from bot.observability.metrics import Metrics

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
PROGRESS_AUDIT_EVERY = 0.5  # record a progress milestone at each half of the pods updated


def replica_id() -> str:
    """Who holds a rollback lock: the pod's name in a cluster, host and pid elsewhere."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class RollbackRequest:
    service: str
    target: Target
    target_replicaset: str
    target_revision: int
    target_version: str
    snapshot: Snapshot | None
    actor: str
    via: str
    reason: str | None
    thread: Thread | None = None
    # How the Deployment's change-cause names the actor ("@alice"); `actor` stays the id that
    # Slack mentions and the audit trail use.
    actor_name: str | None = None
    history_limit: int = 5


@dataclass(frozen=True)
class RunOutcome:
    """How a started rollback ended. `unknown`: the bot lost sight of it (the cluster stopped
    answering, the patch's answer never came, a shutdown); only the rollout's own state says
    "failed"."""

    succeeded: bool
    timed_out: bool
    error: str | None
    last: Progress | None
    elapsed: float
    unknown: bool = False


@dataclass(frozen=True)
class StartResult:
    outcome: Literal["started", "running", "stale", "refused", "skipped"]
    message: str
    run: RunInfo | None = None
    plan: RollbackPlan | None = None
    completion: asyncio.Future[RunOutcome] | None = None


@dataclass
class _Active:
    run: RunInfo
    task: asyncio.Task[None] | None = None
    lost: LockLost | None = None  # another replica holds the lock now: stop acting
    outcome: asyncio.Future[RunOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(frozen=True)
class _Records:
    """Audit records of one request, each built at the step it records."""

    request: RollbackRequest
    deployment: Deployment | None  # None: asked before the Deployment was read
    now: Callable[[], datetime]

    def __call__(
        self,
        step: Step,
        *,
        plan: RollbackPlan | None = None,
        detail: str | None = None,
        rollback_id: str | None = None,
    ) -> AuditRecord:
        request, deployment = self.request, self.deployment
        return AuditRecord(
            step=step,
            service=request.service,
            namespace=request.target.namespace,
            deployment=request.target.name,
            actor=request.actor,
            via=request.via,
            at=self.now(),
            from_version=plan.from_version if plan else deployment.version if deployment else None,
            to_version=plan.target.version if plan else None,
            from_revision=(
                plan.from_revision if plan else deployment.revision if deployment else None
            ),
            to_revision=plan.target.number if plan else request.target_revision,
            reason=request.reason,
            detail=detail,
            rollback_id=rollback_id,
            channel=request.thread.channel if request.thread else None,
            thread_ts=request.thread.thread_ts if request.thread else None,
            context=request.target.context,
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
    ) -> None:
        self._engine = engine
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
        self._accepting = True

    def stop_accepting(self) -> None:
        """This replica is stopping: no new rollback starts here (the running ones go on)."""
        self._accepting = False

    def running(self, target: Target) -> RunInfo | None:
        active = self._active.get(target)
        return active.run if active else None

    async def start(self, request: RollbackRequest) -> StartResult:
        target = request.target
        if not self._accepting:
            return StartResult("refused", "the bot is restarting; try again in a moment")
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
        chosen = next(r for r in history.revisions if r.replicaset == request.target_replicaset)
        cause = RollbackCause(
            actor=request.actor_name or request.actor,
            via=request.via,
            reason=request.reason,
            at=self._now(),
        )
        try:
            plan = plan_rollback(history, chosen.number, cause)
        except RollbackRefused as exc:
            await self._audit.record(record(Step.REFUSED, detail=str(exc)), deployment)
            return StartResult("refused", str(exc))
        if plan.action == "skip":
            await self._audit.record(
                record(Step.SKIPPED, plan=plan, detail=plan.summary), deployment
            )
            return StartResult("skipped", plan.summary, plan=plan)
        run = RunInfo(
            service=request.service,
            actor=request.actor,
            from_version=plan.from_version,
            to_version=plan.target.version,
            to_revision=plan.target.number,
            started_at=cause.at,
        )
        # Made before the lock is taken: a rollback that cannot be told is not started.
        reporter = self._reporters.reporter(request.thread, target)
        holder = await self._engine.cluster(target).acquire_lock(
            target.namespace, target.name, self._me, run, self._lease_seconds
        )
        if holder is not None:
            await self._audit.record(self._busy(request, holder, deployment), deployment)
            return StartResult("running", f"{holder.actor} is already rolling back", holder)
        slot.run = run
        rollback_id = uuid.uuid4().hex[:12]
        await self._audit.record(
            record(Step.CONFIRMED, plan=plan, rollback_id=rollback_id), deployment
        )
        slot.task = asyncio.create_task(
            self._run(request, reporter, plan, cause, run, rollback_id, history, slot),
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
        plan: RollbackPlan,
        cause: RollbackCause,
        run: RunInfo,
        rollback_id: str,
        history: History,
        slot: _Active,
    ) -> None:
        target = request.target
        deployment = history.deployment
        record = _Records(request, deployment, self._now)
        started = self._clock()
        last: Progress | None = None
        error: str | None = None
        timed_out = stale = unknown = False
        renewer = asyncio.create_task(self._renew(target, slot))
        if self._metrics is not None:
            self._metrics.in_flight.inc()
        try:
            applied = await self._engine.apply(target, plan, cause, snapshot=request.snapshot)
            plan = applied.plan
            await _quietly(reporter.started(run, plan, request.reason), "report the start")
            # In the rollback's own task, so the lock always comes before the final refresh.
            await self._show(request, history, run, "lock the versions message")
            await self._audit.record(
                record(Step.STARTED, plan=plan, rollback_id=rollback_id), deployment
            )
            next_milestone = PROGRESS_AUDIT_EVERY
            async for progress in self._engine.follow(target, within=self._rollout_timeout):
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
            if slot.lost is None:
                raise  # a shutdown: the finally below still tells what is known
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            error = f"stopped following: {slot.lost}"
        except Stale as exc:
            error, stale = str(exc), True
        except RolloutTimedOut as exc:
            error, timed_out = str(exc), True
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
            renewer.cancel()
            elapsed = self._clock() - started
            succeeded = error is None and last is not None and last.phase is Phase.COMPLETE
            self._count(request.service, succeeded, timed_out, unknown, elapsed)
            if not succeeded and error is None:
                # Following ended without the rollout's verdict: a shutdown stopped it.
                unknown = last is None or last.phase is not Phase.FAILED
                error = (
                    last.message
                    if last is not None and last.phase is Phase.FAILED
                    else "the bot stopped following the rollout before it finished"
                )
            outcome = record(
                Step.SUCCEEDED
                if succeeded
                else Step.REFUSED
                if stale
                else Step.UNKNOWN
                if unknown
                else Step.FAILED,
                plan=plan,
                detail=(f"in {elapsed:.1f}s" if succeeded else f"{error}")
                + (f" ({last.counts})" if last else ""),
                rollback_id=rollback_id,
            )
            await self._audit.record(outcome, deployment)
            if slot.lost is None:
                with contextlib.suppress(RollbackBotError):
                    await self._engine.cluster(target).release_lock(
                        target.namespace, target.name, self._me
                    )
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
                        succeeded, timed_out, None if succeeded else error, last, elapsed, unknown
                    )
                )

    def _view(self, request: RollbackRequest, history: History, run: RunInfo | None) -> ServiceView:
        target = request.target
        return ServiceView(
            service=request.service,
            namespace=target.namespace,
            cluster=target.context or self._engine.cluster(target).server,
            history=history,
            asked_by=request.actor,
            taken_at=self._now(),
            limit=request.history_limit,
            running=run,
        )

    async def _show(
        self, request: RollbackRequest, history: History, run: RunInfo | None, what: str
    ) -> None:
        """Keep the versions message the rollback was asked from in step, if there is one."""
        thread = request.thread
        if self._messages is None or thread is None or thread.message_ts is None:
            return
        view = self._view(request, history, run)
        if run is None:
            await _quietly(self._messages.refresh(thread, view), what)
        else:
            await _quietly(self._messages.lock(thread, view), what)

    async def _show_after(self, request: RollbackRequest) -> None:
        thread = request.thread
        if self._messages is None or thread is None or thread.message_ts is None:
            return
        history = await self._engine.history(request.target)
        await self._messages.refresh(thread, self._view(request, history, None))

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
                await cluster.renew_lock(target.namespace, target.name, self._me)
            except LockLost as exc:
                log.warning("lost the rollback lock of %s: %s", target, exc)
                slot.lost = exc
                if slot.task is not None:
                    slot.task.cancel()
                return
            except RollbackBotError as exc:
                log.warning("could not renew the rollback lock of %s: %s", target, exc)

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
