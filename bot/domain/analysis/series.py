"""What a metrics source answers, as plain values, and how the analysis reads it interval by
interval. Pure: the Prometheus adapter builds these, the analysis use case reads them.

The analysis asks one range query per signal and side, evaluated every `interval` from the
deploy on, so each point's time says which interval it belongs to (`by_interval`). A query that
gives several series at one instant is ambiguous (a template without an aggregation, a label
that splits the result): its values are combined per instant, by `worst` for a signal (higher is
worse, so the new version is judged at its worst and a baseline is never made to look worse
than its worst series) and by `total` for a request rate (rates of separate series add up).
Values stay as the source gave them (NaN and ±Inf included): `checks.usable` decides what can
be compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

# A point within this share of an interval from a step's time is that step's evaluation: the
# source may round its timestamps (Prometheus keeps milliseconds).
_STEP_TOLERANCE = 0.25


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range query, its points in time order as the source gave them."""

    labels: Mapping[str, str]
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class InstantSample:
    """One series' value at one instant: an instant vector's element, or a scalar (no labels)."""

    labels: Mapping[str, str]
    value: float
    at: datetime


Combine = Callable[[Sequence[float]], float]


def worst(values: Sequence[float]) -> float:
    """The highest usable value (NaN when none is a number): a signal's higher is worse."""
    numbers = [value for value in values if not math.isnan(value)]
    return max(numbers) if numbers else math.nan


def total(values: Sequence[float]) -> float:
    """The sum of the values that are numbers (NaN when none is): request rates add up."""
    numbers = [value for value in values if not math.isnan(value)]
    return math.fsum(numbers) if numbers else math.nan


def by_interval(
    series: Iterable[Series],
    *,
    start: datetime,
    interval_seconds: float,
    combine: Combine,
) -> dict[int, float]:
    """The value at each step k (the instant `start` + k × interval) the series have a point
    for, their several values at one step combined. Points off the steps are ignored."""
    found: dict[int, list[float]] = {}
    for one in series:
        for point in one.points:
            offset = (point.at - start).total_seconds() / interval_seconds
            step = round(offset)
            if step >= 0 and abs(offset - step) <= _STEP_TOLERANCE:
                found.setdefault(step, []).append(point.value)
    return {step: combine(values) for step, values in found.items()}
