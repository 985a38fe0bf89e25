"""What a check shows a person: baseline against new, the rule, the PromQL and a link to see it
in Prometheus. Pure; the Slack adapter lays it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.analysis.checks import Check, Outcome
from bot.domain.analysis.figures import describe_rule, format_value
from bot.domain.analysis.links import graph_link

NO_FIGURE = "no data"


@dataclass(frozen=True)
class Evidence:
    """One signal's evidence, every field ready to show."""

    signal: str
    outcome: Outcome
    baseline: str  # "0.4%", "no data"
    new: str  # "5.2%"
    rule: str  # "new > 3× baseline and > 1%"
    reason: str  # the check's sentence
    query: str  # the new version's PromQL, as sent
    link: str  # Prometheus' graph page of that query


def evidence(
    check: Check,
    *,
    query: str,
    prometheus_url: str,
    window_seconds: float,
    end: datetime | None = None,
) -> Evidence:
    """`check` in words; `query` is the new version's rendered PromQL, drawn over the window."""
    unit = check.signal.unit

    def figure(value: float | None) -> str:
        return NO_FIGURE if value is None else format_value(value, unit)

    return Evidence(
        signal=check.signal.name,
        outcome=check.outcome,
        baseline=figure(check.baseline),
        new=figure(check.new),
        rule=describe_rule(check.signal.rule, unit),
        reason=check.reason,
        query=query,
        link=graph_link(prometheus_url, query, window_seconds, end=end),
    )
