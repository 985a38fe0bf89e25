"""One analysis of a revision of a service against its metrics, from its deploy on: the same
judgement automatic rollback makes (`bot.domain.analysis.verdict`), run once over what the
metrics source already holds (`rollback-bot analyze`).

How:
1. The revision (the deployed one by default) and its pods: its ReplicaSet's pod-template-hash;
   the deploy is when it went out (`History.went_out_of`); the baseline's pods are those of the
   revision it replaced (`versions.replaced`).
2. Each signal's template and the volume's are rendered for each side: the new pods and the old
   pods over `query_window` (one figure per interval), and the old pods over `window` at the
   deploy's instant (the service in the window before the deploy).
3. Range queries from the first interval's end (deploy + interval) every `interval`, up to the
   window's end plus the `consecutive` − 1 intervals a breach run still going may need, but never
   past now. Step k's evaluation is the figure of interval k.
4. Interval by interval: the baseline picked (`baseline.pick_baseline`: the old pods while they
   serve beside the new ones, else the window before the deploy), every signal judged
   (`checks.judge`), and the analysis fed (`Analysis.observe`) until it decides.

The metrics source failing (unreachable, an error answered) gives a NO_VERDICT report saying
so: missing data is never a verdict, and never a rollback. A window that has not passed yet,
without a confirmed breach, is NO_VERDICT too ("no verdict yet"): HEALTHY needs the whole window.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config.catalog import ServiceRef
from bot.domain.analysis.baseline import BaselineSource, Side, pick_baseline, samples
from bot.domain.analysis.checks import Check, judge, unanswered
from bot.domain.analysis.config import AutoRollbackConfig
from bot.domain.analysis.evidence import evidence
from bot.domain.analysis.queries import MAX_WINDOW_SECONDS, render_query
from bot.domain.analysis.report import Baseline, Points, Report, SignalReport
from bot.domain.analysis.series import Combine, Series, by_interval, total, worst
from bot.domain.analysis.signals import Signal, Volume
from bot.domain.analysis.verdict import Analysis, Tally, VerdictKind
from bot.domain.analysis.versions import pod_template_hash, replaced
from bot.domain.errors import MetricsUnavailable, RollbackBotError, RollbackRefused
from bot.domain.rollback.models import History, Revision, WorkloadKind
from bot.domain.times import format_duration, utc_now
from bot.usecases.analysis.ports import Clusters, Metrics, MetricsSources

# Prometheus refuses a range query of more than 11,000 points per series: longer analyses (a
# window of hours every second) are asked in pieces.
MAX_STEPS_PER_QUERY = 10_000
# Queries in flight at once to one metrics source: a service with many custom signals should
# not take a shared Prometheus' every query slot.
MAX_CONCURRENT_QUERIES = 4
_VOLUME = "\0volume"  # the volume's key among the signals' names (no signal name has a NUL)


class CannotAnalyze(RollbackBotError):
    """The revision cannot be analysed (no such revision, no pods to select, no metrics
    source): one sentence saying why."""


class UnknownRevision(CannotAnalyze):
    """`--revision N` names no revision the Deployment keeps: the command line's mistake."""

    exit_code = 2


class NoPrometheus(CannotAnalyze):
    """No Prometheus to ask: neither the service's `auto_rollback` block nor the bot's default
    names one."""

    exit_code = 2


@dataclass(frozen=True)
class _Rendered:
    """One template rendered for each side; None for a side there is no previous revision for."""

    new: str
    alongside: str | None
    before_deploy: str | None


@dataclass(frozen=True)
class _Subject:
    """What is analysed: the service, the revision and its pods, the baseline's, the deploy."""

    ref: ServiceRef
    config: AutoRollbackConfig
    url: str
    revision: Revision
    new_hash: str
    previous: Revision | None
    old_hash: str | None
    deployed_at: datetime
    signals: tuple[Signal, ...]
    volume: Volume
    queries: dict[str, _Rendered]  # by signal name, and the volume's under _VOLUME

    def step_time(self, step: int) -> datetime:
        return self.deployed_at + timedelta(seconds=step * self.config.interval)


@dataclass(frozen=True)
class _Figures:
    """What the metrics held: by key (signal name, or _VOLUME), each side's value per step, and
    the value of the window before the deploy."""

    new: dict[str, dict[int, float]]
    alongside: dict[str, dict[int, float]]
    before_deploy: dict[str, float]


class Analyzer:
    """Analyses a revision of a catalog service against its Prometheus.

    `default_prometheus_url`: the Prometheus of services whose `auto_rollback` block names none
    (ROLLBACK_BOT_PROMETHEUS_URL); a service without the block is analysed with the default
    signals against it, and refused without it."""

    def __init__(
        self,
        clusters: Clusters,
        sources: MetricsSources,
        *,
        default_prometheus_url: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._clusters = clusters
        self._sources = sources
        self._default_url = default_prometheus_url
        self._clock = clock

    def configuration(self, ref: ServiceRef) -> tuple[AutoRollbackConfig, str]:
        """The service's `auto_rollback` block (the defaults without one) and its Prometheus'
        URL; NoPrometheus when none is known. Only a Deployment is judged: the analysis tells
        its revisions' pods apart by their ReplicaSets' pod-template-hash."""
        if ref.kind is not WorkloadKind.DEPLOYMENT or ref.blue_green is not None:
            what = "a blue-green service" if ref.blue_green is not None else f"a {ref.kind}"
            raise RollbackRefused(
                f"{ref.name} is {what}: the analysis judges Deployments only (it tells a "
                "revision's pods by their ReplicaSet's pod-template-hash)"
            )
        block = ref.entry.auto_rollback if ref.entry is not None else None
        if block is None:
            if not self._default_url:
                raise NoPrometheus(
                    f"{ref.name} has no auto_rollback block in the service catalog, and no "
                    "Prometheus is known to analyse it with the default signals: give "
                    "--prometheus URL or set ROLLBACK_BOT_PROMETHEUS_URL"
                )
            block = AutoRollbackConfig()
        try:
            return block, block.prometheus_url(self._default_url)
        except ValueError as exc:
            raise NoPrometheus(f"{ref.name}: {exc} (or give --prometheus URL)") from None

    async def once(
        self,
        ref: ServiceRef,
        revision: int | None = None,
        *,
        history: History | None = None,
        as_of: datetime | None = None,
    ) -> Report:
        """Analyse `revision` (None: the deployed one) from its deploy up to now (or `as_of`),
        once. `history`: the Deployment's, when the caller has just read it."""
        config, url = self.configuration(ref)
        if history is None:
            cluster = self._clusters.cluster(ref.context)
            history = await cluster.history(ref.namespace, ref.deployment)
        subject = _subject(ref, config, url, history, revision)
        elapsed = ((as_of or self._clock()) - subject.deployed_at).total_seconds()
        limit = math.ceil(config.window / config.interval) + config.consecutive - 1
        steps = min(limit, max(0, math.floor(elapsed / config.interval)))
        if steps == 0:
            went_out = f"went out {format_duration(max(0.0, elapsed))} ago"
            return _unjudged(
                subject,
                f"no verdict yet: revision {subject.revision.number} {went_out}; the first "
                f"interval ends {format_duration(config.interval)} after the deploy",
            )
        metrics = self._sources.metrics(url, config.prometheus)
        try:
            figures = await _fetch(metrics, subject, steps)
        except MetricsUnavailable as exc:
            return _unjudged(subject, f"no verdict: {exc}", unavailable=str(exc))
        return _judged(subject, figures, steps)


def _subject(
    ref: ServiceRef,
    config: AutoRollbackConfig,
    url: str,
    history: History,
    number: int | None,
) -> _Subject:
    if number is None:
        revision = history.current
        if revision is None:
            raise CannotAnalyze(
                f"{ref.name} ({ref.qualified}) has no current revision to analyse: no "
                "ReplicaSet matches its pod template yet"
            )
    else:
        found = history.revision(number)
        if found is None:
            kept = ", ".join(str(r.number) for r in history.revisions) or "none"
            raise UnknownRevision(
                f"{ref.name} ({ref.qualified}) has no revision {number} (it keeps: {kept})"
            )
        revision = found
    new_hash = pod_template_hash(revision)
    if new_hash is None:
        raise CannotAnalyze(
            f"revision {revision.number} of {ref.qualified} (ReplicaSet {revision.replicaset}) "
            "has no pod-template-hash label to select its pods by"
        )
    deployed_at = history.went_out_of(revision)
    if deployed_at is None:
        raise CannotAnalyze(
            f"revision {revision.number} of {ref.qualified} has no creation time: when it went "
            "out is unknown"
        )
    previous = replaced(history, revision)
    old_hash = pod_template_hash(previous) if previous is not None else None
    signals = config.signal_specs()
    volume = config.volume_spec()
    templates = {signal.name: signal.query_template for signal in signals}
    templates[_VOLUME] = volume.query_template

    def render(template: str, pods: str | None, seconds: float) -> str | None:
        if pods is None:
            return None
        return render_query(
            template,
            namespace=ref.namespace,
            deployment=ref.deployment,
            pod_template_hash=pods,
            window_seconds=seconds,
        )

    try:
        queries = {
            key: _Rendered(
                new=render_query(
                    template,
                    namespace=ref.namespace,
                    deployment=ref.deployment,
                    pod_template_hash=new_hash,
                    window_seconds=config.query_window,
                ),
                alongside=render(template, old_hash, config.query_window),
                before_deploy=render(template, old_hash, config.window),
            )
            for key, template in templates.items()
        }
    except ValueError as exc:  # a label value from the cluster that is no hash, or no name
        raise CannotAnalyze(f"cannot query the metrics of {ref.qualified}: {exc}") from None
    return _Subject(
        ref,
        config,
        url,
        revision,
        new_hash,
        previous,
        old_hash,
        deployed_at,
        signals,
        volume,
        queries,
    )


class _Stop(Exception):
    """Ends the other queries once one found the metrics source unavailable."""


async def _fetch(metrics: Metrics, subject: _Subject, steps: int) -> _Figures:
    """Every query of every side, a few at a time. The first is asked alone: a source that
    cannot be asked fails it, and is not asked (nor its failure logged) once per query. After
    it, the first failure ends the other queries and is raised."""
    interval = subject.config.interval
    slots = asyncio.Semaphore(MAX_CONCURRENT_QUERIES)
    failures: list[MetricsUnavailable] = []

    async def asked(
        promql: str | None, first: int, last: int, combine: Combine
    ) -> dict[int, float]:
        if promql is None:
            return {}
        found: list[Series] = []
        try:
            for low in range(first, last + 1, MAX_STEPS_PER_QUERY):
                high = min(last, low + MAX_STEPS_PER_QUERY - 1)
                async with slots:
                    found.extend(
                        await metrics.query_range(
                            promql, subject.step_time(low), subject.step_time(high), interval
                        )
                    )
        except MetricsUnavailable as exc:
            failures.append(exc)
            raise _Stop from None
        return by_interval(
            found, start=subject.deployed_at, interval_seconds=interval, combine=combine
        )

    keys = list(subject.queries)
    combines = [total if key == _VOLUME else worst for key in keys]
    rendered = [subject.queries[key] for key in keys]
    jobs = [
        *((r.new, 1, steps, c) for r, c in zip(rendered, combines, strict=True)),
        *((r.alongside, 1, steps, c) for r, c in zip(rendered, combines, strict=True)),
        # The window before the deploy is one figure: step 0, the deploy's instant.
        *((r.before_deploy, 0, 0, c) for r, c in zip(rendered, combines, strict=True)),
    ]
    values: list[dict[int, float]] = []
    try:
        values.append(await asked(*jobs[0]))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(asked(*job)) for job in jobs[1:]]
    except* _Stop:
        raise failures[0] from None
    values.extend(task.result() for task in tasks)
    count = len(keys)
    new, alongside, before = values[:count], values[count : 2 * count], values[2 * count :]
    return _Figures(
        new=dict(zip(keys, new, strict=True)),
        alongside=dict(zip(keys, alongside, strict=True)),
        before_deploy={
            key: found[0] for key, found in zip(keys, before, strict=True) if 0 in found
        },
    )


def _side(figures: dict[str, dict[int, float]], step: int) -> Side:
    values = {key: by_step[step] for key, by_step in figures.items() if step in by_step}
    return Side({k: v for k, v in values.items() if k != _VOLUME}, values.get(_VOLUME))


def _judged(subject: _Subject, figures: _Figures, steps: int) -> Report:
    config = subject.config
    analysis = Analysis.start(config.window, config.interval, config.consecutive)
    before: Side | None = None
    if subject.old_hash is not None and figures.before_deploy:
        before = Side(
            {k: v for k, v in figures.before_deploy.items() if k != _VOLUME},
            figures.before_deploy.get(_VOLUME),
        )
    used = dict.fromkeys(BaselineSource, 0)
    notices: list[str] = []
    new_points: dict[str, list[tuple[float, float]]] = {s.name: [] for s in subject.signals}
    baseline_points: dict[str, list[tuple[float, float]]] = {s.name: [] for s in subject.signals}
    verdict = None
    step = 0
    for step in range(1, steps + 1):
        at = step * config.interval
        new = _side(figures.new, step)
        source, baseline = pick_baseline(_side(figures.alongside, step), before, subject.volume)
        used[source] += 1
        checks = tuple(
            judge(signal, sample, subject.volume)
            for signal, sample in zip(
                subject.signals, samples(subject.signals, new, baseline), strict=True
            )
        )
        for signal in subject.signals:
            new_points[signal.name].append((at, new.values.get(signal.name, math.nan)))
            baseline_points[signal.name].append((at, baseline.values.get(signal.name, math.nan)))
        analysis, verdict = analysis.observe(at, checks)
        notices.extend(analysis.notices)
        if verdict is not None:
            break
    analysed = step * config.interval
    if verdict is not None:
        kind, reason, deciding, at_seconds = (
            verdict.kind,
            verdict.reason,
            verdict.checks,
            verdict.at_seconds,
        )
    else:
        run = (
            f"; {analysis.run} breaching interval{'s' if analysis.run > 1 else ''} in a row so "
            f"far, {config.consecutive} confirm a breach"
            if analysis.run
            else ", no breach confirmed so far"
        )
        kind, deciding, at_seconds = VerdictKind.NO_VERDICT, analysis.last_checks, None
        reason = (
            f"no verdict yet: {format_duration(analysed)} of the "
            f"{format_duration(config.window)} window watched{run}"
        )
    by_name = {check.signal.name: check for check in deciding}
    reports = tuple(
        _signal_report(
            subject,
            by_name.get(signal.name) or unanswered(signal, "no interval judged"),
            analysed,
            tuple(new_points[signal.name]),
            tuple(baseline_points[signal.name]),
        )
        for signal in subject.signals
    )
    return _report(
        subject,
        kind,
        reason,
        reports,
        analysis.tally,
        analysed,
        baseline=_baseline(subject, used),
        notices=tuple(notices),
        at_seconds=at_seconds,
        first_breach_at=analysis.first_breach_at,
    )


def _unjudged(subject: _Subject, reason: str, *, unavailable: str | None = None) -> Report:
    """NO_VERDICT before any interval was judged: every signal unanswered, for `reason`."""
    why = unavailable or "no interval has ended yet"
    reports = tuple(
        _signal_report(subject, unanswered(signal, why), 0.0, (), ()) for signal in subject.signals
    )
    return _report(
        subject,
        VerdictKind.NO_VERDICT,
        reason,
        reports,
        Tally(),
        0.0,
        baseline=_baseline(subject, {}),
        unavailable=unavailable,
    )


def _baseline(subject: _Subject, used: dict[BaselineSource, int]) -> Baseline:
    return Baseline(
        revision=subject.previous.number if subject.previous is not None else None,
        pod_template_hash=subject.old_hash,
        alongside=used.get(BaselineSource.ALONGSIDE, 0),
        before_deploy=used.get(BaselineSource.BEFORE_DEPLOY, 0),
        missing=used.get(BaselineSource.NONE, 0),
    )


def _signal_report(
    subject: _Subject, check: Check, analysed: float, new: Points, baseline: Points
) -> SignalReport:
    rendered = subject.queries[check.signal.name]
    # Prometheus' graph page over what was analysed (at least the first interval), to its end.
    shown = min(MAX_WINDOW_SECONDS, max(1, math.ceil(max(analysed, subject.config.interval))))
    rule = check.signal.rule
    threshold = (
        max(rule.ratio * check.baseline, rule.absolute) if check.baseline is not None else None
    )
    return SignalReport(
        signal=check.signal,
        evidence=evidence(
            check,
            query=rendered.new,
            prometheus_url=subject.url,
            window_seconds=shown,
            end=subject.deployed_at + timedelta(seconds=shown),
        ),
        threshold=threshold,
        baseline_query=rendered.alongside,
        before_deploy_query=rendered.before_deploy,
        new_points=new,
        baseline_points=baseline,
    )


def _report(
    subject: _Subject,
    kind: VerdictKind,
    reason: str,
    signals: Sequence[SignalReport],
    tally: Tally,
    analysed: float,
    *,
    baseline: Baseline,
    notices: tuple[str, ...] = (),
    at_seconds: float | None = None,
    unavailable: str | None = None,
    first_breach_at: float | None = None,
) -> Report:
    config = subject.config
    return Report(
        service=subject.ref.name,
        namespace=subject.ref.namespace,
        deployment=subject.ref.deployment,
        revision=subject.revision.number,
        version=subject.revision.version,
        pod_template_hash=subject.new_hash,
        deployed_at=subject.deployed_at,
        prometheus_url=subject.url,
        window_seconds=config.window,
        interval_seconds=config.interval,
        consecutive=config.consecutive,
        analysed_seconds=analysed,
        verdict=kind,
        reason=reason,
        baseline=baseline,
        signals=tuple(signals),
        tally=tally,
        notices=notices,
        at_seconds=at_seconds,
        unavailable=unavailable,
        first_breach_at=first_breach_at,
    )
