"""Blue-green switches: pointing a Service back at its other colour, one switch per Service at a
time (in this replica, and across replicas and the CLI through a Lease named
`service.<Service>`, apart from any Deployment's rollback lock), in the background, told step by
step to a reporter and the audit trail.

`start` decides quickly (a fresh read, the plan, the lock) and returns, so a Slack handler
answers within its 3 seconds. The switch then runs as a task:

1. when the target colour has fewer replicas than the live one wants, scale it up (a merge patch
   of `spec.replicas`);
2. wait (bounded by `ready_timeout`) until it is Available with those replicas ready, following
   its Deployment's watch;
3. read the Service and the colours again and plan again, then send the Service's merge patch
   under its resourceVersion precondition; a conflict reads and plans again (`domain.retry`),
   and a Service that moved to something else meanwhile refuses the switch;
4. follow the EndpointSlices (bounded by `converge_timeout`) until every ready endpoint is one
   of the target's pods, and tell the switch's own time (the patch to that) and the total.

Nothing is left half-done unsaid: a switch that fails after scaling up says the colour stays
scaled up and the Service unchanged, and is recorded so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from bot.config.catalog import ServiceRef
from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import ClusterError, ConfigError, Conflict, NotFound, RollbackBotError
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.blue_green import (
    BlueGreenSpec,
    ColorState,
    EndpointList,
    ServiceRouting,
    SwitchPlan,
    SwitchProgress,
    SwitchRefused,
    color_state,
    parse_endpoint_slices,
    parse_service,
    plan_switch,
    ready_to_route,
    switch_progress,
)
from bot.domain.rollback.locks import LockLost
from bot.domain.rollback.models import (
    PROGRESS_DEADLINE_EXCEEDED,
    Deployment,
    RunInfo,
    Thread,
)
from bot.domain.rollback.switches import (
    BLUE_GREEN_KIND,
    SwitchEnding,
    SwitchOutcome,
    SwitchView,
    pods_of,
    switch_lock_key,
    version_mark,
)
from bot.domain.times import format_duration, utc_now
from bot.usecases.audit import AuditTrail, slack_step
from bot.usecases.rollback.requests import RESTARTING
from bot.usecases.rollback.switch_ports import (
    BlueGreenCluster,
    BlueGreenClusters,
    SwitchMessages,
    SwitchReporter,
    SwitchReporters,
)

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
READY_TIMEOUT = 600.0  # how long a scaled-up colour may take to become ready
CONVERGE_TIMEOUT = 60.0  # how long the slices may take to show only the target's pods
CONFLICT_ATTEMPTS = 3  # the Service's patch, read and planned again on each conflict
CONFLICT_BACKOFF = Backoff(first=0.05, factor=2.0, cap=0.5)
RELEASE_ATTEMPTS = 4
RELEASE_BACKOFF = Backoff(first=0.5, factor=2.0, cap=4.0)


@dataclass(frozen=True)
class SwitchRequest:
    """A switch of `ref` (a blue-green service) to `to_color`, asked by `actor` via Slack or the
    CLI. `expected_live`: the colour the person saw live (a switch whose Service moved since is
    refused as stale); `thread`: where it is told, and the message it was asked from."""

    ref: ServiceRef
    to_color: str
    actor: str
    via: str
    reason: str | None = None
    thread: Thread | None = None
    expected_live: str | None = None
    # The mark (`switches.version_mark`) of the version the person saw the target colour run
    # (None: not shown, not checked).
    expected_version: str | None = None


@dataclass(frozen=True)
class SwitchStart:
    """What `start` answers: "started" with the plan and the outcome to come; or why not."""

    outcome: Literal["started", "running", "refused", "stale"]
    message: str
    run: RunInfo | None = None
    plan: SwitchPlan | None = None
    completion: asyncio.Future[SwitchOutcome] | None = None


@dataclass(frozen=True)
class _Read:
    """A blue-green service read once: the Service's routing, each colour's Deployment (None:
    not found), its ReplicaSets' names and state, and the Service's endpoints."""

    routing: ServiceRouting
    deployments: Mapping[str, Deployment | None]
    replicasets: Mapping[str, frozenset[str]]
    states: Mapping[str, ColorState]
    endpoints: EndpointList


@dataclass
class _Active:
    run: RunInfo
    task: asyncio.Task[None] | None = None
    lost: LockLost | None = None
    outcome: asyncio.Future[SwitchOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class _Ended(Exception):
    """Inside the switch: it ends here, as `ending` says. `patch_unknown`: the Service's patch
    went out and its answer was lost, so whether it took is not known here."""

    def __init__(self, ending: SwitchEnding, message: str, *, patch_unknown: bool = False) -> None:
        super().__init__(message)
        self.ending = ending
        self.patch_unknown = patch_unknown


def spec_of(ref: ServiceRef) -> BlueGreenSpec:
    """The switch's spec of a blue-green catalog service; ConfigError for any other."""
    spec = ref.blue_green
    if spec is None:
        raise ConfigError(
            f"{ref.name} is not a blue-green service (kind BlueGreen in the catalog): there is "
            "no colour to switch to"
        )
    return spec


def shown(color: str, state: ColorState | None) -> str:
    """A colour with what it runs: "blue (4.1.0)"."""
    return f"{color} ({state.version})" if state is not None and state.version else color


def _failed_rollout(deployment: Deployment) -> bool:
    condition = deployment.status.condition("Progressing")
    return condition is not None and condition.reason == PROGRESS_DEADLINE_EXCEEDED


@dataclass(frozen=True)
class _Records:
    """Audit records of one switch, each built at the step it records."""

    request: SwitchRequest
    now: Callable[[], datetime]
    from_version: str | None = None
    to_version: str | None = None

    def __call__(
        self,
        step: Step,
        *,
        detail: str | None = None,
        switch_id: str | None = None,
        at: datetime | None = None,
    ) -> AuditRecord:
        request, ref = self.request, self.request.ref
        return AuditRecord(
            step=step,
            service=ref.name,
            namespace=ref.namespace,
            deployment=ref.deployment,  # a blue-green service's: its Service's name
            actor=request.actor,
            via=request.via,
            at=at or self.now(),
            from_version=self.from_version,
            to_version=self.to_version or request.to_color,
            reason=request.reason,
            detail=detail,
            rollback_id=switch_id,
            channel=request.thread.channel if request.thread else None,
            thread_ts=request.thread.thread_ts if request.thread else None,
            context=ref.context,
            kind=BLUE_GREEN_KIND,
        )


class BlueGreenSwitches:
    def __init__(
        self,
        clusters: BlueGreenClusters,
        audit: AuditTrail,
        reporters: SwitchReporters,
        *,
        replica_id: str,
        messages: SwitchMessages | None = None,
        ready_timeout: float = READY_TIMEOUT,
        converge_timeout: float = CONVERGE_TIMEOUT,
        lease_seconds: int = LEASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
        conflict_backoff: Backoff = CONFLICT_BACKOFF,
    ) -> None:
        self._clusters = clusters
        self._audit = audit
        self._reporters = reporters
        self._messages = messages
        self._me = replica_id
        self._ready_timeout = ready_timeout
        self._converge_timeout = converge_timeout
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._now = now
        self._conflict_backoff = conflict_backoff
        self._active: dict[tuple[str | None, str, str], _Active] = {}
        self._accepting = True

    @property
    def ready_timeout(self) -> float:
        return self._ready_timeout

    # -- looking -------------------------------------------------------------------------------

    @staticmethod
    def _key(ref: ServiceRef, spec: BlueGreenSpec) -> tuple[str | None, str, str]:
        return (ref.context, ref.namespace, spec.service)

    def running(self, ref: ServiceRef) -> RunInfo | None:
        """The switch this replica runs on `ref`'s Service, if any."""
        spec = ref.blue_green
        if spec is None:
            return None
        active = self._active.get(self._key(ref, spec))
        return active.run if active else None

    async def view(self, ref: ServiceRef, asked_by: str) -> SwitchView:
        """The blue-green service as it is now, for `asked_by` (nothing recorded)."""
        spec = spec_of(ref)
        cluster = self._clusters.cluster(ref.context)
        read = await self._read(cluster, ref.namespace, spec)
        return self._view(ref, spec, cluster, read, asked_by, self.running(ref))

    async def offer(self, ref: ServiceRef, user: str, channel: str | None) -> SwitchView:
        """The view with switch buttons for `user`; the offer is recorded."""
        view = await self.view(ref, user)
        live = view.live
        asked = slack_step(
            Step.ASKED,
            ref,
            user,
            self._now(),
            from_version=shown(live.color, live) if live is not None else None,
            channel=channel,
        )
        # Its Events would belong to the colours' Deployments, which an offer does not touch.
        await self._audit.record(replace(asked, kind=BLUE_GREEN_KIND))
        return view

    def _view(
        self,
        ref: ServiceRef,
        spec: BlueGreenSpec,
        cluster: BlueGreenCluster,
        read: _Read,
        asked_by: str,
        running: RunInfo | None,
    ) -> SwitchView:
        live = read.routing.live_color
        offers = tuple(
            (color, plan_switch(spec, read.routing, read.states, color))
            for color in spec.color_names
            if color != live
        )
        return SwitchView(
            service=ref.name,
            namespace=ref.namespace,
            cluster=ref.context or cluster.server,
            spec=spec,
            routing=read.routing,
            colors=tuple(read.states[c] for c in spec.color_names),
            endpoints=read.endpoints,
            offers=offers,
            asked_by=asked_by,
            taken_at=self._now(),
            running=running,
        )

    async def _read(self, cluster: BlueGreenCluster, namespace: str, spec: BlueGreenSpec) -> _Read:
        """The Service, both colours and the slices, read together; then the colours'
        ReplicaSets, whose names tell the colours' pods among the endpoints."""

        async def deployment(name: str) -> Deployment | None:
            try:
                return await cluster.read_deployment(namespace, name)
            except NotFound:
                return None

        (service, slices), found = await asyncio.gather(
            asyncio.gather(
                cluster.read_service(namespace, spec.service),
                cluster.endpoint_slices(namespace, spec.service),
            ),
            asyncio.gather(*(deployment(name) for _, name in spec.colors)),
        )
        deployments = dict(zip(spec.color_names, found, strict=True))
        names = await asyncio.gather(
            *(
                cluster.replicaset_names(d) if d is not None else _no_names()
                for d in deployments.values()
            )
        )
        replicasets = dict(zip(spec.color_names, names, strict=True))
        routing = parse_service(service, spec)
        endpoints = parse_endpoint_slices(slices, spec.service)
        states = {
            color: color_state(
                spec, color, deployments[color], endpoints, pods_of(endpoints, replicasets[color])
            )
            for color in spec.color_names
        }
        return _Read(routing, deployments, replicasets, states, endpoints)

    # -- starting ------------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        self._accepting = False

    async def start(self, request: SwitchRequest) -> SwitchStart:
        """Refuse (one sentence, recorded) or start the switch in the background."""
        ref = request.ref
        spec = spec_of(ref)
        if not self._accepting:
            return SwitchStart("refused", RESTARTING)
        record = _Records(request, self._now)
        if ref.reason_required and not (request.reason or "").strip():
            said = f"a reason is required to switch {ref.name}"
            await self._audit.record(record(Step.REFUSED, detail=said))
            return SwitchStart("refused", said)
        key = self._key(ref, spec)
        if key in self._active:
            run = self._active[key].run
            await self._audit.record(record(Step.BUSY, detail=_busy(run)))
            return SwitchStart("running", _busy(run), run)
        # Reserved before the first await: two clicks in the same instant cannot both pass.
        slot = _Active(
            RunInfo(
                service=ref.name,
                actor=request.actor,
                from_version="?",
                to_version=request.to_color,
                to_revision=0,
                started_at=self._now(),
                via=request.via,
            )
        )
        self._active[key] = slot
        try:
            result = await self._prepare(request, spec, slot)
        except BaseException:
            self._release_slot(key, slot)
            raise
        if result.outcome != "started":
            self._release_slot(key, slot)
        return result

    def _release_slot(self, key: tuple[str | None, str, str], slot: _Active) -> None:
        if self._active.get(key) is slot:
            del self._active[key]

    async def _prepare(
        self, request: SwitchRequest, spec: BlueGreenSpec, slot: _Active
    ) -> SwitchStart:
        ref = request.ref
        cluster = self._clusters.cluster(ref.context)
        read = await self._read(cluster, ref.namespace, spec)
        live = read.routing.live_color
        record = _Records(
            request,
            self._now,
            shown(live, read.states.get(live)) if live else None,
            shown(request.to_color, read.states.get(request.to_color)),
        )
        target = read.deployments.get(request.to_color)
        now_running = read.states.get(request.to_color)
        said = None
        if request.expected_live is not None and live != request.expected_live:
            said = (
                f"the Service {spec.service} routes to {live or 'no known colour'} now, not to "
                f"{request.expected_live} as shown"
            )
        elif (
            request.expected_version is not None
            and now_running is not None
            and version_mark(now_running.version) != request.expected_version
        ):
            said = f"{request.to_color} runs {now_running.version[:128]} now, not the version shown"
        if said is not None:
            await self._audit.record(record(Step.REFUSED, detail=f"stale: {said}"), target)
            await self._show(request, spec, cluster, read, None, "refresh the stale message")
            return SwitchStart("stale", said)
        decision = plan_switch(spec, read.routing, read.states, request.to_color)
        if isinstance(decision, SwitchRefused):
            await self._audit.record(record(Step.REFUSED, detail=decision.reason), target)
            return SwitchStart("refused", decision.reason)
        plan = decision
        switch_id = uuid.uuid4().hex[:12]
        run = RunInfo(
            service=ref.name,
            actor=request.actor,
            from_version=record.from_version or plan.from_color,
            to_version=record.to_version or plan.to_color,
            to_revision=0,
            started_at=self._now(),
            via=request.via,
            reason=request.reason,
            rollback_id=switch_id,
            thread=request.thread,
            # No Deployment: the takeover of rollbacks never mistakes a switch for one.
            deployment=None,
        )
        # Made before the lock is taken: a switch that cannot be told is not started.
        reporter = self._reporters.reporter(request.thread, ref.namespace)
        holder = await cluster.acquire_lock(
            ref.namespace, switch_lock_key(spec.service), self._me, run, self._lease_seconds
        )
        if holder is not None:
            await self._audit.record(record(Step.BUSY, detail=_busy(holder)), target)
            return SwitchStart("running", _busy(holder), holder)
        if not self._accepting:  # stopping began while the lock was being taken
            await self._release(cluster, ref.namespace, spec)
            return SwitchStart("refused", RESTARTING)
        slot.run = run
        await self._audit.record(
            record(Step.CONFIRMED, detail=_plan_detail(plan), switch_id=switch_id), target
        )
        slot.task = asyncio.create_task(
            self._run(request, spec, cluster, reporter, plan, run, read, record, slot),
            name=f"switch {ref.namespace}/{spec.service}",
        )
        return SwitchStart(
            "started",
            f"switching {spec.service} to {run.to_version}",
            run,
            plan,
            slot.outcome,
        )

    # -- running -------------------------------------------------------------------------------

    async def _run(
        self,
        request: SwitchRequest,
        spec: BlueGreenSpec,
        cluster: BlueGreenCluster,
        reporter: SwitchReporter,
        plan: SwitchPlan,
        run: RunInfo,
        read: _Read,
        record: _Records,
        slot: _Active,
    ) -> None:
        ref = request.ref
        namespace = ref.namespace
        switch_id = run.rollback_id
        target_deployment = read.deployments.get(plan.to_color)
        started = self._clock()
        renewer = asyncio.create_task(self._renew(cluster, namespace, spec, slot))
        scaled_up = patched = patch_unknown = False
        switch_seconds: float | None = None
        target: ColorState | None = read.states.get(plan.to_color)
        endpoints: SwitchProgress | None = None
        ending, error = SwitchEnding.SWITCHED, None
        stopped = False

        async def note(detail: str) -> None:
            await self._audit.record(
                record(Step.PROGRESS, detail=detail, switch_id=switch_id), target_deployment
            )

        try:
            await _quietly(reporter.started(run, plan, request.reason), "report the start")
            await self._show(request, spec, cluster, read, run, "lock the switch message")
            await self._audit.record(
                record(Step.STARTED, detail=_plan_detail(plan), switch_id=switch_id),
                target_deployment,
            )
            if plan.needs_scale_up and plan.scale_patch is not None:
                assert target is not None
                await _quietly(reporter.scaling_up(plan, target), "report the scale-up")
                target_deployment = await cluster.scale_deployment(
                    namespace, plan.to_deployment, plan.scale_patch
                )
                scaled_up = True
                await note(
                    f"scaled {plan.to_deployment} from {target.desired_replicas} to "
                    f"{plan.scale_to} replicas"
                )
            target = await self._until_ready(cluster, namespace, spec, plan, reporter, started)
            await _quietly(
                reporter.ready(plan, target, self._clock() - started), "report readiness"
            )
            if scaled_up:
                await note(f"{plan.to_color} ready: {target.available_replicas} available")
            # Stopped while the patch is on its way, the Service may or may not have it.
            patch_unknown = True
            plan, replicasets, patch_started = await self._patch(cluster, namespace, spec, plan)
            patched, patch_unknown = True, False
            await note(f"Service {spec.service} patched: {spec.selector_key}={plan.to_color}")
            await _quietly(reporter.patched(plan), "report the patch")
            endpoints, switch_seconds = await self._until_switched(
                cluster, namespace, spec, plan, replicasets, reporter, patch_started
            )
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if slot.lost is not None:
                if current is not None:
                    current.uncancel()
                error = f"stopped: another replica holds the switch's lock now ({slot.lost})"
            else:
                stopped = True  # a shutdown: told below, then the cancellation goes on
                error = "the bot stopped before the switch ended"
            ending = SwitchEnding.STOPPED
        except _Ended as exc:
            ending, error = exc.ending, str(exc)
            # Refused before anything was sent, or the patch's answer lost (`exc` says which).
            patch_unknown = exc.patch_unknown
        except RollbackBotError as exc:
            # A read before the patch, or a conflict that outlasted the retries: nothing sent.
            ending, error, patch_unknown = SwitchEnding.ERROR, str(exc), False
        except Exception as exc:  # told in the thread, never silent
            log.exception("the switch of %s/%s failed unexpectedly", namespace, spec.service)
            ending, error = SwitchEnding.ERROR, f"unexpected error: {type(exc).__name__}"
        finally:
            renewer.cancel()
            if patch_unknown and error is not None:
                error += (
                    f"; whether the Service was patched is not known: kubectl -n {namespace} "
                    f"get service {spec.service} -o jsonpath='{{.spec.selector}}'"
                )
            outcome = SwitchOutcome(
                ending=ending,
                service=ref.name,
                plan=plan,
                total_seconds=self._clock() - started,
                error=error,
                scaled_up=scaled_up,
                service_patched=patched,
                switch_seconds=switch_seconds,
                target=target,
                endpoints=endpoints,
                patch_unknown=patch_unknown,
            )
            await self._finish(
                request, spec, cluster, reporter, outcome, record, run, slot, target_deployment
            )
        if stopped:
            raise asyncio.CancelledError

    async def _until_ready(
        self,
        cluster: BlueGreenCluster,
        namespace: str,
        spec: BlueGreenSpec,
        plan: SwitchPlan,
        reporter: SwitchReporter,
        started: float,
    ) -> ColorState:
        """The target colour once it may take traffic, followed on its Deployment's watch."""
        last: ColorState | None = None
        changes = cluster.watch_deployment(namespace, plan.to_deployment)
        try:
            async with contextlib.aclosing(changes), asyncio.timeout(self._ready_timeout):
                async for deployment in changes:
                    last = color_state(spec, plan.to_color, deployment)
                    if ready_to_route(plan, last):
                        return last
                    if _failed_rollout(deployment):
                        raise _Ended(
                            SwitchEnding.FAILED,
                            f"{plan.to_color}'s Deployment {plan.to_deployment} exceeded its "
                            f"progress deadline ({last.available_replicas}/"
                            f"{plan.wait_for_replicas} available)",
                        )
                    await _quietly(
                        reporter.waiting(plan, last, self._clock() - started), "report progress"
                    )
        except TimeoutError:
            counts = (
                f": {last.ready_replicas}/{plan.wait_for_replicas} ready, "
                f"{last.available_replicas} available"
                if last is not None
                else ""
            )
            raise _Ended(
                SwitchEnding.NOT_READY,
                f"{plan.to_color} ({plan.to_deployment}) did not become ready within "
                f"{format_duration(self._ready_timeout)}{counts}",
            ) from None
        raise ClusterError(f"watching deployment {namespace}/{plan.to_deployment} ended")

    async def _patch(
        self, cluster: BlueGreenCluster, namespace: str, spec: BlueGreenSpec, plan: SwitchPlan
    ) -> tuple[SwitchPlan, frozenset[str], float]:
        """Read the Service and the colours again, plan again towards the same colour, and send
        the Service's patch; a conflict does it all again, a few times. The new plan, the
        target's ReplicaSets and when the patch was sent."""

        async def attempt(_number: int) -> tuple[SwitchPlan, frozenset[str], float]:
            read = await self._read(cluster, namespace, spec)
            live = read.routing.live_color
            if live != plan.from_color:
                now = f"routes to {live}" if live else "routes to no known colour"
                raise _Ended(
                    SwitchEnding.REFUSED,
                    f"the Service {spec.service} changed since the switch was confirmed: it "
                    f"{now}, not {plan.from_color}",
                )
            decision = plan_switch(spec, read.routing, read.states, plan.to_color)
            if isinstance(decision, SwitchRefused):
                raise _Ended(SwitchEnding.REFUSED, decision.reason)
            target = read.states[plan.to_color]
            # Judged against what was confirmed: the live colour growing meanwhile (its
            # autoscaler under the incident's load) does not undo a readiness waited for.
            if not ready_to_route(plan, target):
                raise _Ended(
                    SwitchEnding.REFUSED,
                    f"{plan.to_color} ({plan.to_deployment}) is not ready for the traffic any "
                    f"more: {target.available_replicas}/{plan.wait_for_replicas} available",
                )
            sent = self._clock()
            try:
                await cluster.patch_service(namespace, spec.service, decision.service_patch)
            except Conflict:
                raise  # nothing changed: read, plan and send again
            except ClusterError as exc:
                # Refused (nothing changed), or its answer lost: which is not known here.
                raise _Ended(SwitchEnding.ERROR, str(exc), patch_unknown=exc.transient) from None
            return decision, read.replicasets[plan.to_color], sent

        def conflicted(number: int, _exc: BaseException, _delay: float) -> None:
            log.info(
                "the Service %s/%s changed meanwhile (%d); again", namespace, spec.service, number
            )

        return await retry(
            attempt,
            retry_on=Conflict,
            attempts=CONFLICT_ATTEMPTS,
            backoff=self._conflict_backoff,
            on_retry=conflicted,
        )

    async def _until_switched(
        self,
        cluster: BlueGreenCluster,
        namespace: str,
        spec: BlueGreenSpec,
        plan: SwitchPlan,
        replicasets: frozenset[str],
        reporter: SwitchReporter,
        patch_started: float,
    ) -> tuple[SwitchProgress, float]:
        """Follow the slices until every ready endpoint is one of the target's pods: what they
        show then, and the switch's own time (from the patch)."""
        last: SwitchProgress | None = None
        lists = cluster.watch_endpoint_slices(namespace, spec.service)
        try:
            async with contextlib.aclosing(lists), asyncio.timeout(self._converge_timeout):
                async for items in lists:
                    endpoints = parse_endpoint_slices(items, spec.service)
                    names = pods_of(endpoints, replicasets)
                    last = switch_progress(
                        endpoints, plan.to_color, names, expected=plan.wait_for_replicas
                    )
                    if last.done:
                        return last, self._clock() - patch_started
                    await _quietly(
                        reporter.converging(plan, last, self._clock() - patch_started),
                        "report the slices",
                    )
        except TimeoutError:
            shown_last = f": {last.message}" if last is not None else ""
            raise _Ended(
                SwitchEnding.NOT_CONVERGED,
                f"the Service {spec.service} routes to {plan.to_color}, but its EndpointSlices "
                f"did not show only {plan.to_color}'s pods within "
                f"{format_duration(self._converge_timeout)}{shown_last}",
            ) from None
        raise ClusterError(f"watching the EndpointSlices of {namespace}/{spec.service} ended")

    async def _finish(
        self,
        request: SwitchRequest,
        spec: BlueGreenSpec,
        cluster: BlueGreenCluster,
        reporter: SwitchReporter,
        outcome: SwitchOutcome,
        record: _Records,
        run: RunInfo,
        slot: _Active,
        deployment: Deployment | None,
    ) -> None:
        """The end: recorded (an Event on the target colour's Deployment too), unlocked, told,
        the message refreshed."""
        ending = outcome.ending
        step = {
            SwitchEnding.SWITCHED: Step.SUCCEEDED,
            SwitchEnding.NOT_READY: Step.TIMED_OUT,
            SwitchEnding.NOT_CONVERGED: Step.TIMED_OUT,
            SwitchEnding.REFUSED: Step.REFUSED,
            SwitchEnding.FAILED: Step.FAILED,
            SwitchEnding.ERROR: Step.UNKNOWN if outcome.patch_unknown else Step.FAILED,
            SwitchEnding.STOPPED: Step.UNKNOWN,
        }[ending]
        await _quietly(
            self._audit.record(
                record(step, detail=outcome.sentence(), switch_id=run.rollback_id), deployment
            ),
            "record the outcome",
        )
        if outcome.succeeded:
            log.info(
                "switched %s/%s to %s in %.3fs (%.3fs in all)",
                request.ref.namespace,
                spec.service,
                outcome.plan.to_color,
                outcome.switch_seconds or 0.0,
                outcome.total_seconds,
            )
        if slot.lost is None:
            await self._release(cluster, request.ref.namespace, spec)
        # Released before the outcome is told, so what is rendered then shows no switch.
        self._release_slot(self._key(request.ref, spec), slot)
        await _quietly(reporter.finished(outcome), "report the outcome")
        await _quietly(self._show_after(request, spec, cluster), "refresh the switch message")
        if not slot.outcome.done():
            slot.outcome.set_result(outcome)

    async def _renew(
        self, cluster: BlueGreenCluster, namespace: str, spec: BlueGreenSpec, slot: _Active
    ) -> None:
        """Renew the lock while the switch runs; once another replica holds it, stop."""
        key = switch_lock_key(spec.service)
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await cluster.renew_lock(namespace, key, self._me)
            except LockLost as exc:
                log.warning("lost the switch lock of %s/%s: %s", namespace, spec.service, exc)
                slot.lost = exc
                if slot.task is not None:
                    slot.task.cancel()
                return
            except RollbackBotError as exc:
                log.warning("could not renew the switch lock of %s: %s", spec.service, exc)
            except Exception:  # renewing goes on: a Lease left unrenewed would be taken over
                log.exception("renewing the switch lock of %s failed unexpectedly", spec.service)

    async def _release(
        self, cluster: BlueGreenCluster, namespace: str, spec: BlueGreenSpec
    ) -> None:
        key = switch_lock_key(spec.service)

        async def release(_number: int) -> None:
            await cluster.release_lock(namespace, key, self._me)

        try:
            await retry(
                release, retry_on=ClusterError, attempts=RELEASE_ATTEMPTS, backoff=RELEASE_BACKOFF
            )
        except Exception as exc:  # the Lease then expires; the story is told all the same
            log.warning("could not unlock the switch of %s/%s: %s", namespace, spec.service, exc)

    async def _show(
        self,
        request: SwitchRequest,
        spec: BlueGreenSpec,
        cluster: BlueGreenCluster,
        read: _Read,
        run: RunInfo | None,
        what: str,
    ) -> None:
        """Keep the message the switch was asked from in step, if there is one."""
        thread = request.thread
        if self._messages is None or thread is None or thread.message_ts is None:
            return
        view = self._view(request.ref, spec, cluster, read, request.actor, run)
        if run is None:
            await _quietly(self._messages.refresh(thread, view), what)
        else:
            await _quietly(self._messages.lock(thread, view), what)

    async def _show_after(
        self, request: SwitchRequest, spec: BlueGreenSpec, cluster: BlueGreenCluster
    ) -> None:
        thread = request.thread
        if self._messages is None or thread is None or thread.message_ts is None:
            return
        read = await self._read(cluster, request.ref.namespace, spec)
        view = self._view(request.ref, spec, cluster, read, request.actor, None)
        await self._messages.refresh(thread, view)

    async def shutdown(self, grace: float) -> None:
        """Take no new switch; let the running ones end for up to `grace` seconds, then stop
        them (each tells and records that the bot stopped)."""
        self._accepting = False
        deadline = asyncio.get_running_loop().time() + grace
        # A switch still preparing (reading, taking its lock) gets its task or gives up soon.
        while any(a.task is None for a in self._active.values()):
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.05)
        tasks = [a.task for a in self._active.values() if a.task is not None]
        if not tasks:
            return
        grace = max(0.0, deadline - asyncio.get_running_loop().time())
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _no_names() -> frozenset[str]:
    return frozenset()


def _busy(run: RunInfo) -> str:
    return (
        f"{run.actor} is already switching {run.service} to {run.to_version} since "
        f"{run.started_at:%H:%M}"
    )


def _plan_detail(plan: SwitchPlan) -> str:
    scale = (
        f"scale {plan.to_deployment} to {plan.scale_to} replicas, then "
        if plan.needs_scale_up
        else ""
    )
    return (
        f"blue-green switch: {scale}point Service {plan.service} from {plan.from_color} "
        f"({plan.from_deployment}) to {plan.to_color} ({plan.to_deployment})"
    )


async def _quietly(awaitable: Awaitable[object], what: str) -> None:
    try:
        await awaitable
    except Exception:  # a Slack hiccup must not abort the switch it reports on
        log.exception("could not %s", what)
