"""The baseline of an interval: the previous revision's pods while they serve beside the new
ones, else the window before the deploy, else none."""

from __future__ import annotations

import math

from bot.domain.analysis.baseline import BaselineSource, Side, pick_baseline, samples, served
from bot.domain.analysis.checks import Sample
from bot.domain.analysis.presets import DEFAULT_VOLUME, ERROR_RATIO, P99_LATENCY
from bot.domain.analysis.signals import Volume

BEFORE = Side({"error ratio": 0.004}, 40.0)
NO_MINIMUM = Volume(DEFAULT_VOLUME.query_template, 0.0)


def test_old_pods_serving_beside_the_new_ones_are_the_baseline() -> None:
    alongside = Side({"error ratio": 0.005}, 12.0)
    assert pick_baseline(alongside, BEFORE, DEFAULT_VOLUME) == (
        BaselineSource.ALONGSIDE,
        alongside,
    )


def test_old_pods_gone_idle_or_a_trickle_hand_over_to_the_window_before_the_deploy() -> None:
    for volume in (None, 0.0, 0.5, math.nan):
        alongside = Side({"error ratio": 0.005}, volume)
        assert pick_baseline(alongside, BEFORE, DEFAULT_VOLUME) == (
            BaselineSource.BEFORE_DEPLOY,
            BEFORE,
        )


def test_neither_is_no_baseline() -> None:
    assert pick_baseline(Side(), None, DEFAULT_VOLUME) == (BaselineSource.NONE, Side())


def test_without_a_minimum_or_a_request_rate_any_value_says_the_old_pods_run() -> None:
    assert served(Side({"error ratio": 0.005}), NO_MINIMUM)
    assert not served(Side({"error ratio": math.nan}), NO_MINIMUM)
    assert not served(Side({"error ratio": 0.005}), DEFAULT_VOLUME)
    assert served(Side({}, 0.2), NO_MINIMUM)
    assert not served(Side({}, 0.0), NO_MINIMUM)


def test_samples_pair_each_signal_with_both_sides_and_their_volumes() -> None:
    new = Side({"error ratio": 0.2}, 30.0)
    assert samples((ERROR_RATIO, P99_LATENCY), new, BEFORE) == (
        Sample(new=0.2, baseline=0.004, new_volume=30.0, baseline_volume=40.0),
        Sample(new=None, baseline=None, new_volume=30.0, baseline_volume=40.0),
    )
