"""The analysis' figures in words: a signal's value in its unit, a request rate, a rule.

Seconds go through `bot.domain.times.format_duration`, the bot's one duration formatter;
percentages and request rates are plain numbers, with three significant digits here.
"""

from __future__ import annotations

import math

from bot.domain.analysis.signals import Rule, Unit
from bot.domain.times import format_duration


def _significant(number: float) -> str:
    """Three significant digits, no exponent, no trailing zeros: 5.2, 0.012, 45.7, 1250."""
    if number == 0:
        return "0"
    if number >= 100:
        return f"{number:.0f}"
    digits = max(0, 2 - math.floor(math.log10(number)))
    return f"{number:.{digits}f}".rstrip("0").rstrip(".")


def format_percent(ratio: float) -> str:
    """A ratio (0.052) as a percentage ("5.2%"); anything under 0.001 % says so."""
    percent = ratio * 100
    if 0 < percent < 0.001:
        return "<0.001%"
    return f"{_significant(percent)}%"


def format_value(value: float, unit: Unit) -> str:
    """A signal's value in its unit: "5.2%" for a ratio, "1.2s" for seconds."""
    return format_percent(value) if unit == "ratio" else format_duration(value)


def format_rate(per_second: float) -> str:
    """Requests per second: "12 req/s", "0.25 req/s"."""
    if 0 < per_second < 0.001:
        return "<0.001 req/s"
    return f"{_significant(per_second)} req/s"


def format_ratio(ratio: float) -> str:
    """A rule's multiplier: "3×", "1.5×"."""
    return f"{_significant(ratio)}×"


def describe_rule(rule: Rule, unit: Unit) -> str:
    """The rule in words: "new > 3× baseline and > 1%"."""
    return f"new > {format_ratio(rule.ratio)} baseline and > {format_value(rule.absolute, unit)}"
