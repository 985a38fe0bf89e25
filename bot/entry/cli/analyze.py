"""`rollback-bot analyze SERVICE`: automatic rollback's analysis of a revision, run once, shown
as a table (or JSON), optionally drawn as a chart; the exit code is the verdict.

Wiring and rendering only: the analysis is `bot.usecases.analysis.analyze.Analyzer`. What came
from outside (the catalog's signal names and queries, values from the cluster, Prometheus'
errors) is shown through `text.plain` as `Text`, never as markup; `-o json` gives it exactly.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bot.config.catalog import Catalog, ServiceRef
from bot.domain.analysis.checks import Outcome
from bot.domain.analysis.report import Report, SignalReport
from bot.domain.analysis.verdict import VerdictKind
from bot.domain.errors import ConfigError, RollbackBotError, UnknownService
from bot.domain.times import format_duration, kube_time
from bot.entry.cli.commands import UsageError, plain_console
from bot.entry.cli.text import plain
from bot.usecases.analysis.analyze import Analyzer
from bot.usecases.analysis.ports import Clusters

if TYPE_CHECKING:
    from rich.console import Console


EXIT_HEALTHY: Final = 0
EXIT_NO_VERDICT: Final = 3
EXIT_BREACH: Final = 4
EXIT_CODES: Final = {
    VerdictKind.HEALTHY: EXIT_HEALTHY,
    VerdictKind.BREACH: EXIT_BREACH,
    VerdictKind.NO_VERDICT: EXIT_NO_VERDICT,
}
_OUTCOME_STYLE: Final = {
    Outcome.BREACH: "red",
    Outcome.PASS: "green",
    Outcome.LOW_VOLUME: "yellow",
    Outcome.NO_DATA: "yellow",
}
_VERDICT_STYLE: Final = {
    VerdictKind.BREACH: "bold red",
    VerdictKind.HEALTHY: "bold green",
    VerdictKind.NO_VERDICT: "bold yellow",
}


async def run_analyze(
    catalog: Catalog,
    clusters: Clusters,
    *,
    service: str,
    revision: int | None,
    output: str,
    chart: Path | None,
    prometheus_url: str | None,
) -> int:
    """Analyse SERVICE's revision once: print the report, draw the chart if asked, and exit
    0 healthy, 4 breach, 3 no verdict."""
    ref = _resolve(catalog, service)
    from bot.adapters.prometheus import PrometheusClients  # aiohttp only when asked

    sources = PrometheusClients()
    try:
        analyzer = Analyzer(clusters, sources, default_prometheus_url=prometheus_url)
        report = await analyzer.once(ref, revision)
    finally:
        await sources.close()
    if output == "json":
        data = report_json(report)
        if chart is not None:
            data["chart"] = str(chart)
        print(json.dumps(data, indent=2))
    else:
        show_report(plain_console(), report, chart)
    if chart is not None:
        await write_chart(report, chart)
    return EXIT_CODES[report.verdict]


def _resolve(catalog: Catalog, service: str) -> ServiceRef:
    try:
        return catalog.resolve(service)
    except (UnknownService, ConfigError) as exc:  # about the SERVICE argument, not a file
        raise UsageError(str(exc)) from None


# -- for people ------------------------------------------------------------------------------


def show_report(console: Console, report: Report, chart: Path | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    def say(*parts: str | tuple[str, str]) -> None:
        console.print(Text.assemble(*parts))

    say(
        (plain(report.service), "bold"),
        f" ({plain(report.namespace)}/{plain(report.deployment)}) revision {report.revision} "
        f"({plain(report.version)}), pod-template-hash {plain(report.pod_template_hash)}, "
        f"went out {kube_time(report.deployed_at)}",
    )
    say(f"  baseline   {plain(report.baseline.description)}")
    say(
        f"  analysed   {format_duration(report.analysed_seconds)} of the "
        f"{format_duration(report.window_seconds)} window, every "
        f"{format_duration(report.interval_seconds)}; {report.consecutive} breaching "
        f"interval{'s' if report.consecutive > 1 else ''} in a row confirm a breach"
    )
    say(f"  prometheus {plain(report.prometheus_url)}")
    table = Table(show_lines=False)
    for name in ("signal", "baseline", "new", "rule", "outcome"):
        table.add_column(name)
    for item in report.signals:
        shown = item.evidence
        table.add_row(
            Text(plain(shown.signal)),
            Text(plain(shown.baseline)),
            Text(plain(shown.new)),
            Text(plain(shown.rule)),
            Text(_outcome_text(shown.outcome), style=_OUTCOME_STYLE[shown.outcome]),
        )
    console.print(table)
    say(
        (_verdict_text(report.verdict), _VERDICT_STYLE[report.verdict]), f"  {plain(report.reason)}"
    )
    for item in report.signals:
        say(f"  {plain(item.evidence.reason)}")
    for notice in report.notices:
        say(("  note", "yellow"), f"  {plain(notice)}")
    for item in report.signals:
        # Whole, and never wrapped by the console: they are copied and clicked.
        console.print(Text(f"{plain(item.evidence.signal)}:"))
        console.print(Text(f"  new       {plain(item.evidence.query, None)}"), soft_wrap=True)
        if item.baseline_query:
            console.print(Text(f"  baseline  {plain(item.baseline_query, None)}"), soft_wrap=True)
        if item.before_deploy_query:
            console.print(
                Text(f"  before    {plain(item.before_deploy_query, None)}"), soft_wrap=True
            )
        console.print(Text(f"  graph     {plain(item.evidence.link, None)}"), soft_wrap=True)
    if chart is not None:
        say(f"chart: {plain(str(chart))}")


def _outcome_text(outcome: Outcome) -> str:
    return {
        Outcome.BREACH: "breach",
        Outcome.PASS: "pass",
        Outcome.LOW_VOLUME: "not enough traffic",
        Outcome.NO_DATA: "no data",
    }[outcome]


def _verdict_text(kind: VerdictKind) -> str:
    return {
        VerdictKind.BREACH: "BREACH",
        VerdictKind.HEALTHY: "HEALTHY",
        VerdictKind.NO_VERDICT: "NO VERDICT",
    }[kind]


# -- for scripts -----------------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    """JSON has no NaN or Infinity: a figure that is not a number is null."""
    return value if value is not None and math.isfinite(value) else None


def report_json(report: Report) -> dict[str, Any]:
    return {
        "service": report.service,
        "namespace": report.namespace,
        "deployment": report.deployment,
        "revision": report.revision,
        "version": report.version,
        "podTemplateHash": report.pod_template_hash,
        "deployedAt": kube_time(report.deployed_at),
        "prometheus": report.prometheus_url,
        "windowSeconds": report.window_seconds,
        "intervalSeconds": report.interval_seconds,
        "consecutive": report.consecutive,
        "analysedSeconds": report.analysed_seconds,
        "verdict": str(report.verdict),
        "reason": report.reason,
        "decidedAtSeconds": report.at_seconds,
        "unavailable": report.unavailable,
        "exitCode": EXIT_CODES[report.verdict],
        "baseline": {
            "revision": report.baseline.revision,
            "podTemplateHash": report.baseline.pod_template_hash,
            "alongsideIntervals": report.baseline.alongside,
            "beforeDeployIntervals": report.baseline.before_deploy,
            "missingIntervals": report.baseline.missing,
            "description": report.baseline.description,
        },
        "intervals": {
            "breach": report.tally.breach,
            "pass": report.tally.passed,
            "lowVolume": report.tally.low_volume,
            "noData": report.tally.no_data,
        },
        "signals": [_signal_json(item) for item in report.signals],
        "notices": list(report.notices),
    }


def _signal_json(item: SignalReport) -> dict[str, Any]:
    shown = item.evidence
    rule = item.signal.rule
    return {
        "name": shown.signal,
        "unit": item.signal.unit,
        "outcome": str(shown.outcome),
        "baseline": shown.baseline,
        "new": shown.new,
        "rule": shown.rule,
        "ratio": rule.ratio,
        "absolute": rule.absolute,
        "threshold": _number(item.threshold),
        "reason": shown.reason,
        "query": shown.query,
        "baselineQuery": item.baseline_query,
        "beforeDeployQuery": item.before_deploy_query,
        "link": shown.link,
        "points": [
            {"atSeconds": at, "new": _number(new), "baseline": _number(base)}
            for (at, new), (_, base) in zip(item.new_points, item.baseline_points, strict=True)
        ],
    }


# -- the chart -------------------------------------------------------------------------------


async def write_chart(report: Report, path: Path) -> None:
    from bot.adapters.charts import report_png

    png = await report_png(report)
    try:
        await asyncio.to_thread(path.write_bytes, png)
    except OSError as exc:
        raise RollbackBotError(
            f"the chart could not be written to {path}: {exc.strerror or type(exc).__name__}"
        ) from None
