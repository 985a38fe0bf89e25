"""What a person reads for each signal: the figures, the rule in words, the PromQL and the link."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.domain.analysis.checks import Outcome, Sample, judge, unanswered
from bot.domain.analysis.evidence import evidence
from bot.domain.analysis.figures import (
    describe_rule,
    format_percent,
    format_rate,
    format_value,
)
from bot.domain.analysis.presets import DEFAULT_VOLUME, ERROR_RATIO, P99_LATENCY
from bot.domain.analysis.queries import render_query
from bot.domain.analysis.signals import Rule

PROMETHEUS = "https://prometheus.example:9090"


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (0.0, "0%"),
        (0.01, "1%"),
        (0.052, "5.2%"),
        (0.004, "0.4%"),
        (0.00012, "0.012%"),
        (0.4567, "45.7%"),
        (0.9996, "100%"),
        (1.0, "100%"),
        (12.5, "1250%"),
        (0.000001, "<0.001%"),
    ],
)
def test_ratios_read_as_percentages(ratio: float, text: str) -> None:
    assert format_percent(ratio) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0.0, "0 req/s"), (0.25, "0.25 req/s"), (12, "12 req/s"), (1234.5, "1234 req/s")],
)
def test_request_rates(rate: float, text: str) -> None:
    assert format_rate(rate) == text


def test_seconds_go_through_the_bots_duration_formatter() -> None:
    assert format_value(1.2, "seconds") == "1.2s"
    assert format_value(95, "seconds") == "1m35s"


@pytest.mark.parametrize(
    ("rule", "unit", "words"),
    [
        (Rule(3, 0.01), "ratio", "new > 3× baseline and > 1%"),
        (Rule(1.5, 0.3), "seconds", "new > 1.5× baseline and > 0.3s"),
        (Rule(2, 0), "ratio", "new > 2× baseline and > 0%"),
    ],
)
def test_the_rule_in_words(rule: Rule, unit: str, words: str) -> None:
    assert describe_rule(rule, unit) == words  # type: ignore[arg-type]


def test_a_breach_shows_baseline_against_new_the_rule_the_query_and_its_graph() -> None:
    query = render_query(
        ERROR_RATIO.query_template,
        namespace="shop",
        deployment="checkout",
        pod_template_hash="5d8f7c9b4",
        window_seconds=60,
    )
    check = judge(ERROR_RATIO, Sample(0.052, 0.004, 20, 20), DEFAULT_VOLUME)
    end = datetime(2026, 11, 27, 4, 10, tzinfo=UTC)
    shown = evidence(check, query=query, prometheus_url=PROMETHEUS, window_seconds=600, end=end)
    assert (shown.signal, shown.outcome) == ("error ratio", Outcome.BREACH)
    assert (shown.baseline, shown.new) == ("0.4%", "5.2%")
    assert shown.rule == "new > 3× baseline and > 1%"
    assert shown.reason == check.reason
    assert shown.query == query
    link = urlsplit(shown.link)
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{PROMETHEUS}/graph"
    assert parse_qs(link.query) == {
        "g0.expr": [query],
        "g0.tab": ["0"],
        "g0.range_input": ["10m"],
        "g0.end_input": ["2026-11-27 04:10:00"],
    }


def test_latency_evidence_is_in_seconds() -> None:
    check = judge(P99_LATENCY, Sample(1.2, 0.4, 20, 20), DEFAULT_VOLUME)
    shown = evidence(check, query="q", prometheus_url=PROMETHEUS, window_seconds=600)
    assert (shown.baseline, shown.new, shown.rule) == (
        "0.4s",
        "1.2s",
        "new > 1.5× baseline and > 0.3s",
    )


def test_missing_figures_say_no_data() -> None:
    check = judge(ERROR_RATIO, Sample(math.nan, None, 20, 20), DEFAULT_VOLUME)
    shown = evidence(check, query="q", prometheus_url=PROMETHEUS, window_seconds=600)
    assert (shown.baseline, shown.new, shown.outcome) == ("no data", "no data", Outcome.NO_DATA)
    shown = evidence(
        unanswered(ERROR_RATIO, "timeout"), query="q", prometheus_url=PROMETHEUS, window_seconds=60
    )
    assert (shown.baseline, shown.new) == ("no data", "no data")
