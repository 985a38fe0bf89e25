"""Automatic rollback: every new rollout of a service with an `auto_rollback:` block is watched
against its Prometheus for the analysis window, and rolled back (mode `act`) or told (dry-run)
when a breach is confirmed.

How:
1. One watch per (cluster, namespace) of the catalog's watched services, shared by all of them
   (`DeploymentWatches.watch_namespace`): a change that moves a Deployment's revision makes the
   replica look at its history. A new version (`watching.new_version`: its ReplicaSet is the
   newest; a rollback brings an older one back and is not judged) still in its window is
   claimed.
2. Every replica watches; one analyses: the one whose claim of the Deployment's watch Lease won
   (`WatchLeases.claim`). The others keep the rollout pending and claim again every third of
   the Lease's duration, so a replica that stops (it hands its watches over) or dies (its
   Lease goes silent) is replaced, and goes on in the same message.
3. The analysing replica posts "watching …" in the service's channel, then at the end of every
   interval (plus a moment for Prometheus to scrape) renews its Lease, reads the history (the
   Deployment moved on: the watch ends, superseded) and runs the analysis of `Analyzer.once`
   up to that interval: the same judgement as `rollback-bot analyze`. Notices (no data, not
   enough traffic, Prometheus unreachable) are said once each.
4. The end: healthy or no verdict edits the message quietly; a breach rolls back through the
   runner (same guards, Lease and record as a person's rollback; approvals are never given by
   the bot itself) or, in dry-run, says what it would have done, with a rollback button; either
   way the evidence goes in the thread, the on-call group is mentioned, and the chart follows.
   Missing data never rolls back.
5. "Stop watching" (`stop`) notes the stop in the Lease; the analysing replica, wherever it
   runs, ends the watch at its next interval (at once when it is this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.config.catalog import ServiceRef
from bot.domain.analysis.config import AutoRollbackConfig
from bot.domain.analysis.report import Report
from bot.domain.analysis.verdict import VerdictKind
from bot.domain.analysis.versions import replaced
from bot.domain.analysis.watching import (
    Phase,
    WatchClaim,
    WatchStatus,
    new_version,
    still_in_window,
)
from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import NotFound, RollbackBotError
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.locks import LockLost
from bot.domain.rollback.models import Deployment, History, Revision, Thread
from bot.domain.times import utc_now
from bot.usecases.analysis.analyze import Analyzer, CannotAnalyze
from bot.usecases.analysis.ports import (
    AnalysisMessages,
    AnalysisMetrics,
    Charts,
    Rollbacks,
    ServiceViewer,
    WatchedClusters,
)
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.requests import RESTARTING, RollbackRequest

log = logging.getLogger(__name__)

LEASE_SECONDS = 15
CLOSE_SECONDS = 5.0
# An interval is asked this long after its end, for Prometheus to have stored the samples scraped
# up to it (a few milliseconds after each scrape): a quarter of the interval, at most a second.
SCRAPE_LAG_SECONDS = 1.0
SCRAPE_LAG_SHARE = 0.25
# Histories read at once when a watch starts and lists every Deployment.
MAX_CONCURRENT_READS = 4
ACTOR = "rollback-bot (automatic rollback)"
VIA = "automatic rollback"

_Key = tuple[str | None, str, str]  # (context, namespace, deployment)


@dataclass
class _Running:
    """A watch this replica analyses. Its Lease is renewed apart from the intervals (every
    third of the Lease's duration, whatever the interval), and what the renewals find (a stop
    asked, the Lease lost or moved to a newer revision) wakes the analysis."""

    ref: ServiceRef
    revision: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stop_by: str | None = None
    lost: LockLost | None = None
    moved_to: int | None = None  # the Lease holds a newer revision's claim now
    task: asyncio.Task[None] | None = None
    # The watch message's post and its noting in the Lease: never cut apart by a shutdown.
    posting: asyncio.Future[Thread] | None = None


class _RenewalsFailed(LockLost):
    """The watch's Lease could not be renewed for most of its duration: this replica steps
    down rather than risk analysing beside the one that takes it over."""

    def __init__(self, seconds: float) -> None:
        Exception.__init__(
            self, f"the watch Lease could not be renewed for {seconds:.0f}s: stepping down"
        )
        self.holder = None
        self.since = None


class _Restarting(Exception):
    """The runner refused a breach's rollback because this replica is stopping."""


@dataclass(frozen=True)
class _Ended:
    phase: Phase
    detail: str
    actor: str = ACTOR
    # False when the watch Lease already holds another revision's claim: not ours to end.
    release: bool = True


class RolloutWatch:
    def __init__(
        self,
        services: Sequence[ServiceRef],
        clusters: WatchedClusters,
        analyzer: Analyzer,
        messages: AnalysisMessages,
        rollbacks: Rollbacks,
        views: ServiceViewer,
        audit: AuditTrail,
        *,
        replica: str,
        charts: Charts | None = None,
        metrics: AnalysisMetrics | None = None,
        lease_seconds: int = LEASE_SECONDS,
        scrape_lag: float | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._refs: dict[_Key, ServiceRef] = {}
        for ref in services:
            if ref.entry is None or ref.entry.auto_rollback is None:
                continue
            if ref.entry.channel is None:
                # `rollback-bot analyze` reads the block without a channel; the watch cannot.
                log.warning(
                    "%s has an auto_rollback block but no channel: its rollouts are not "
                    "watched (give it a channel to tell them in)",
                    ref.name,
                )
                continue
            try:
                analyzer.configuration(ref)
            except CannotAnalyze as exc:
                log.warning("%s: its rollouts are not watched: %s", ref.name, exc)
                continue
            self._refs[_key(ref)] = ref
        self._clusters = clusters
        self._analyzer = analyzer
        self._messages = messages
        self._rollbacks = rollbacks
        self._views = views
        self._audit = audit
        self._me = replica
        self._charts = charts
        self._metrics = metrics
        self._lease_seconds = lease_seconds
        self._lag = scrape_lag
        self._now = now
        self._revisions: dict[_Key, int | None] = {}
        self._running: dict[_Key, _Running] = {}
        self._pending: set[_Key] = set()
        self._considering: dict[_Key, asyncio.Task[None]] = {}
        self._again: set[_Key] = set()
        self._reads = asyncio.Semaphore(MAX_CONCURRENT_READS)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def watched(self) -> int:
        """How many catalog services are watched."""
        return len(self._refs)

    async def run(self) -> None:
        """Watch until cancelled: the shared watches (one per cluster and namespace) and the
        sweep of pending watches. Returns at once without a service to watch."""
        if not self._refs:
            return
        places = sorted({(context, namespace) for context, namespace, _ in self._refs}, key=str)
        self._tasks = [
            asyncio.create_task(
                self._follow_namespace(context, namespace), name=f"watch rollouts in {namespace}"
            )
            for context, namespace in places
        ]
        self._tasks.append(asyncio.create_task(self._sweep(), name="watch sweep"))
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()

    async def close(self, grace: float = CLOSE_SECONDS) -> None:
        """Stop watching; the watches analysed here are handed over (their Lease released,
        the claim kept) for another replica to go on with at once."""
        self._closing = True
        for task in [*self._tasks, *self._considering.values()]:
            task.cancel()
        running = list(self._running.items())
        for _, watch in running:
            if watch.task is not None:
                watch.task.cancel()
        await asyncio.gather(
            *self._tasks,
            *self._considering.values(),
            *(w.task for _, w in running if w.task is not None),
            return_exceptions=True,
        )
        postings = [w.posting for _, w in running if w.posting is not None]

        async def hand_over(watch: _Running) -> None:
            ref = watch.ref
            with contextlib.suppress(RollbackBotError):
                await self._clusters.cluster(ref.context).hand_over(
                    ref.namespace, ref.deployment, self._me, revision=watch.revision
                )
                log.info("watch of %s handed over", ref.qualified)

        # Together and bounded: the pod's grace is shared with the rest of the shutdown. A
        # watch not handed over in time is taken over once its Lease goes silent.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.5, grace)):
                # A watch message being posted is noted in its Lease before the hand-over.
                await asyncio.gather(*postings, return_exceptions=True)
                await asyncio.gather(*(hand_over(watch) for _, watch in running))
        self._running.clear()

    async def stop(self, ref: ServiceRef, revision: int, user: str) -> str:
        """Ask the watch of `revision` to stop, for `user` (already authorized): a sentence
        for them. The analysing replica ends it and records who stopped it."""
        what = f"revision {revision} of {ref.name}"
        cluster = self._clusters.cluster(ref.context)
        claim = await cluster.ask_stop(ref.namespace, ref.deployment, revision, user)
        if claim is None:
            return f"Nothing watches {what} any more."
        if claim.ended is not None:
            return f"The watch of {what} has already ended ({claim.ended.value.replace('_', ' ')})."
        if claim.stop_by is not None and claim.stop_by != user:
            return f"<@{claim.stop_by}> has already asked to stop watching {what}."
        local = self._running.get(_key(ref))
        if local is not None and local.revision == revision:
            local.stop_by = local.stop_by or user
            local.wake.set()
        return f"Stopping the watch of {what}: no verdict will be given, nothing rolled back."

    # -- noticing new rollouts -------------------------------------------------------------

    async def _follow_namespace(self, context: str | None, namespace: str) -> None:
        cluster = self._clusters.cluster(context)
        changes = cluster.watch_namespace(namespace)
        async with contextlib.aclosing(changes) as seen:
            async for change in seen:
                key = (context, namespace, change.name)
                if key not in self._refs:
                    continue
                revision = change.deployment.revision if change.deployment else None
                if key in self._revisions and self._revisions[key] == revision:
                    continue
                self._revisions[key] = revision
                self._consider_soon(key)

    def _consider_soon(self, key: _Key) -> None:
        if self._closing:
            return
        if key in self._considering:
            # The history being read may be from before this change: read it again after.
            self._again.add(key)
            return
        task = asyncio.create_task(self._consider(key), name=f"consider {key[1]}/{key[2]}")
        self._considering[key] = task
        task.add_done_callback(functools.partial(self._considered, key))

    def _considered(self, key: _Key, _task: asyncio.Task[None]) -> None:
        self._considering.pop(key, None)
        if key in self._again:
            self._again.discard(key)
            self._consider_soon(key)

    async def _sweep(self) -> None:
        """Claim the pending watches again: a replica that stopped or died is replaced."""
        while True:
            await asyncio.sleep(max(1.0, self._lease_seconds / 3))
            for key in list(self._pending):
                self._consider_soon(key)

    async def _consider(self, key: _Key) -> None:
        ref = self._refs[key]
        config = _config(ref)
        cluster = self._clusters.cluster(ref.context)
        try:
            async with self._reads:
                history = await cluster.history(ref.namespace, ref.deployment)
            revision = new_version(history)
            went_out = history.went_out_of(revision) if revision is not None else None
            horizon = config.window + config.consecutive * config.interval
            if (
                revision is None
                or went_out is None
                or not still_in_window(went_out, self._now(), horizon)
                # A Deployment's first version has nothing to be compared with.
                or replaced(history, revision) is None
            ):
                self._pending.discard(key)
                return
            running = self._running.get(key)
            if running is not None and running.revision == revision.number:
                return
            answer = await cluster.claim(
                ref.namespace, ref.deployment, self._me, revision.number, self._lease_seconds
            )
        except NotFound:
            self._pending.discard(key)
            return
        except RollbackBotError as exc:
            log.warning("the new rollout of %s could not be looked at: %s", ref.qualified, exc)
            self._pending.add(key)  # the sweep tries again
            return
        except Exception:
            log.exception("the new rollout of %s could not be looked at", ref.qualified)
            self._pending.add(key)
            return
        if not answer.ours:
            ended = answer.claim is not None and answer.claim.ended is not None
            (self._pending.discard if ended else self._pending.add)(key)
            return
        self._pending.discard(key)
        assert answer.claim is not None
        watch = _Running(ref, revision.number)
        previous = self._running.get(key)
        if previous is not None:  # an older revision's watch: it ends, superseded
            previous.moved_to = revision.number
            previous.wake.set()
        self._running[key] = watch
        watch.task = asyncio.create_task(
            self._analyse(watch, history, revision, went_out, answer.claim),
            name=f"analyse {ref.qualified} revision {revision.number}",
        )

    # -- one rollout's analysis ------------------------------------------------------------

    async def _analyse(
        self,
        watch: _Running,
        history: History,
        revision: Revision,
        went_out: datetime,
        claim: WatchClaim,
    ) -> None:
        ref = watch.ref
        key = _key(ref)
        try:
            await self._analysed(watch, history, revision, went_out, claim)
        except asyncio.CancelledError:
            raise
        except LockLost as exc:
            log.info("watch of %s taken by another replica: %s", ref.qualified, exc)
        except _Restarting:
            # This replica stops: another one decides the breach again, and acts on it.
            with contextlib.suppress(RollbackBotError):
                await self._clusters.cluster(ref.context).hand_over(
                    ref.namespace, ref.deployment, self._me, revision=watch.revision
                )
        except Exception:
            log.exception("the watch of %s failed", ref.qualified)
            with contextlib.suppress(RollbackBotError):
                await self._clusters.cluster(ref.context).hand_over(
                    ref.namespace, ref.deployment, self._me, revision=watch.revision
                )
            self._pending.add(key)
        finally:
            if self._running.get(key) is watch:
                del self._running[key]

    async def _analysed(
        self,
        watch: _Running,
        history: History,
        revision: Revision,
        went_out: datetime,
        claim: WatchClaim,
    ) -> None:
        ref = watch.ref
        config = _config(ref)
        cluster = self._clusters.cluster(ref.context)
        previous = replaced(history, revision)
        status = WatchStatus(
            service=ref.name,
            namespace=ref.namespace,
            deployment=ref.deployment,
            context=ref.context,
            revision=revision.number,
            version=revision.version,
            baseline_revision=previous.number if previous is not None else None,
            baseline_version=previous.version if previous is not None else None,
            window_seconds=config.window,
            mode=config.mode,
            on_call_group=config.on_call_group,
        )
        channel = ref.entry.channel if ref.entry is not None else None
        assert channel is not None  # services without one are not watched
        # Lease text is anyone's who may write Leases: a thread elsewhere than the service's
        # channel is none of this watch's.
        thread = claim.thread if claim.thread and claim.thread.channel == channel else None
        # Renewed from the claim on: a post waiting its turn in Slack's budget must not let
        # the Lease go silent and another replica post a second message.
        keeper = asyncio.create_task(self._keep(watch), name=f"renew {ref.qualified}")
        try:
            if thread is None:
                # Shielded: a replica stopping right after the post still notes it, or the
                # replica taking over would post a second message.
                watch.posting = asyncio.ensure_future(
                    self._post_watch(watch, channel, status, history)
                )
                thread = await asyncio.shield(watch.posting)
            else:
                log.info("watch of %s revision %s taken over", ref.qualified, revision.number)
            ended = await self._intervals(watch, config, status, thread, went_out)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        final = status.ended(ended.phase, ended.detail)
        # The Lease first: once it says "ended", no replica starts this watch again, whatever
        # happens to the message.
        if ended.release:
            await cluster.end(
                ref.namespace, ref.deployment, self._me, ended.phase, revision=watch.revision
            )
        try:
            await self._messages.update(thread, final)
        except Exception as exc:  # Slack's answer (or none) must not undo the verdict
            log.warning("the watch message of %s could not be edited: %s", ref.qualified, exc)
        step = Step.WATCH_STOPPED if ended.phase is Phase.STOPPED else Step.ANALYSED
        await self._record(step, final, None, thread, actor=ended.actor, detail=ended.detail)
        if self._metrics is not None:
            self._metrics.analysed(ref.name, ended.phase.value)

    async def _post_watch(
        self, watch: _Running, channel: str, status: WatchStatus, history: History
    ) -> Thread:
        ref = watch.ref
        thread = await self._messages.post_watching(channel, status)
        await self._clusters.cluster(ref.context).note_thread(
            ref.namespace, ref.deployment, self._me, thread, revision=watch.revision
        )
        await self._record(Step.WATCHING, status, history.deployment, thread)
        return thread

    async def _intervals(
        self,
        watch: _Running,
        config: AutoRollbackConfig,
        status: WatchStatus,
        thread: Thread,
        went_out: datetime,
    ) -> _Ended:
        ref = watch.ref
        cluster = self._clusters.cluster(ref.context)
        last = math.ceil(config.window / config.interval) + config.consecutive - 1
        said: set[str] = set()
        quiet_for = max(config.interval * config.consecutive, config.window / 4)
        lag = (
            self._lag
            if self._lag is not None
            else min(SCRAPE_LAG_SECONDS, SCRAPE_LAG_SHARE * config.interval)
        )
        step = 0
        while True:
            elapsed = (self._now() - went_out).total_seconds()
            step = max(step + 1, math.floor(max(0.0, elapsed - lag) / config.interval))
            step = min(step, last)
            due = went_out + timedelta(seconds=step * config.interval + lag)
            wait = (due - self._now()).total_seconds()
            watch.wake.clear()
            early = _early_end(watch)
            if early is None and wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.wake.wait(), timeout=wait)
                early = _early_end(watch)
            if early is not None:
                return early
            try:
                history = await cluster.history(ref.namespace, ref.deployment)
            except NotFound:
                return _Ended(Phase.SUPERSEDED, f"the deployment {ref.qualified} was deleted")
            except RollbackBotError as exc:
                if step >= last:
                    return _Ended(Phase.NO_VERDICT, f"the cluster could not be read: {exc}")
                await self._say_once(thread, said, f"The cluster could not be read: {exc}.")
                continue
            current = history.current
            if current is None or current.number != watch.revision:
                now_running = (
                    f"revision {current.number} ({current.version})" if current else "nothing"
                )
                return _Ended(Phase.SUPERSEDED, f"the deployment moved on: {now_running} runs now")
            if _early_end(watch) is not None:
                continue  # asked while the history was read: the next turn ends it
            as_of = went_out + timedelta(seconds=step * config.interval)
            try:
                report = await self._analyzer.once(
                    ref, watch.revision, history=history, as_of=as_of
                )
            except CannotAnalyze as exc:
                return _Ended(Phase.NO_VERDICT, str(exc))
            early = _early_end(watch)  # asked while Prometheus was read: nothing is decided
            if early is not None:
                return early
            # New pods have no figures for their first interval or two: only data missing for
            # a good share of the window is worth telling.
            if report.tally.judged == 0 and report.analysed_seconds >= quiet_for:
                for notice in report.notices:
                    await self._say_once(thread, said, notice)
            if report.unavailable is not None:
                await self._say_once(
                    thread,
                    said,
                    f"No verdict while the metrics cannot be read ({report.unavailable}); "
                    "missing data never rolls back.",
                    key="unavailable",
                )
            decided = (
                report.verdict is not VerdictKind.NO_VERDICT
                or report.at_seconds is not None
                or step >= last
            )
            if not decided:
                continue
            # Before anything is decided for good: the Lease is still this replica's (LockLost
            # otherwise: the replica that took it over tells the story) and nobody asked to stop.
            early = await self._still_ours(watch)
            if early is not None:
                return early
            if report.verdict is VerdictKind.BREACH:
                return await self._breach(watch, config, status, thread, history, report, went_out)
            if report.verdict is VerdictKind.HEALTHY:
                return _Ended(Phase.HEALTHY, report.reason)  # the headline says "looks healthy"
            return _Ended(Phase.NO_VERDICT, report.reason)

    async def _still_ours(self, watch: _Running) -> _Ended | None:
        """Renew the Lease now: LockLost when another replica holds it; how the watch ends when
        a stop was asked or a newer revision claimed it; else None."""
        ref = watch.ref
        claim = await self._clusters.cluster(ref.context).renew(
            ref.namespace, ref.deployment, self._me
        )
        if claim.revision != watch.revision:
            watch.moved_to = claim.revision
        elif claim.stop_by is not None and watch.stop_by is None:
            watch.stop_by = claim.stop_by
        return _early_end(watch)

    async def _keep(self, watch: _Running) -> None:
        """Renew the watch's Lease every third of its duration until cancelled; what the
        renewal finds wakes the analysis."""
        ref = watch.ref
        cluster = self._clusters.cluster(ref.context)
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        while True:
            try:
                claim = await cluster.renew(ref.namespace, ref.deployment, self._me)
            except LockLost as exc:
                watch.lost = exc
                watch.wake.set()
                return
            except Exception as exc:  # the next renewal may do; the Lease has some margin
                log.info("renewing the watch of %s failed: %s", ref.qualified, exc)
                silent = loop.time() - renewed_at
                if silent > self._lease_seconds * 2 / 3:
                    # Another replica may take the watch over soon: step down before it does,
                    # so the rollout is never analysed (nor acted on) twice.
                    watch.lost = _RenewalsFailed(silent)
                    watch.wake.set()
                    return
            else:
                renewed_at = loop.time()
                if claim.revision != watch.revision:
                    watch.moved_to = claim.revision
                    watch.wake.set()
                    return
                if claim.stop_by is not None and watch.stop_by is None:
                    watch.stop_by = claim.stop_by
                    watch.wake.set()
            await asyncio.sleep(max(0.2, self._lease_seconds / 3))

    async def _say_once(
        self, thread: Thread, said: set[str], text: str, *, key: str | None = None
    ) -> None:
        if (key or text) in said:
            return
        said.add(key or text)
        try:
            await self._messages.notice(thread, text)
        except Exception as exc:  # a notice is not worth the watch
            log.warning("a watch notice could not be posted: %s", exc)

    # -- the breach ----------------------------------------------------------------------

    async def _breach(
        self,
        watch: _Running,
        config: AutoRollbackConfig,
        status: WatchStatus,
        thread: Thread,
        history: History,
        report: Report,
        went_out: datetime,
    ) -> _Ended:
        ref = watch.ref
        current = history.current
        target = (
            history.revision(report.baseline.revision)
            if report.baseline.revision is not None
            else None
        )
        rolled_back_at: float | None = None
        offer = True
        if target is None or current is None:
            ended = _Ended(
                Phase.NOT_ROLLED_BACK,
                "breach confirmed, but no earlier revision is kept to roll back to",
            )
            offer = False
        elif not config.acts:
            ended = _Ended(
                Phase.WOULD_ROLL_BACK,
                f"dry-run: would have rolled back to {target.version} (revision {target.number})",
            )
        elif ref.entry is not None and ref.entry.approvals > 0:
            ended = _Ended(
                Phase.NOT_ROLLED_BACK,
                f"rolling {ref.name} back needs {ref.entry.approvals} approval"
                f"{'s' if ref.entry.approvals > 1 else ''}, and automatic rollback never "
                "approves its own: a person must ask for it",
            )
        else:
            early = _early_end(watch)  # a stop asked (or the Lease lost) since the analysis
            if early is not None:
                return early
            result = await self._rollbacks.start(
                _request(ref, history.deployment, current, target, report, thread)
            )
            if result.outcome == "refused" and result.message == RESTARTING:
                raise _Restarting
            if result.outcome == "started":
                seconds_in = (self._now() - went_out).total_seconds()
                rolled_back_at = seconds_in
                if self._metrics is not None and report.first_breach_at is not None:
                    self._metrics.detected(max(0.0, seconds_in - report.first_breach_at))
                ended = _Ended(
                    Phase.ROLLED_BACK,
                    f"rolling back to {target.version} (revision {target.number})",
                )
                offer = False
            else:
                ended = _Ended(Phase.NOT_ROLLED_BACK, result.message)
                offer = result.outcome in ("refused", "skipped")
        final = status.ended(ended.phase, ended.detail)
        # Decided (and acted on): the Lease says so before anything is posted, so a replica
        # taking over after a failure here never decides it again.
        await self._clusters.cluster(ref.context).end(
            ref.namespace, ref.deployment, self._me, ended.phase, revision=watch.revision
        )
        ended = replace(ended, release=False)
        view = None
        if offer:
            try:
                view = await self._views.view(ref, ACTOR)
            except RollbackBotError as exc:
                log.warning("no rollback button for %s: %s", ref.qualified, exc)
        # The edited watch message already says it in the channel; only a breach nobody acted
        # on is repeated there, for everyone to see.
        loud = ended.phase is Phase.NOT_ROLLED_BACK
        try:
            await self._messages.verdict(thread, final, report, offer=view, loud=loud)
        except Exception as exc:  # the decision stands; the message's edit still tells it
            log.warning("the verdict on %s could not be posted: %s", ref.qualified, exc)
        await self._chart(thread, report, rolled_back_at)
        return ended

    async def _chart(self, thread: Thread, report: Report, rolled_back_at: float | None) -> None:
        if self._charts is None:
            return
        try:
            png = await self._charts.png(report, rolled_back_at)
            title = f"{report.service} {report.version} (revision {report.revision})"
            await self._messages.chart(thread, title, png)
        except Exception as exc:  # a chart is evidence, not the verdict: never fatal
            log.warning("the chart of %s could not be posted: %s", report.service, exc)

    async def _record(
        self,
        step: Step,
        status: WatchStatus,
        deployment: Deployment | None,
        thread: Thread,
        *,
        actor: str = ACTOR,
        detail: str | None = None,
    ) -> None:
        await self._audit.record(
            AuditRecord(
                step=step,
                service=status.service,
                namespace=status.namespace,
                deployment=status.deployment,
                actor=actor,
                via=VIA,
                at=self._now(),
                from_version=status.baseline_version,
                to_version=status.version,
                from_revision=status.baseline_revision,
                to_revision=status.revision,
                detail=detail,
                channel=thread.channel,
                thread_ts=thread.thread_ts,
                context=status.context,
            ),
            deployment,
        )


def _early_end(watch: _Running) -> _Ended | None:
    """How the watch ends before its verdict, from what the renewals (or a click) found."""
    if watch.lost is not None:
        raise watch.lost
    if watch.moved_to is not None:
        return _Ended(
            Phase.SUPERSEDED, f"revision {watch.moved_to} went out meanwhile", release=False
        )
    if watch.stop_by is not None:
        # The stopper is who the Lease names: the click's replica wrote it after authorizing.
        return _Ended(Phase.STOPPED, f"stopped by <@{watch.stop_by}>", watch.stop_by)
    return None


def _key(ref: ServiceRef) -> _Key:
    return (ref.context, ref.namespace, ref.deployment)


def _config(ref: ServiceRef) -> AutoRollbackConfig:
    block = ref.entry.auto_rollback if ref.entry is not None else None
    assert block is not None  # only services with the block are watched
    return block


def _request(
    ref: ServiceRef,
    deployment: Deployment,
    current: Revision,
    target: Revision,
    report: Report,
    thread: Thread,
) -> RollbackRequest:
    """The rollback of a confirmed breach: to the revision it replaced, unless the Deployment
    moved since it was read (the snapshot makes that stale)."""
    return RollbackRequest(
        service=ref.name,
        target=ref.target,
        target_replicaset=target.replicaset,
        target_revision=target.number,
        target_version=target.version,
        snapshot=Snapshot(
            revision=deployment.revision,
            generation=deployment.generation,
            target_replicaset=target.replicaset,
            target_revision=target.number,
        ),
        actor=ACTOR,
        via=VIA,
        reason=f"{report.version} breached: {report.reason}"[:3000],
        thread=thread,
        history_limit=ref.history_limit,
        gitops=ref.entry.gitops if ref.entry is not None else "warn",
    )
