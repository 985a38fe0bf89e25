"""One analysis of a revision, with fakes for the ports: a history of two revisions of checkout
(1.0 with pod-template-hash "old111", 1.1 with "new222" deployed at DEPLOYED) and a Prometheus
whose answers are functions of the time since the deploy, per pod-template-hash and metric.

The fake reads which side and metric a query is about from the rendered PromQL, the way
Prometheus would select the series: the hash, 5xx or not, histogram_quantile or not."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.config.catalog import ServiceEntry, ServiceRef
from bot.domain.analysis.checks import Outcome
from bot.domain.analysis.config import AutoRollbackConfig, PrometheusConfig
from bot.domain.analysis.report import Report
from bot.domain.analysis.series import Point, Series
from bot.domain.analysis.verdict import VerdictKind
from bot.domain.errors import MetricsUnavailable, RollbackRefused
from bot.domain.rollback.models import History
from bot.usecases.analysis.analyze import Analyzer, NoPrometheus, UnknownRevision
from tests.builders import deployment, replicaset, template

DEPLOYED = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
PROMETHEUS = "https://prometheus.example:9090"
OLD, NEW = "old111", "new222"
CONFIG = AutoRollbackConfig(
    prometheus=PrometheusConfig(url=PROMETHEUS),
    window=60,
    interval=10,
    query_window=10,
    consecutive=2,
)

Curve = Callable[[float], float | None]  # seconds since the deploy → value, None: no sample


def steady(value: float) -> Curve:
    return lambda _seconds: value


def until_deploy(value: float) -> Curve:
    """A version whose pods were gone when the new one went out: data only up to the deploy."""
    return lambda seconds: value if seconds <= 0 else None


def history() -> History:
    sets = [
        replicaset(template("1.0"), revision=1, pod_hash=OLD, created="2026-11-20T10:00:00Z"),
        replicaset(template("1.1"), revision=2, pod_hash=NEW, created="2026-11-27T04:00:00Z"),
    ]
    return parse_history(deployment(template("1.1"), revision=2), sets)


@dataclass
class FakeCluster:
    kept: History

    async def history(self, namespace: str, name: str) -> History:
        assert (namespace, name) == ("shop", "checkout")
        return self.kept


@dataclass
class FakeClusters:
    one: FakeCluster
    contexts: list[str | None] = field(default_factory=list)

    def cluster(self, context: str | None) -> FakeCluster:
        self.contexts.append(context)
        return self.one


@dataclass
class FakePrometheus:
    """Curves by (pod-template-hash, metric): "rps", "errors" (the 5xx ratio) or "p99"."""

    curves: dict[tuple[str, str], Curve] = field(default_factory=dict)
    failure: MetricsUnavailable | None = None
    failing: str = ""  # the failure only for the queries holding this text
    asked: list[tuple[str, datetime, datetime, float]] = field(default_factory=list)

    async def query_range(
        self, promql: str, start: datetime, end: datetime, step_seconds: float
    ) -> Sequence[Series]:
        self.asked.append((promql, start, end, step_seconds))
        if self.failure is not None and self.failing in promql:
            raise self.failure
        found = re.search(r'pod_template_hash="([a-z0-9]+)"', promql)
        assert found is not None, promql
        metric = (
            "p99"
            if "histogram_quantile" in promql
            else "errors"
            if 'code=~"5.."' in promql
            else "rps"
        )
        curve = self.curves.get((found.group(1), metric))
        if curve is None:
            return []
        points = []
        at = start
        while at <= end:
            value = curve((at - DEPLOYED).total_seconds())
            if value is not None:
                points.append(Point(at, value))
            at += timedelta(seconds=step_seconds)
        return [Series({}, tuple(points))] if points else []


@dataclass
class FakeSources:
    prometheus: FakePrometheus
    asked: list[tuple[str, PrometheusConfig]] = field(default_factory=list)

    def metrics(self, url: str, prometheus: PrometheusConfig) -> FakePrometheus:
        self.asked.append((url, prometheus))
        return self.prometheus


def version(
    pods: str, *, rps: Curve | None = None, errors: Curve | None = None, p99: Curve | None = None
) -> dict[tuple[str, str], Curve]:
    curves = {
        "rps": rps or steady(50),
        "errors": errors or steady(0.005),
        "p99": p99 or steady(0.1),
    }
    return {(pods, metric): curve for metric, curve in curves.items()}


def ref(config: AutoRollbackConfig | None = CONFIG) -> ServiceRef:
    entry = ServiceEntry(namespace="shop", deployment="checkout", auto_rollback=config)
    return ServiceRef("checkout", "shop", "checkout", None, entry)


def analyzer(
    prometheus: FakePrometheus,
    *,
    after: float = 65.0,
    default_url: str | None = None,
    kept: History | None = None,
) -> tuple[Analyzer, FakeSources]:
    sources = FakeSources(prometheus)
    clusters = FakeClusters(FakeCluster(kept or history()))
    clock = lambda: DEPLOYED + timedelta(seconds=after)  # noqa: E731
    return Analyzer(clusters, sources, default_prometheus_url=default_url, clock=clock), sources


def evidence_of(report: Report, name: str) -> Any:
    return next(item.evidence for item in report.signals if item.signal.name == name)


# -- verdicts ---------------------------------------------------------------------------------


async def test_a_new_version_erring_far_more_than_the_old_pods_beside_it_is_a_breach() -> None:
    prometheus = FakePrometheus(
        {**version(OLD), **version(NEW, errors=steady(0.2))},
    )
    subject, sources = analyzer(prometheus)
    report = await subject.once(ref())

    assert report.verdict is VerdictKind.BREACH
    assert report.at_seconds == 20  # two breaching intervals in a row: 10 s and 20 s
    assert "breach confirmed: 2 intervals in a row breached" in report.reason
    errors = evidence_of(report, "error ratio")
    assert (errors.outcome, errors.baseline, errors.new) == (Outcome.BREACH, "0.5%", "20%")
    assert errors.rule == "new > 3× baseline and > 1%"
    assert 'pod_template_hash="new222"' in errors.query
    assert evidence_of(report, "p99 latency").outcome is Outcome.PASS
    link = urlsplit(errors.link)
    assert f"{link.scheme}://{link.netloc}" == PROMETHEUS
    assert parse_qs(link.query)["g0.expr"] == [errors.query]
    # The old pods served beside the new ones: they were the baseline, interval by interval.
    assert (report.baseline.revision, report.baseline.pod_template_hash) == (1, OLD)
    assert (report.baseline.alongside, report.baseline.before_deploy) == (2, 0)
    item = report.signals[0]
    assert item.threshold == pytest.approx(0.015)  # 3 × 0.5 %, above the 1 % floor
    assert item.new_points == ((10.0, 0.2), (20.0, 0.2))
    assert item.baseline_points == ((10.0, 0.005), (20.0, 0.005))
    assert item.baseline_query is not None and 'pod_template_hash="old111"' in item.baseline_query
    assert sources.asked == [(PROMETHEUS, CONFIG.prometheus)]
    assert (report.revision, report.version, report.pod_template_hash) == (2, "1.1", NEW)


async def test_the_queries_ask_each_interval_from_the_deploy_on_never_past_now() -> None:
    prometheus = FakePrometheus({**version(OLD), **version(NEW)})
    subject, _ = analyzer(prometheus, after=65.0)
    await subject.once(ref())
    ranges = {
        (start, end, step) for promql, start, end, step in prometheus.asked if "[10s]" in promql
    }
    # 65 s after the deploy: intervals ending 10 s … 60 s; the window's is the last needed.
    assert ranges == {(DEPLOYED + timedelta(seconds=10), DEPLOYED + timedelta(seconds=60), 10.0)}
    before = [(start, end) for promql, start, end, _ in prometheus.asked if "[1m]" in promql]
    assert before and set(before) == {(DEPLOYED, DEPLOYED)}


async def test_a_version_as_good_as_the_old_one_over_the_whole_window_is_healthy() -> None:
    subject, _ = analyzer(FakePrometheus({**version(OLD), **version(NEW)}))
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.HEALTHY
    assert report.at_seconds == 60
    assert report.tally.passed == 6
    assert report.reason.startswith("healthy: no breach confirmed in 1 minute, 6 of 6 intervals")
    assert {item.evidence.outcome for item in report.signals} == {Outcome.PASS}


async def test_one_breaching_interval_alone_does_not_confirm_a_breach() -> None:
    spike = lambda seconds: 0.2 if seconds == 30 else 0.005  # noqa: E731
    subject, _ = analyzer(FakePrometheus({**version(OLD), **version(NEW, errors=spike)}))
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.HEALTHY
    assert "1 breaching interval did not repeat 2 times in a row" in report.reason


async def test_a_trickle_of_traffic_is_not_enough_to_judge() -> None:
    prometheus = FakePrometheus({**version(OLD), **version(NEW, rps=steady(0.2))})
    subject, _ = analyzer(prometheus)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert report.reason.startswith("no verdict: not enough traffic to judge in 1 minute")
    assert {item.evidence.outcome for item in report.signals} == {Outcome.LOW_VOLUME}
    assert any("not enough traffic to judge error ratio" in notice for notice in report.notices)


async def test_no_data_for_the_new_version_gives_no_verdict() -> None:
    subject, _ = analyzer(FakePrometheus(version(OLD)))
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert report.reason.startswith("no verdict: no data in 1 minute")
    assert {item.evidence.new for item in report.signals} == {"no data"}
    # Said once per signal, not every interval.
    assert len(report.notices) == 2


async def test_prometheus_unreachable_gives_no_verdict_saying_so() -> None:
    failure = MetricsUnavailable(
        "Prometheus at https://prometheus.example:9090 is unreachable: connection refused"
    )
    prometheus = FakePrometheus({**version(OLD), **version(NEW)}, failure=failure)
    subject, _ = analyzer(prometheus)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert report.unavailable == str(failure)
    assert report.reason == f"no verdict: {failure}"
    for item in report.signals:
        assert item.evidence.outcome is Outcome.NO_DATA
        assert "is unreachable: connection refused" in item.evidence.reason
        assert item.new_points == ()
    # Asked once, not once per query: its failure is said (and logged) once.
    assert len(prometheus.asked) == 1


async def test_prometheus_answering_an_error_to_one_query_gives_no_verdict() -> None:
    failure = MetricsUnavailable("Prometheus at https://p:9090 answered 422 (execution): boom")
    prometheus = FakePrometheus(
        {**version(OLD), **version(NEW, errors=steady(0.2))}, failure=failure, failing=OLD
    )
    subject, _ = analyzer(prometheus)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert report.reason == f"no verdict: {failure}"


async def test_without_the_old_pods_the_baseline_is_the_window_before_the_deploy() -> None:
    old = version(OLD, rps=until_deploy(50), errors=until_deploy(0.005), p99=until_deploy(0.1))
    prometheus = FakePrometheus({**old, **version(NEW, errors=steady(0.2))})
    subject, _ = analyzer(prometheus)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.BREACH
    assert (report.baseline.alongside, report.baseline.before_deploy) == (0, 2)
    assert "the window before the deploy for 2 intervals" in report.baseline.description
    errors = report.signals[0]
    assert errors.evidence.baseline == "0.5%"
    # The service over the whole window (1m) before the deploy, at the deploy's instant.
    assert errors.before_deploy_query is not None
    assert "[1m]" in errors.before_deploy_query and OLD in errors.before_deploy_query
    assert errors.baseline_points == ((10.0, 0.005), (20.0, 0.005))


async def test_old_pods_that_stop_serving_hand_over_to_the_window_before_the_deploy() -> None:
    old_rps = lambda seconds: 50.0 if seconds <= 20 else 0.0  # noqa: E731
    prometheus = FakePrometheus({**version(OLD, rps=old_rps), **version(NEW)})
    subject, _ = analyzer(prometheus)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.HEALTHY
    assert (report.baseline.alongside, report.baseline.before_deploy) == (2, 4)


async def test_a_first_revision_has_no_baseline_and_no_verdict() -> None:
    only = parse_history(
        deployment(template("1.0"), revision=1),
        [replicaset(template("1.0"), revision=1, pod_hash=NEW, created="2026-11-27T04:00:00Z")],
    )
    subject, _ = analyzer(FakePrometheus(version(NEW)), kept=only)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert report.baseline.revision is None
    assert report.baseline.description == "none: no earlier revision to compare with"
    assert "no request volume for the baseline" in report.signals[0].evidence.reason


# -- the window, the revision, the Prometheus ---------------------------------------------------


async def test_before_the_window_has_passed_there_is_no_verdict_yet() -> None:
    subject, _ = analyzer(FakePrometheus({**version(OLD), **version(NEW)}), after=25)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert report.reason == (
        "no verdict yet: 20s of the 1m00s window watched, no breach confirmed so far"
    )
    assert report.analysed_seconds == 20
    assert report.tally.passed == 2


async def test_a_breach_run_still_going_at_the_end_of_the_data_says_so() -> None:
    late = lambda seconds: 0.2 if seconds >= 20 else 0.005  # noqa: E731
    subject, _ = analyzer(FakePrometheus({**version(OLD), **version(NEW, errors=late)}), after=25)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert "1 breaching interval in a row so far, 2 confirm a breach" in report.reason


async def test_before_the_first_interval_nothing_is_asked() -> None:
    prometheus = FakePrometheus({**version(OLD), **version(NEW)})
    subject, _ = analyzer(prometheus, after=5)
    report = await subject.once(ref())
    assert report.verdict is VerdictKind.NO_VERDICT
    assert "the first interval ends 10s after the deploy" in report.reason
    assert prometheus.asked == []


async def test_a_revision_given_is_analysed_from_when_it_went_out() -> None:
    prometheus = FakePrometheus(version(OLD))
    subject, _ = analyzer(prometheus)
    report = await subject.once(ref(), revision=1)
    assert (report.revision, report.pod_template_hash) == (1, OLD)
    assert report.deployed_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert report.baseline.revision is None


async def test_an_unknown_revision_is_the_command_lines_mistake() -> None:
    subject, _ = analyzer(FakePrometheus())
    with pytest.raises(UnknownRevision, match=r"has no revision 7 \(it keeps: 2, 1\)") as caught:
        await subject.once(ref(), revision=7)
    assert caught.value.exit_code == 2


async def test_without_auto_rollback_the_presets_need_a_known_prometheus() -> None:
    subject, _ = analyzer(FakePrometheus())
    with pytest.raises(NoPrometheus, match="give --prometheus URL or set ROLLBACK_BOT_PROMETHEUS"):
        await subject.once(ref(config=None))

    prometheus = FakePrometheus({**version(OLD), **version(NEW)})
    subject, sources = analyzer(prometheus, default_url="http://prometheus:9090", after=700)
    report = await subject.once(ref(config=None))
    assert report.verdict is VerdictKind.HEALTHY
    assert (report.window_seconds, report.interval_seconds) == (600, 30)
    assert [url for url, _ in sources.asked] == ["http://prometheus:9090"]
    assert [item.signal.name for item in report.signals] == ["error ratio", "p99 latency"]


async def test_a_block_without_a_url_takes_the_default_and_needs_one() -> None:
    block = AutoRollbackConfig(window=60, interval=10, query_window=10, consecutive=2)
    subject, _ = analyzer(FakePrometheus())
    with pytest.raises(NoPrometheus, match="ROLLBACK_BOT_PROMETHEUS_URL"):
        await subject.once(ref(block))
    subject, sources = analyzer(
        FakePrometheus({**version(OLD), **version(NEW)}), default_url="http://p:9090"
    )
    assert (await subject.once(ref(block))).verdict is VerdictKind.HEALTHY
    assert sources.asked[0][0] == "http://p:9090"


async def test_several_series_of_one_query_are_judged_at_their_worst() -> None:
    @dataclass
    class TwoPods(FakePrometheus):
        async def query_range(
            self, promql: str, start: datetime, end: datetime, step_seconds: float
        ) -> Sequence[Series]:
            found = list(await super().query_range(promql, start, end, step_seconds))
            if found and 'code=~"5.."' in promql and NEW in promql:
                calm = tuple(Point(p.at, 0.001) for p in found[0].points)
                found.append(Series({"pod": "b"}, calm))
            return found

    prometheus = TwoPods({**version(OLD), **version(NEW, errors=steady(0.2))})
    subject, _ = analyzer(prometheus)
    assert (await subject.once(ref())).verdict is VerdictKind.BREACH


async def test_nan_from_prometheus_is_no_data_not_zero() -> None:
    prometheus = FakePrometheus({**version(OLD), **version(NEW, errors=steady(math.nan))})
    subject, _ = analyzer(prometheus)
    report = await subject.once(ref())
    errors = report.signals[0]
    assert errors.evidence.new == "no data"
    assert math.isnan(errors.new_points[0][1])


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"kind": "StatefulSet", "name": "orders-db"}, "is a StatefulSet"),
        (
            {
                "kind": "BlueGreen",
                "service": "web",
                "selector_key": "color",
                "blue": "web-blue",
                "green": "web-green",
            },
            "is a blue-green service",
        ),
    ],
)
def test_only_a_deployment_is_analysed(entry: dict[str, Any], said: str) -> None:
    found = ServiceEntry.model_validate({"namespace": "shop", **entry})
    other = ServiceRef("other", "shop", found.deployment, None, found, found.workload_kind)
    judge, _sources = analyzer(FakePrometheus(), default_url="http://prometheus:9090")
    with pytest.raises(RollbackRefused, match=f"{said}: the analysis judges Deployments only"):
        judge.configuration(other)
