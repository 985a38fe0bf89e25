"""One interval's judgement of one signal: the new version against the baseline. Pure.

What Prometheus answered is taken as it comes (`Sample`) and cleaned here: no answer, NaN
(0/0 when nothing was served, `histogram_quantile` over empty buckets), ±Inf and negative
values (no rate, ratio or latency is below 0: a broken query) are all "no data", and no data
never counts against a version.

Order of the questions, so the reason given is the one a person can act on:
1. the request volume (when a minimum is set): a side below it is "not enough traffic to
   judge" (even when its value is missing: 0/0 is exactly what an idle version gives); a side
   with no volume figure at all is "no data" (Prometheus may simply not scrape it);
2. the new version's value, then the baseline's: missing is "no data";
3. the rule (`signals.Rule`): BREACH or PASS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.analysis.figures import format_rate, format_ratio, format_value
from bot.domain.analysis.signals import Signal, Volume


class Outcome(StrEnum):
    BREACH = "breach"
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    LOW_VOLUME = "low_volume"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class Sample:
    """What Prometheus answered for one signal in one interval; None where it answered nothing.

    The volumes are the request rates of each side (the same for every signal of an interval).
    """

    new: float | None
    baseline: float | None
    new_volume: float | None = None
    baseline_volume: float | None = None


@dataclass(frozen=True)
class Check:
    """A signal judged for one interval: the outcome, the usable figures and one sentence."""

    signal: Signal
    outcome: Outcome
    reason: str
    new: float | None = None
    baseline: float | None = None
    new_volume: float | None = None
    baseline_volume: float | None = None


def usable(value: float | None) -> float | None:
    """The value when it can be compared; None for no answer, NaN, ±Inf or below 0."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


def _what_came(value: float | None) -> str:
    if value is None:
        return "no data"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"negative: {value:g}"


def unanswered(signal: Signal, why: str) -> Check:
    """NO_DATA for a signal Prometheus could not be asked about (unreachable, an error)."""
    return Check(signal, Outcome.NO_DATA, f"no verdict on {signal.name}: {why}")


def judge(signal: Signal, sample: Sample, volume: Volume) -> Check:
    """The outcome of one signal in one interval, with the figures and the reason."""
    new, baseline = usable(sample.new), usable(sample.baseline)
    new_volume, baseline_volume = usable(sample.new_volume), usable(sample.baseline_volume)

    def check(outcome: Outcome, reason: str) -> Check:
        return Check(signal, outcome, reason, new, baseline, new_volume, baseline_volume)

    if volume.required:
        sides = (("the new version", sample.new_volume), ("the baseline", sample.baseline_volume))
        for side, raw in sides:
            rate = usable(raw)
            if rate is not None and rate < volume.minimum_per_second:
                return check(
                    Outcome.LOW_VOLUME,
                    f"not enough traffic to judge {signal.name}: {side} served "
                    f"{format_rate(rate)}, under the minimum of "
                    f"{format_rate(volume.minimum_per_second)}",
                )
        for side, raw in sides:
            if usable(raw) is None:
                return check(
                    Outcome.NO_DATA,
                    f"no verdict on {signal.name}: no request volume for {side} "
                    f"({_what_came(raw)})",
                )
    if new is None:
        return check(
            Outcome.NO_DATA,
            f"no verdict on {signal.name}: no usable value for the new version "
            f"({_what_came(sample.new)})",
        )
    if baseline is None:
        return check(
            Outcome.NO_DATA,
            f"no verdict on {signal.name}: no baseline to compare with "
            f"({_what_came(sample.baseline)})",
        )
    rule, unit = signal.rule, signal.unit
    shown_new = format_value(new, unit)
    times_baseline = (
        f"{format_ratio(rule.ratio)} the baseline {format_value(baseline, unit)} "
        f"({format_value(rule.ratio * baseline, unit)})"
    )
    floor = f"the floor {format_value(rule.absolute, unit)}"
    if rule.breached(new, baseline):
        return check(
            Outcome.BREACH,
            f"{signal.name} breached: {shown_new} is above {times_baseline} and above {floor}",
        )
    if new <= rule.absolute:
        return check(Outcome.PASS, f"{signal.name} passed: {shown_new} is not above {floor}")
    return check(Outcome.PASS, f"{signal.name} passed: {shown_new} is not above {times_baseline}")
