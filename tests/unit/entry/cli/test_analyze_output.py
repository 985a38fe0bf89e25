"""`rollback-bot analyze`'s output: the table for people (outside text made plain), JSON for
scripts (exact values, no NaN), the chart of the deciding signal, and the exit codes."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime

import pytest
from rich.console import Console

from bot.__main__ import build_parser
from bot.adapters.charts import chart_of
from bot.domain.analysis.checks import Sample, judge
from bot.domain.analysis.evidence import evidence
from bot.domain.analysis.presets import DEFAULT_VOLUME, ERROR_RATIO, P99_LATENCY
from bot.domain.analysis.report import Baseline, Report, SignalReport
from bot.domain.analysis.verdict import Tally, VerdictKind
from bot.entry.cli.analyze import EXIT_CODES, report_json, show_report

DEPLOYED = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
HOSTILE_VERSION = "1.1\x1b[2J[bold]x[/bold]"


def report(kind: VerdictKind = VerdictKind.BREACH) -> Report:
    items = []
    for signal, new in ((ERROR_RATIO, 0.2), (P99_LATENCY, 0.1)):
        check = judge(
            signal, Sample(new, 0.005 if signal is ERROR_RATIO else 0.1, 50, 50), DEFAULT_VOLUME
        )
        items.append(
            SignalReport(
                signal=signal,
                evidence=evidence(
                    check,
                    query=f'q{{hash="new"}} {signal.name}',
                    prometheus_url="http://prometheus:9090",
                    window_seconds=20,
                ),
                threshold=0.015 if signal is ERROR_RATIO else 0.3,
                baseline_query="old query",
                before_deploy_query="before query",
                new_points=((2.0, math.nan), (4.0, new)),
                baseline_points=((2.0, 0.005), (4.0, 0.005)),
            )
        )
    return Report(
        service="payments",
        namespace="shop",
        deployment="payments",
        revision=2,
        version=HOSTILE_VERSION,
        pod_template_hash="new222",
        deployed_at=DEPLOYED,
        prometheus_url="http://prometheus:9090",
        window_seconds=20,
        interval_seconds=2,
        consecutive=2,
        analysed_seconds=4,
        verdict=kind,
        reason="breach confirmed: 2 intervals in a row breached",
        baseline=Baseline(1, "old111", alongside=2),
        signals=tuple(items),
        tally=Tally(breach=2),
        at_seconds=4,
    )


def test_the_table_shows_the_evidence_with_outside_text_made_plain() -> None:
    out = io.StringIO()
    show_report(Console(file=out, width=200, highlight=False, emoji=False), report())
    text = out.getvalue()
    assert "revision 2 (1.1^[[2J[bold]x[/bold])" in text  # literal: no escape, no markup
    assert "\x1b" not in text
    assert "│ error ratio │ 0.5%     │ 20%  │ new > 3× baseline and > 1%" in text
    assert "BREACH  breach confirmed" in text
    assert "  graph     http://prometheus:9090/graph?g0.expr=" in text
    assert "its pods running alongside for 2 intervals" in text


def test_json_gives_the_values_exactly_and_no_nan() -> None:
    data = json.loads(json.dumps(report_json(report())))
    assert data["version"] == HOSTILE_VERSION
    assert (data["verdict"], data["exitCode"]) == ("breach", 4)
    errors = data["signals"][0]
    assert errors["points"][0] == {"atSeconds": 2.0, "new": None, "baseline": 0.005}
    assert (errors["baseline"], errors["new"], errors["outcome"]) == ("0.5%", "20%", "breach")


def test_the_chart_is_of_the_signal_that_breached() -> None:
    chart = chart_of(report())
    assert chart.title.startswith("payments revision 2")
    assert "error ratio" in chart.title
    assert chart.threshold == 0.015
    assert chart.rolled_back_at is None


def test_exit_codes_are_the_verdicts() -> None:
    assert EXIT_CODES == {
        VerdictKind.HEALTHY: 0,
        VerdictKind.BREACH: 4,
        VerdictKind.NO_VERDICT: 3,
    }


def test_the_command_line() -> None:
    args = build_parser().parse_args(
        ["analyze", "payments", "--revision", "3", "--chart", "out.png", "-o", "json"]
    )
    assert (args.service, args.revision, str(args.chart), args.output) == (
        "payments",
        3,
        "out.png",
        "json",
    )


@pytest.mark.parametrize(
    "argv", [["--revision", "0"], ["--revision", "x"], ["--prometheus", "ftp://p"]]
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["analyze", "payments", *argv])
    assert caught.value.code == 2


def test_a_prometheus_url_with_a_password_is_refused_without_repeating_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["analyze", "payments", "--prometheus", "https://u:hunter2@p"])
    error = capsys.readouterr().err
    assert "must not hold a user or password" in error
    assert "hunter2" not in error
