"""Automatic rollback's watch of new rollouts (`RolloutWatch`), with in-memory fakes of its
ports: a cluster whose namespace watch is fed by the test and whose watch Leases behave as
`WatchLeases` does (one holder; ended claims never started again; a hand-over frees it at
once), a scripted analysis, and recording Slack, runner, views, charts, metrics and audit.

A watched service has a 3 s window of 1 s intervals (one breaching interval confirms) and no
scrape lag; its new version went out just under a second before the test tells the watch, so
the first interval ends at once. Tests wait for what the fakes record, never a fixed time."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.config.catalog import ServiceEntry, ServiceRef
from bot.domain.analysis.config import AutoRollbackConfig, Mode, PrometheusConfig
from bot.domain.analysis.report import Baseline, Report
from bot.domain.analysis.verdict import Tally, VerdictKind
from bot.domain.analysis.watching import Claimed, Phase, WatchClaim, WatchStatus
from bot.domain.audit import AuditRecord, Step
from bot.domain.errors import NotFound
from bot.domain.rollback.locks import LockLost
from bot.domain.rollback.models import Deployment, DeploymentChange, History, Thread
from bot.domain.rollback.views import ServiceView
from bot.domain.times import utc_now
from bot.usecases.analysis.analyze import Analyzer
from bot.usecases.analysis.watch import ACTOR, VIA, RolloutWatch
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.requests import RESTARTING, RollbackRequest, StartResult
from tests.builders import deployment, replicaset, template

NAMESPACE = "shop"
CHANNEL = "C0CHECKOUT"
THREAD = Thread(CHANNEL, "1764216000.000100")
ON_CALL = "S0ONCALL"
PROMETHEUS = "http://prometheus:9090"
WAIT = 8.0  # seconds a test waits for what must happen before it fails


# -- what the fakes record, and waiting for it ---------------------------------------------------


class Journal:
    """Everything the fakes were asked, in order; a test waits for what it expects."""

    def __init__(self) -> None:
        self.entries: list[tuple[object, ...]] = []
        self.times: list[float] = []  # the event loop's clock at each entry
        self._changed = asyncio.Event()

    def note(self, *entry: object) -> None:
        self.entries.append(entry)
        self.times.append(asyncio.get_running_loop().time())
        self._changed.set()

    def when(self, *kinds: str) -> list[float]:
        return [t for entry, t in zip(self.entries, self.times, strict=True) if entry[0] in kinds]

    def of(self, kind: str) -> list[tuple[object, ...]]:
        return [entry[1:] for entry in self.entries if entry[0] == kind]

    def kinds(self) -> list[object]:
        return [entry[0] for entry in self.entries]

    async def until(self, ready: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not ready():
                self._changed.clear()
                await self._changed.wait()


# -- the services and their rollouts ----------------------------------------------------------


def auto_rollback(
    mode: Mode = "act", *, window: float = 3, interval: float = 1
) -> AutoRollbackConfig:
    return AutoRollbackConfig(
        mode=mode,
        prometheus=PrometheusConfig(url=PROMETHEUS),
        window=window,
        interval=interval,
        query_window=interval,
        consecutive=1,
        on_call_group=ON_CALL,
    )


def service(
    name: str = "checkout",
    *,
    mode: Mode = "act",
    approvals: int = 0,
    config: AutoRollbackConfig | None = None,
) -> ServiceRef:
    entry = ServiceEntry(
        namespace=NAMESPACE,
        deployment=name,
        channel=CHANNEL,
        approvals=approvals,
        approvers=("U0CAROL",) if approvals else (),
        auto_rollback=config or auto_rollback(mode),
    )
    return ServiceRef(name, NAMESPACE, name, None, entry)


@dataclass(frozen=True)
class Set:
    """A ReplicaSet: its version, the revision it holds, when it was made."""

    version: str
    revision: int
    created: datetime

    @property
    def pod_hash(self) -> str:
        return "v" + self.version.replace(".", "")


def rollout(*sets: Set, running: str, revision: int, name: str = "checkout") -> History:
    """The Deployment `name` at `revision`, running the template of `running`."""
    objects = [
        replicaset(
            template(s.version),
            revision=s.revision,
            pod_hash=s.pod_hash,
            created=s.created.isoformat().replace("+00:00", "Z"),
        )
        for s in sets
    ]
    kept = deployment(template(running), revision=revision)
    kept["metadata"]["name"] = name
    return parse_history(kept, objects)


def just_deployed(name: str = "checkout", *, ago: float = 0.95) -> History:
    """1.0 (revision 1, a week old) replaced by 1.1 (revision 2), `ago` seconds ago."""
    now = utc_now()
    return rollout(
        Set("1.0", 1, now - timedelta(days=7)),
        Set("1.1", 2, now - timedelta(seconds=ago)),
        running="1.1",
        revision=2,
        name=name,
    )


def report(
    verdict: VerdictKind = VerdictKind.NO_VERDICT,
    *,
    reason: str = "no verdict yet: no breach confirmed so far",
    notices: tuple[str, ...] = (),
    unavailable: str | None = None,
    at_seconds: float | None = None,
    first_breach_at: float | None = None,
) -> Report:
    return Report(
        service="checkout",
        namespace=NAMESPACE,
        deployment="checkout",
        revision=2,
        version="1.1",
        pod_template_hash="v11",
        deployed_at=utc_now(),
        prometheus_url=PROMETHEUS,
        window_seconds=3,
        interval_seconds=1,
        consecutive=1,
        analysed_seconds=1,
        verdict=verdict,
        reason=reason,
        baseline=Baseline(1, "v10", alongside=1),
        signals=(),
        tally=Tally(),
        notices=notices,
        at_seconds=at_seconds,
        unavailable=unavailable,
        first_breach_at=first_breach_at,
    )


HEALTHY = report(VerdictKind.HEALTHY, reason="healthy: no breach confirmed", at_seconds=1)
BREACH = report(
    VerdictKind.BREACH,
    reason="breach confirmed: 1 interval in a row breached",
    at_seconds=1,
    first_breach_at=1,
)
UNDECIDED = report()


# -- the fakes of the ports ---------------------------------------------------------------------


@dataclass
class Lease:
    holder: str | None
    claim: WatchClaim


class FakeCluster:
    """One cluster: its histories, a namespace watch fed by `publish`, and watch Leases kept
    as `WatchLeases` keeps them."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.histories: dict[str, History] = {}
        self.leases: dict[str, Lease] = {}
        self.answers: list[Claimed] = []  # given to the next claims instead, first first
        self.gate: asyncio.Event | None = None  # history reads wait for it while set up
        self._watchers: list[asyncio.Queue[DeploymentChange]] = []

    def publish(self, name: str) -> None:
        """A change of `name` as the namespace watch gives it: the Deployment now."""
        kept = self.histories.get(name)
        change = DeploymentChange(name, kept.deployment if kept is not None else None)
        for queue in self._watchers:
            queue.put_nowait(change)

    async def watch_namespace(self, namespace: str) -> AsyncGenerator[DeploymentChange, None]:
        assert namespace == NAMESPACE
        queue: asyncio.Queue[DeploymentChange] = asyncio.Queue()
        self._watchers.append(queue)
        self.journal.note("watching", namespace)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(queue)

    async def history(self, namespace: str, name: str) -> History:
        kept = self.histories.get(name)  # as it was when asked
        current = kept.current if kept is not None else None
        self.journal.note("history", name, current.number if current else None)
        if self.gate is not None:
            await self.gate.wait()
        if kept is None:
            raise NotFound(f"deployment {namespace}/{name} not found")
        return kept

    async def claim(
        self, namespace: str, deployment: str, me: str, revision: int, seconds: int
    ) -> Claimed:
        answer = self.answers.pop(0) if self.answers else self._claim(deployment, me, revision)
        self.journal.note("claim", deployment, me, revision, answer.ours)
        return answer

    def _claim(self, deployment: str, me: str, revision: int) -> Claimed:
        lease = self.leases.get(deployment)
        found = lease.claim if lease is not None and lease.claim.revision == revision else None
        if lease is not None and found is not None and found.ended is not None:
            return Claimed(False, found, lease.holder)
        if lease is not None and lease.holder not in (None, me):
            return Claimed(False, found, lease.holder)
        claim = found or WatchClaim(revision)
        self.leases[deployment] = Lease(me, claim)
        return Claimed(True, claim, me)

    def _held(self, deployment: str, me: str) -> Lease:
        lease = self.leases.get(deployment)
        if lease is None or lease.holder != me:
            raise LockLost(f"the watch of {deployment}", None)
        return lease

    async def renew(self, namespace: str, deployment: str, me: str) -> WatchClaim:
        self.journal.note("renew", deployment, me)
        return self._held(deployment, me).claim

    async def note_thread(
        self, namespace: str, deployment: str, me: str, thread: Thread, *, revision: int
    ) -> None:
        lease = self._held(deployment, me)
        c = lease.claim
        if c.revision != revision:  # another revision's claim: not this watch's
            raise LockLost(f"the watch of {deployment}", None)
        lease.claim = WatchClaim(c.revision, thread, c.ended, c.stop_by)
        self.journal.note("note_thread", deployment, me, thread)

    async def end(
        self, namespace: str, deployment: str, me: str, phase: Phase, *, revision: int
    ) -> None:
        self.journal.note("end", deployment, me, phase)
        lease = self.leases.get(deployment)
        if lease is not None and lease.holder == me and lease.claim.revision == revision:
            c = lease.claim
            self.leases[deployment] = Lease(
                None, WatchClaim(c.revision, c.thread, phase, c.stop_by)
            )

    async def hand_over(self, namespace: str, deployment: str, me: str, *, revision: int) -> None:
        self.journal.note("hand_over", deployment, me)
        lease = self.leases.get(deployment)
        if lease is not None and lease.holder == me and lease.claim.revision == revision:
            lease.holder = None

    async def ask_stop(
        self, namespace: str, deployment: str, revision: int, user: str
    ) -> WatchClaim | None:
        self.journal.note("ask_stop", deployment, revision, user)
        lease = self.leases.get(deployment)
        if lease is None or lease.claim.revision != revision:
            return None
        c = lease.claim
        if c.ended is not None or c.stop_by is not None:
            return c
        lease.claim = WatchClaim(c.revision, c.thread, None, user)
        return lease.claim


@dataclass
class FakeClusters:
    one: FakeCluster

    def cluster(self, context: str | None) -> FakeCluster:
        assert context is None
        return self.one


class ScriptedAnalyzer(Analyzer):
    """The analysis up to each interval: the script's next report (its last one again once it
    runs out)."""

    def __init__(
        self, journal: Journal, *reports: Report, others: Report | None = None
    ) -> None:  # no super().__init__(): only `configuration` of the real analysis is used
        self._default_url = None  # every service here names its Prometheus
        self.journal = journal
        self.reports = list(reports) or [UNDECIDED]
        self.others = others  # what every service but checkout gets, when given
        self.calls = 0

    async def once(
        self,
        ref: ServiceRef,
        revision: int | None = None,
        *,
        history: History | None = None,
        as_of: datetime | None = None,
    ) -> Report:
        assert history is not None and as_of is not None  # the watch passes what it read
        self.journal.note("analyse", ref.name, revision, as_of)
        if self.others is not None and ref.name != "checkout":
            return self.others
        self.calls += 1
        return self.reports[min(self.calls, len(self.reports)) - 1]


class FakeMessages:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.gate: asyncio.Event | None = None  # set: posts wait for it (Slack's budget)

    async def post_watching(self, channel: str, status: WatchStatus) -> Thread:
        self.journal.note("post", channel, status)
        if self.gate is not None:
            await self.gate.wait()
        return THREAD

    async def update(self, thread: Thread, status: WatchStatus) -> None:
        self.journal.note("update", thread, status)

    async def notice(self, thread: Thread, text: str) -> None:
        self.journal.note("notice", thread, text)

    async def verdict(
        self,
        thread: Thread,
        status: WatchStatus,
        report: Report,
        *,
        offer: ServiceView | None,
        loud: bool,
    ) -> None:
        self.journal.note("verdict", thread, status, report, offer, loud)

    async def chart(self, thread: Thread, title: str, png: bytes) -> None:
        self.journal.note("chart", thread, title, png)


class FakeRollbacks:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.answer = StartResult("started", "rolling back")

    async def start(self, request: RollbackRequest) -> StartResult:
        self.journal.note("start", request)
        return self.answer


class FakeViews:
    def __init__(self, journal: Journal, cluster: FakeCluster) -> None:
        self.journal = journal
        self.cluster = cluster

    async def view(self, ref: ServiceRef, asked_by: str) -> ServiceView:
        self.journal.note("view", ref.name, asked_by)
        return ServiceView(
            service=ref.name,
            namespace=ref.namespace,
            cluster="default",
            history=self.cluster.histories[ref.deployment],
            asked_by=asked_by,
            taken_at=utc_now(),
        )


class FakeCharts:
    async def png(self, report: Report, rolled_back_at: float | None) -> bytes:
        return b"\x89PNG" + str(rolled_back_at).encode()


class FakeMetrics:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def analysed(self, service: str, verdict: str) -> None:
        self.journal.note("analysed", service, verdict)

    def detected(self, seconds: float) -> None:
        self.journal.note("detected", seconds)


@dataclass
class ListSink:
    records: list[AuditRecord] = field(default_factory=list)

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        self.records.append(record)


# -- a world of replicas --------------------------------------------------------------------------


T = TypeVar("T")


def typed(kind: type[T], value: object) -> T:
    assert isinstance(value, kind), value
    return value


@dataclass
class Replica:
    watch: RolloutWatch
    task: asyncio.Task[None]


@dataclass
class World:
    journal: Journal
    cluster: FakeCluster
    messages: FakeMessages
    rollbacks: FakeRollbacks
    sink: ListSink
    replicas: list[Replica] = field(default_factory=list)

    def start(
        self,
        services: Sequence[ServiceRef],
        analyzer: ScriptedAnalyzer,
        *,
        me: str = "bot-a",
        lease_seconds: int = 15,
        scrape_lag: float = 0.0,
    ) -> RolloutWatch:
        watch = RolloutWatch(
            services,
            FakeClusters(self.cluster),
            analyzer,
            self.messages,
            self.rollbacks,
            FakeViews(self.journal, self.cluster),
            AuditTrail([self.sink]),
            replica=me,
            charts=FakeCharts(),
            metrics=FakeMetrics(self.journal),
            lease_seconds=lease_seconds,
            scrape_lag=scrape_lag,
        )
        self.replicas.append(Replica(watch, asyncio.create_task(watch.run())))
        return watch

    async def watching(self, count: int = 1) -> None:
        """Once `count` namespace watches are open: changes published from now on reach them."""
        await self.journal.until(lambda: len(self.journal.of("watching")) >= count)

    async def until(self, ready: Callable[[], bool]) -> None:
        await self.journal.until(ready)
        self.check_running()

    async def ended(self, name: str = "checkout", count: int = 1) -> list[tuple[object, ...]]:
        """The watches ended so far (their metric is the last thing a watch does)."""
        await self.until(
            lambda: len([e for e in self.journal.of("analysed") if e[0] == name]) >= count
        )
        return self.journal.of("analysed")

    def check_running(self) -> None:
        for replica in self.replicas:
            if replica.task.done() and not replica.task.cancelled():
                replica.task.result()  # a watch that crashed fails the test with its error

    def posts(self) -> list[WatchStatus]:
        return [typed(WatchStatus, status) for _, status in self.journal.of("post")]

    def updates(self) -> list[WatchStatus]:
        return [typed(WatchStatus, status) for _, status in self.journal.of("update")]

    def verdicts(self) -> list[tuple[object, ...]]:
        return self.journal.of("verdict")

    def notices(self) -> list[object]:
        return [text for _, text in self.journal.of("notice")]

    def starts(self) -> list[RollbackRequest]:
        return [typed(RollbackRequest, request) for (request,) in self.journal.of("start")]

    def claims(self, name: str = "checkout") -> list[tuple[object, ...]]:
        return [entry[1:] for entry in self.journal.of("claim") if entry[0] == name]

    async def close(self) -> None:
        for replica in self.replicas:
            await replica.watch.close()
            replica.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replica.task


@pytest.fixture
async def world() -> AsyncIterator[World]:
    journal = Journal()
    cluster = FakeCluster(journal)
    made = World(journal, cluster, FakeMessages(journal), FakeRollbacks(journal), ListSink())
    try:
        yield made
        made.check_running()
    finally:
        await made.close()


async def deployed(world: World, *services: str, ago: float = 0.95) -> None:
    """Each service's new version went out `ago` seconds ago, and the watch hears of it."""
    for name in services:
        world.cluster.histories[name] = just_deployed(name, ago=ago)
        world.cluster.publish(name)


async def started(
    world: World,
    analyzer: ScriptedAnalyzer,
    *services: ServiceRef,
    me: str = "bot-a",
    lease_seconds: int = 15,
    scrape_lag: float = 0.0,
) -> RolloutWatch:
    watch = world.start(
        services or [service()],
        analyzer,
        me=me,
        lease_seconds=lease_seconds,
        scrape_lag=scrape_lag,
    )
    await world.watching(len(world.replicas))
    return watch


# -- a new rollout is watched -------------------------------------------------------------------


async def test_a_new_revision_is_watched_once_in_its_own_message_noted_in_the_claim(
    world: World,
) -> None:
    await started(world, ScriptedAnalyzer(world.journal, UNDECIDED, HEALTHY))
    await deployed(world, "checkout")
    world.cluster.publish("checkout")  # the rollout's status moving: the same revision
    await world.until(lambda: bool(world.journal.of("note_thread")))
    world.cluster.publish("checkout")

    [status] = world.posts()
    assert (status.service, status.namespace, status.deployment, status.context) == (
        "checkout",
        NAMESPACE,
        "checkout",
        None,
    )
    assert (status.revision, status.version) == (2, "1.1")
    assert (status.baseline_revision, status.baseline_version) == (1, "1.0")
    assert (status.window_seconds, status.mode, status.on_call_group) == (3, "act", ON_CALL)
    assert status.phase is Phase.WATCHING
    assert world.journal.of("post")[0][0] == CHANNEL
    assert world.cluster.leases["checkout"] == Lease("bot-a", WatchClaim(2, THREAD))
    watching = world.sink.records[0]
    assert (watching.step, watching.actor, watching.via) == (Step.WATCHING, ACTOR, VIA)
    assert (watching.to_revision, watching.from_revision) == (2, 1)
    assert (watching.channel, watching.thread_ts) == (CHANNEL, THREAD.thread_ts)

    await world.ended()
    assert len(world.posts()) == 1
    assert world.claims() == [("bot-a", 2, True)]


async def test_each_interval_is_analysed_up_to_its_end_while_the_lease_is_renewed(
    world: World,
) -> None:
    await started(world, ScriptedAnalyzer(world.journal, UNDECIDED, UNDECIDED, HEALTHY))
    await deployed(world, "checkout", ago=0.5)  # half an interval of margin on a slow machine
    await world.ended()
    went_out = world.cluster.histories["checkout"].went_out
    assert went_out is not None
    as_of = [entry[2] for entry in world.journal.of("analyse")]
    assert as_of == [went_out + timedelta(seconds=step) for step in (1, 2, 3)]
    assert all(entry[1] == 2 for entry in world.journal.of("analyse"))
    kinds = [k for k in world.journal.kinds() if k in ("renew", "analyse")]
    assert kinds.count("analyse") == 3 and kinds[0] == "renew"  # renewed from the start


async def test_a_healthy_rollout_is_told_quietly_and_its_lease_ended(world: World) -> None:
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY))
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "healthy")]

    [final] = world.updates()
    assert final.phase is Phase.HEALTHY
    assert final.detail == "healthy: no breach confirmed"  # the report's reason
    assert world.journal.of("update")[0][0] == THREAD
    assert world.verdicts() == [] and world.journal.of("chart") == []
    assert world.starts() == []
    assert world.journal.of("end") == [("checkout", "bot-a", Phase.HEALTHY)]
    assert world.cluster.leases["checkout"] == Lease(None, WatchClaim(2, THREAD, Phase.HEALTHY))
    analysed = world.sink.records[-1]
    assert (analysed.step, analysed.actor, analysed.detail) == (
        Step.ANALYSED,
        ACTOR,
        "healthy: no breach confirmed",
    )
    # The Lease says "ended" before the message says it.
    kinds = world.journal.kinds()
    assert kinds.index("end") < kinds.index("update")


# -- a breach ---------------------------------------------------------------------------------


async def test_a_breach_in_act_mode_rolls_back_to_the_revision_it_replaced(world: World) -> None:
    await started(world, ScriptedAnalyzer(world.journal, BREACH))
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "rolled_back")]

    [request] = world.starts()
    kept = world.cluster.histories["checkout"]
    previous = kept.revision(1)
    assert previous is not None
    assert (request.service, request.target.namespace, request.target.name) == (
        "checkout",
        NAMESPACE,
        "checkout",
    )
    assert (request.target_revision, request.target_version) == (1, "1.0")
    assert request.target_replicaset == previous.replicaset == "checkout-v10"
    assert (request.actor, request.via) == ("rollback-bot (automatic rollback)", VIA)
    assert request.thread == THREAD
    assert request.snapshot is not None
    assert request.snapshot.revision == kept.deployment.revision == 2
    assert request.snapshot.generation == kept.deployment.generation
    assert (request.snapshot.target_revision, request.snapshot.target_replicaset) == (
        1,
        "checkout-v10",
    )
    assert request.reason is not None and request.reason.startswith("1.1 breached: breach")

    [(thread, status, shown, offer, loud)] = world.verdicts()
    assert thread == THREAD and shown is BREACH
    assert isinstance(status, WatchStatus)
    assert (status.phase, status.detail) == (
        Phase.ROLLED_BACK,
        "rolling back to 1.0 (revision 1)",
    )
    assert status.on_call_group == ON_CALL
    assert offer is None and loud is False  # the edited message says it in the channel
    [(chart_thread, title, _png)] = world.journal.of("chart")
    assert chart_thread == THREAD and title == "checkout 1.1 (revision 2)"
    [(detected,)] = world.journal.of("detected")
    assert isinstance(detected, float) and 0 <= detected < WAIT
    assert world.journal.of("view") == []
    assert world.updates()[-1].phase is Phase.ROLLED_BACK
    assert world.journal.of("end") == [("checkout", "bot-a", Phase.ROLLED_BACK)]


async def test_a_breach_in_dry_run_starts_nothing_and_offers_the_rollback(world: World) -> None:
    await started(world, ScriptedAnalyzer(world.journal, BREACH), service(mode="dry-run"))
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "would_roll_back")]

    assert world.starts() == []
    [(_, status, _, offer, loud)] = world.verdicts()
    assert isinstance(status, WatchStatus)
    assert status.phase is Phase.WOULD_ROLL_BACK
    assert status.detail == "dry-run: would have rolled back to 1.0 (revision 1)"
    assert isinstance(offer, ServiceView) and offer.service == "checkout"
    assert offer.asked_by == ACTOR and loud is False
    assert world.journal.of("detected") == []
    assert len(world.journal.of("chart")) == 1


async def test_a_breach_of_a_service_needing_approvals_is_never_rolled_back_by_the_bot(
    world: World,
) -> None:
    await started(world, ScriptedAnalyzer(world.journal, BREACH), service(approvals=1))
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "not_rolled_back")]

    assert world.starts() == []
    [(_, status, _, offer, _)] = world.verdicts()
    assert isinstance(status, WatchStatus)
    assert status.phase is Phase.NOT_ROLLED_BACK
    assert status.detail is not None and "needs 1 approval," in status.detail
    assert "never approves its own" in status.detail
    assert isinstance(offer, ServiceView)


async def test_a_rollback_the_runner_refuses_is_not_rolled_back_and_says_why(
    world: World,
) -> None:
    refusal = "1.1 ran migration 0042: rolling back to 1.0 needs the migration guard overridden"
    world.rollbacks.answer = StartResult("refused", refusal)
    await started(world, ScriptedAnalyzer(world.journal, BREACH))
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "not_rolled_back")]

    assert len(world.starts()) == 1
    [(_, status, _, offer, loud)] = world.verdicts()
    assert isinstance(status, WatchStatus)
    assert (status.phase, status.detail, status.on_call_group) == (
        Phase.NOT_ROLLED_BACK,
        refusal,
        ON_CALL,
    )
    assert isinstance(offer, ServiceView) and loud is True
    assert world.journal.of("detected") == []
    assert world.updates()[-1].detail == refusal


async def test_a_rollback_already_running_gets_no_second_button(world: World) -> None:
    world.rollbacks.answer = StartResult("running", "U0ALICE is already rolling back checkout")
    await started(world, ScriptedAnalyzer(world.journal, BREACH))
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "not_rolled_back")]
    [(_, status, _, offer, _)] = world.verdicts()
    assert isinstance(status, WatchStatus)
    assert status.detail == "U0ALICE is already rolling back checkout"
    assert offer is None


# -- what is said along the way ----------------------------------------------------------------


async def test_metrics_that_cannot_be_read_are_said_once_and_never_roll_back(
    world: World,
) -> None:
    down = report(unavailable="Prometheus at http://prometheus:9090 is unreachable")
    analyzer = ScriptedAnalyzer(world.journal, down)
    await started(world, analyzer, service(config=auto_rollback(window=2)))
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "no_verdict")]

    assert analyzer.calls == 2  # every interval of the window asked, and said once
    [text] = world.notices()
    assert isinstance(text, str)
    assert text == (
        "No verdict while the metrics cannot be read (Prometheus at "
        "http://prometheus:9090 is unreachable); missing data never rolls back."
    )
    assert world.starts() == [] and world.verdicts() == []
    assert world.updates()[-1].phase is Phase.NO_VERDICT


async def test_notices_repeated_interval_after_interval_are_said_once_each(
    world: World,
) -> None:
    quiet = "not enough traffic to judge p99 latency"
    empty = "no data for error ratio"
    analyzer = ScriptedAnalyzer(
        world.journal,
        report(notices=(empty,)),
        report(notices=(empty, quiet)),
        report(notices=(quiet, empty), at_seconds=3, reason="no verdict: not enough traffic"),
    )
    await started(world, analyzer)
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "no_verdict")]
    assert analyzer.calls == 3
    assert world.notices() == [empty, quiet]
    assert {thread for thread, _ in world.journal.of("notice")} == {THREAD}
    [final] = world.updates()
    assert (final.phase, final.detail) == (Phase.NO_VERDICT, "no verdict: not enough traffic")


# -- stopping ---------------------------------------------------------------------------------


async def test_a_stop_asked_by_someone_ends_the_watch_stopped_by_them(world: World) -> None:
    ref = service()
    watch = await started(world, ScriptedAnalyzer(world.journal, UNDECIDED), ref)
    await deployed(world, "checkout", ago=0.5)
    await world.until(lambda: bool(world.journal.of("note_thread")))

    answer = await watch.stop(ref, 2, "U0ALICE")
    assert answer == (
        "Stopping the watch of revision 2 of checkout: no verdict will be given, nothing "
        "rolled back."
    )
    assert await world.ended() == [("checkout", "stopped")]
    [final] = world.updates()
    assert (final.phase, final.detail) == (Phase.STOPPED, "stopped by <@U0ALICE>")
    assert world.journal.of("end") == [("checkout", "bot-a", Phase.STOPPED)]
    record = world.sink.records[-1]
    assert (record.step, record.actor, record.via) == (Step.WATCH_STOPPED, "U0ALICE", VIA)
    assert record.detail == "stopped by <@U0ALICE>"
    assert world.starts() == [] and world.verdicts() == []

    assert await watch.stop(ref, 2, "U0BOB") == (
        "The watch of revision 2 of checkout has already ended (stopped)."
    )
    assert await watch.stop(ref, 7, "U0BOB") == "Nothing watches revision 7 of checkout any more."


async def test_a_stop_asked_twice_names_who_asked_first(world: World) -> None:
    ref = service()
    watch = await started(world, ScriptedAnalyzer(world.journal, UNDECIDED), ref)
    world.cluster.leases["checkout"] = Lease("bot-z", WatchClaim(2, THREAD))  # another replica's
    assert (await watch.stop(ref, 2, "U0ALICE")).startswith("Stopping the watch")
    assert await watch.stop(ref, 2, "U0BOB") == (
        "<@U0ALICE> has already asked to stop watching revision 2 of checkout."
    )
    assert world.cluster.leases["checkout"].claim.stop_by == "U0ALICE"


# -- what is not watched, and what is left to others --------------------------------------------


async def test_a_rollback_to_an_older_replicaset_is_not_watched(world: World) -> None:
    now = utc_now()
    # 1.1 went out 1.5 s ago, and was rolled back 0.5 s ago to 1.0's ReplicaSet (revision 3).
    world.cluster.histories["checkout"] = rollout(
        Set("1.0", 3, now - timedelta(seconds=2.5)),
        Set("1.1", 2, now - timedelta(seconds=1.5)),
        running="1.0",
        revision=3,
    )
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY), service(), service("cart"))
    world.cluster.publish("checkout")
    await world.until(lambda: ("history", "checkout", 3) in world.journal.entries)
    # Told after it, cart's new version is claimed and analysed: checkout's turn had passed.
    await deployed(world, "cart")
    await world.ended("cart")
    assert world.claims("checkout") == []
    assert [status.service for status in world.posts()] == ["cart"]


async def test_a_deployments_first_version_is_not_watched(world: World) -> None:
    # A new Deployment: its only revision has no earlier one to be judged against.
    world.cluster.histories["checkout"] = rollout(
        Set("1.0", 1, utc_now() - timedelta(seconds=0.5)), running="1.0", revision=1
    )
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY), service(), service("cart"))
    world.cluster.publish("checkout")
    await world.until(lambda: ("history", "checkout", 1) in world.journal.entries)
    await deployed(world, "cart")
    await world.ended("cart")
    assert world.claims("checkout") == []
    assert [status.service for status in world.posts()] == ["cart"]


async def test_a_watch_ends_superseded_when_its_rollout_is_rolled_back_meanwhile(
    world: World,
) -> None:
    analyzer = ScriptedAnalyzer(world.journal, UNDECIDED, others=HEALTHY)
    await started(world, analyzer, service(), service("cart"))
    await deployed(world, "checkout", ago=0.5)
    await world.until(lambda: bool(world.journal.of("note_thread")))
    kept = world.cluster.histories["checkout"]
    old, new = kept.revision(1), kept.revision(2)
    assert old is not None and old.created_at is not None
    assert new is not None and new.created_at is not None
    world.cluster.histories["checkout"] = rollout(
        Set("1.0", 3, old.created_at), Set("1.1", 2, new.created_at), running="1.0", revision=3
    )
    world.cluster.publish("checkout")
    assert await world.ended() == [("checkout", "superseded")]
    [final] = world.updates()
    assert final.phase is Phase.SUPERSEDED
    assert final.detail == "the deployment moved on: revision 3 (1.0) runs now"
    await deployed(world, "cart")
    await world.ended("cart")
    assert world.claims("checkout") == [("bot-a", 2, True)]


async def test_a_deleted_deployment_ends_its_watch_superseded(world: World) -> None:
    await started(world, ScriptedAnalyzer(world.journal, UNDECIDED))
    await deployed(world, "checkout", ago=0.5)
    await world.until(lambda: bool(world.journal.of("note_thread")))
    del world.cluster.histories["checkout"]
    world.cluster.publish("checkout")
    assert await world.ended() == [("checkout", "superseded")]
    assert world.updates()[-1].detail == "the deployment shop/checkout was deleted"


async def test_a_rollout_whose_window_has_passed_is_not_watched(world: World) -> None:
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY), service(), service("cart"))
    await deployed(world, "checkout", ago=4.5)  # window 3 s + 1 interval to confirm
    await world.until(lambda: ("history", "checkout", 2) in world.journal.entries)
    await deployed(world, "cart")
    await world.ended("cart")
    assert world.claims("checkout") == []


async def test_a_watch_held_by_another_replica_is_left_to_it_and_claimed_again_later(
    world: World,
) -> None:
    world.cluster.answers = [Claimed(False, WatchClaim(2), "bot-b")]
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY), lease_seconds=3)
    await deployed(world, "checkout")
    # The sweep (every third of the Lease's duration: 1 s) claims it again.
    await world.until(lambda: len(world.claims()) == 2)
    assert world.claims() == [("bot-a", 2, False), ("bot-a", 2, True)]
    kinds = world.journal.kinds()
    assert "post" not in kinds[: kinds.index("claim", kinds.index("claim") + 1)]
    assert await world.ended() == [("checkout", "healthy")]
    assert len(world.posts()) == 1


async def test_a_watch_another_replica_ended_is_not_claimed_again(world: World) -> None:
    ended = WatchClaim(2, THREAD, Phase.HEALTHY)
    world.cluster.leases["checkout"] = Lease(None, ended)
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY), service(), service("cart"))
    await deployed(world, "checkout")
    await world.until(lambda: len(world.claims()) == 1)
    assert world.claims() == [("bot-a", 2, False)]
    await deployed(world, "cart")
    await world.ended("cart")
    assert world.posts()[0].service == "cart" and len(world.posts()) == 1


async def test_a_replica_stopping_hands_its_watch_over_and_another_goes_on_in_its_message(
    world: World,
) -> None:
    a = await started(world, ScriptedAnalyzer(world.journal, UNDECIDED), lease_seconds=3)
    await deployed(world, "checkout", ago=0.5)
    await world.until(lambda: bool(world.journal.of("note_thread")))
    # B hears of the rollout too, but A holds it.
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY), me="bot-b", lease_seconds=3)
    world.cluster.publish("checkout")
    await world.until(lambda: ("bot-b", 2, False) in world.claims())

    await a.close()
    assert world.journal.of("hand_over") == [("checkout", "bot-a")]
    assert world.journal.of("end") == [] and world.updates() == []
    assert world.cluster.leases["checkout"] == Lease(None, WatchClaim(2, THREAD))
    # B's sweep claims it at once and goes on in A's message: no second "watching".
    assert await world.ended() == [("checkout", "healthy")]
    assert world.claims()[-1] == ("bot-b", 2, True)
    assert len(world.posts()) == 1
    assert world.journal.of("update")[-1][0] == THREAD
    assert world.journal.of("end") == [("checkout", "bot-b", Phase.HEALTHY)]
    assert [r.step for r in world.sink.records] == [Step.WATCHING, Step.ANALYSED]


async def test_a_watch_lost_to_another_replica_is_left_to_it_without_a_word(
    world: World,
) -> None:
    await started(world, ScriptedAnalyzer(world.journal, UNDECIDED))
    await deployed(world, "checkout", ago=0.5)
    await world.until(lambda: bool(world.journal.of("note_thread")))
    # Another replica took the Lease over (it saw this one silent for its duration).
    world.cluster.leases["checkout"].holder = "bot-b"
    renewals = len(world.journal.of("renew"))
    await world.until(lambda: len(world.journal.of("renew")) > renewals)
    world.check_running()
    # Nothing said, ended or handed over: the new holder tells the story.
    assert world.updates() == [] and world.journal.of("end") == []
    assert world.journal.of("hand_over") == []
    assert world.cluster.leases["checkout"].holder == "bot-b"


# -- bugs found in watch.py: these fail until it is fixed ------------------------------------------


async def test_the_holder_renews_its_lease_within_the_lease_duration(world: World) -> None:
    # The defaults' proportions: the interval as long as the Lease, plus the scrape lag.
    ref = service(config=auto_rollback(window=2, interval=2))
    await started(
        world, ScriptedAnalyzer(world.journal, HEALTHY), ref, lease_seconds=2, scrape_lag=0.5
    )
    await deployed(world, "checkout", ago=0.0)
    await world.ended()
    # What moves the Lease's renewTime on: the claim, noting the message, each renewal.
    stamps = world.journal.when("claim", "note_thread", "renew")
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert gaps and max(gaps) < 2, f"the Lease went {max(gaps):.2f}s without a renewal"


async def test_a_revision_deployed_while_the_previous_one_is_read_is_watched(
    world: World,
) -> None:
    await started(world, ScriptedAnalyzer(world.journal, UNDECIDED))
    world.cluster.gate = asyncio.Event()
    await deployed(world, "checkout", ago=0.5)
    await world.until(lambda: ("history", "checkout", 2) in world.journal.entries)
    # While revision 2's history is read, revision 3 (1.2, a new ReplicaSet) goes out.
    kept = world.cluster.histories["checkout"]
    old, new = kept.revision(1), kept.revision(2)
    assert old is not None and old.created_at is not None
    assert new is not None and new.created_at is not None
    world.cluster.histories["checkout"] = rollout(
        Set("1.0", 1, old.created_at),
        Set("1.1", 2, new.created_at),
        Set("1.2", 3, utc_now()),
        running="1.2",
        revision=3,
    )
    world.cluster.publish("checkout")
    await asyncio.sleep(0)  # the change reaches the namespace watch before the read returns
    world.cluster.gate.set()
    world.cluster.gate = None
    # Either revision 3 is claimed, or revision 2's watch ends, superseded by it.
    await world.until(
        lambda: any(claim[1] == 3 for claim in world.claims()) or bool(world.journal.of("analysed"))
    )
    assert any(claim[1] == 3 for claim in world.claims()), world.claims()


# -- found in review ---------------------------------------------------------------------------


async def test_a_breach_refused_because_the_replica_is_restarting_is_handed_over_not_ended(
    world: World,
) -> None:
    world.rollbacks.answer = StartResult("refused", RESTARTING)
    await started(world, ScriptedAnalyzer(world.journal, BREACH))
    await deployed(world, "checkout")
    await world.until(lambda: bool(world.journal.of("hand_over")))
    # Nothing told or ended: the replica that takes it over decides the breach again.
    assert world.verdicts() == [] and world.updates() == [] and world.journal.of("end") == []
    assert world.cluster.leases["checkout"] == Lease(None, WatchClaim(2, THREAD))


async def test_a_stop_asked_while_prometheus_is_read_ends_it_stopped_and_rolls_nothing_back(
    world: World,
) -> None:
    analyzer = ScriptedAnalyzer(world.journal, BREACH)
    watch = await started(world, analyzer)
    ref = service()

    async def stop_first(
        ref_: ServiceRef,
        revision: int | None = None,
        *,
        history: History | None = None,
        as_of: datetime | None = None,
    ) -> Report:
        await watch.stop(ref, 2, "U0CAROL")  # the click lands while the queries run
        return BREACH

    analyzer.once = stop_first  # type: ignore[method-assign,assignment]
    await deployed(world, "checkout")
    assert await world.ended() == [("checkout", "stopped")]
    assert world.starts() == [] and world.verdicts() == []


async def test_a_service_without_a_prometheus_is_not_watched(world: World) -> None:
    config = AutoRollbackConfig(mode="act", window=3, interval=1, query_window=1, consecutive=1)
    await started(
        world,
        ScriptedAnalyzer(world.journal, HEALTHY),
        service(config=config),
        service("cart"),
    )
    world.cluster.histories["checkout"] = just_deployed("checkout")
    world.cluster.publish("checkout")
    await deployed(world, "cart")
    await world.ended("cart")
    assert world.claims("checkout") == []


async def test_a_claimed_thread_outside_the_services_channel_is_not_used(world: World) -> None:
    elsewhere = Thread("C0ELSEWHERE", "1764216000.000999")
    # A handed-over claim whose thread someone pointed at another channel's message.
    world.cluster.leases["checkout"] = Lease(None, WatchClaim(2, elsewhere))
    await started(world, ScriptedAnalyzer(world.journal, HEALTHY))
    await deployed(world, "checkout")
    await world.ended()
    assert [channel for channel, _ in world.journal.of("post")] == [CHANNEL]
    assert all(thread != elsewhere for thread, *_ in world.journal.of("update"))


async def test_a_replica_stopping_while_its_watch_message_is_posted_notes_it_before_handing_over(
    world: World,
) -> None:
    world.messages.gate = asyncio.Event()
    a = await started(world, ScriptedAnalyzer(world.journal, UNDECIDED), lease_seconds=3)
    await deployed(world, "checkout", ago=0.5)
    await world.until(lambda: bool(world.journal.of("post")))
    closing = asyncio.create_task(a.close())
    await asyncio.sleep(0)  # the stop begins: the analysis is cancelled, the post is not
    assert not closing.done()
    world.messages.gate.set()  # Slack answers the post after the stop began
    await closing
    kinds = world.journal.kinds()
    assert kinds.index("note_thread") < kinds.index("hand_over")
    assert world.cluster.leases["checkout"] == Lease(None, WatchClaim(2, THREAD))
