"""A range query's series read interval by interval: each point to its step, several series at
one step combined (a signal at its worst, request rates added), off-step points ignored."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from bot.domain.analysis.series import Point, Series, by_interval, total, worst

START = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def series(*points: tuple[float, float]) -> Series:
    return Series({}, tuple(Point(at(s), v) for s, v in points))


def test_each_point_goes_to_its_step_and_off_step_points_are_ignored() -> None:
    found = by_interval(
        [series((10, 1.0), (20.001, 2.0), (25, 9.0), (-10, 7.0))],
        start=START,
        interval_seconds=10,
        combine=worst,
    )
    assert found == {1: 1.0, 2: 2.0}


def test_several_series_at_one_step_are_combined() -> None:
    two = [series((10, 0.2), (20, 0.1)), series((10, 0.5))]
    assert by_interval(two, start=START, interval_seconds=10, combine=worst) == {1: 0.5, 2: 0.1}
    assert by_interval(two, start=START, interval_seconds=10, combine=total) == {1: 0.7, 2: 0.1}


def test_nan_is_left_out_of_a_combination_unless_nothing_else_is_there() -> None:
    assert worst([math.nan, 0.2]) == 0.2
    assert total([math.nan, 0.2, 0.3]) == 0.5
    assert math.isnan(worst([math.nan]))
    assert math.isnan(total([]))
    # Infinity is a number here: `checks.usable` says it cannot be compared.
    assert worst([math.inf, 0.2]) == math.inf
