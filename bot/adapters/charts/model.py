"""What a chart shows, as plain values: no plotting library here, so building a `Chart` (on the
event loop, in a use case's answer) costs nothing and imports nothing heavy."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Literal, get_args

# A signal sampled every 15 s over an 8-hour window is 1,920 points: a series longer than this is
# a caller's mistake, and would only make a render slower and a PNG no clearer.
MAX_POINTS = 2_000

# A step between two samples longer than this many times the usual step is a hole in the data
# (a scrape that failed, pods that were not there), drawn as a gap rather than bridged by a line.
GAP_FACTOR = 3.0

Unit = Literal["ratio", "seconds"]


@dataclass(frozen=True)
class ChartSeries:
    """One line: `points` are (seconds since the deploy, value); a NaN or infinite value is a
    gap."""

    label: str
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) > MAX_POINTS:
            raise ValueError(
                f"series {self.label[:40]!r} has {len(self.points)} points: at most {MAX_POINTS}"
            )


@dataclass(frozen=True)
class Chart:
    """One signal's picture: baseline and new over the window, the threshold the verdict used,
    and when the bot rolled back (both in the signal's unit and in seconds since the deploy)."""

    title: str
    unit: Unit
    baseline: ChartSeries
    new: ChartSeries
    threshold: float | None
    rolled_back_at: float | None
    verdict: str

    def __post_init__(self) -> None:
        if self.unit not in get_args(Unit):
            raise ValueError(f"unit {self.unit!r}: one of {', '.join(get_args(Unit))}")
        # A NaN threshold or moment cannot be drawn, and would mean the verdict had none either.
        for name, value in (("threshold", self.threshold), ("rolled_back_at", self.rolled_back_at)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} {value!r}: a finite number or None")


def gapped(series: ChartSeries) -> tuple[list[float], list[float]]:
    """The series as x (minutes since the deploy) and y, in time order, with a NaN wherever a
    line must break: at a NaN or infinite value, and in a hole in the sampling (a step longer
    than `GAP_FACTOR` times the median step). Points with no usable time are dropped."""
    points = sorted(
        (x, y if math.isfinite(y) else math.nan) for x, y in series.points if math.isfinite(x)
    )
    steps = [b[0] - a[0] for a, b in itertools.pairwise(points) if b[0] > a[0]]
    longest = GAP_FACTOR * statistics.median(steps) if steps else math.inf
    xs: list[float] = []
    ys: list[float] = []
    for i, (x, y) in enumerate(points):
        if i and x - points[i - 1][0] > longest:
            # Matplotlib breaks a line at a NaN: one in the middle of the hole.
            xs.append((x + points[i - 1][0]) / 2 / 60)
            ys.append(math.nan)
        xs.append(x / 60)
        ys.append(y)
    return xs, ys
