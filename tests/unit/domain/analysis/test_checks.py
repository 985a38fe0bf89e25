"""One signal, one interval: the rule against the baseline, the floor against noise, the volume,
and everything Prometheus can answer that is not a figure."""

from __future__ import annotations

import math

import pytest

from bot.domain.analysis.checks import Outcome, Sample, judge, unanswered, usable
from bot.domain.analysis.presets import DEFAULT_VOLUME, ERROR_RATIO, P99_LATENCY, REQUEST_RATE
from bot.domain.analysis.queries import TemplateError
from bot.domain.analysis.signals import Rule, Signal, Volume

BUSY = 20.0  # requests per second, well above the minimum of 1
NO_MINIMUM = Volume(REQUEST_RATE, 0)


def errors(new: float | None, baseline: float | None) -> Sample:
    return Sample(new, baseline, new_volume=BUSY, baseline_volume=BUSY)


def test_clearly_worse_than_the_baseline_and_above_the_floor_breaches() -> None:
    check = judge(ERROR_RATIO, errors(0.052, 0.004), DEFAULT_VOLUME)
    assert check.outcome is Outcome.BREACH
    assert check.reason == (
        "error ratio breached: 5.2% is above 3× the baseline 0.4% (1.2%) and above the floor 1%"
    )
    assert (check.new, check.baseline, check.new_volume, check.baseline_volume) == (
        0.052,
        0.004,
        BUSY,
        BUSY,
    )


def test_noise_below_the_floor_passes_however_large_the_ratio() -> None:
    # 0.9 % is 90 times a baseline of 0.01 %, and still noise.
    check = judge(ERROR_RATIO, errors(0.009, 0.0001), DEFAULT_VOLUME)
    assert check.outcome is Outcome.PASS
    assert check.reason == "error ratio passed: 0.9% is not above the floor 1%"


def test_at_the_floor_exactly_is_not_above_it() -> None:
    assert judge(ERROR_RATIO, errors(0.01, 0.0), DEFAULT_VOLUME).outcome is Outcome.PASS


def test_above_the_floor_but_not_clearly_worse_than_before_passes() -> None:
    check = judge(ERROR_RATIO, errors(0.05, 0.02), DEFAULT_VOLUME)
    assert check.outcome is Outcome.PASS
    assert check.reason == "error ratio passed: 5% is not above 3× the baseline 2% (6%)"


def test_exactly_ratio_times_the_baseline_is_not_above_it() -> None:
    assert judge(ERROR_RATIO, errors(0.06, 0.02), DEFAULT_VOLUME).outcome is Outcome.PASS


def test_latency_is_judged_in_seconds() -> None:
    check = judge(P99_LATENCY, Sample(1.2, 0.4, BUSY, BUSY), DEFAULT_VOLUME)
    assert check.outcome is Outcome.BREACH
    assert check.reason == (
        "p99 latency breached: 1.2s is above 1.5× the baseline 0.4s (0.6s) and above the floor 0.3s"
    )
    fast = judge(P99_LATENCY, Sample(0.25, 0.05, BUSY, BUSY), DEFAULT_VOLUME)
    assert fast.outcome is Outcome.PASS  # five times slower, still under 300 ms


def test_a_baseline_of_zero_is_a_value_and_the_floor_decides() -> None:
    # No errors before: any errors now satisfy the ratio; only the floor keeps a trickle out.
    assert judge(ERROR_RATIO, errors(0.004, 0.0), DEFAULT_VOLUME).outcome is Outcome.PASS
    assert judge(ERROR_RATIO, errors(0.03, 0.0), DEFAULT_VOLUME).outcome is Outcome.BREACH


def test_a_missing_baseline_gives_no_verdict_however_bad_the_new_value() -> None:
    check = judge(ERROR_RATIO, errors(0.5, None), DEFAULT_VOLUME)
    assert check.outcome is Outcome.NO_DATA
    assert check.reason == "no verdict on error ratio: no baseline to compare with (no data)"
    assert check.new == 0.5 and check.baseline is None


def test_no_value_for_the_new_version_gives_no_verdict() -> None:
    check = judge(ERROR_RATIO, errors(None, 0.01), DEFAULT_VOLUME)
    assert check.outcome is Outcome.NO_DATA
    assert (
        check.reason == "no verdict on error ratio: no usable value for the new version (no data)"
    )


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (-0.02, "negative: -0.02"),
    ],
)
def test_nan_inf_and_negative_values_are_no_data(value: float, said: str) -> None:
    new_side = judge(ERROR_RATIO, errors(value, 0.001), DEFAULT_VOLUME)
    assert new_side.outcome is Outcome.NO_DATA
    assert new_side.reason.endswith(f"no usable value for the new version ({said})")
    assert new_side.new is None
    baseline_side = judge(ERROR_RATIO, errors(0.5, value), DEFAULT_VOLUME)
    assert baseline_side.outcome is Outcome.NO_DATA
    assert baseline_side.reason.endswith(f"no baseline to compare with ({said})")


def test_infinite_latency_never_breaches() -> None:
    # histogram_quantile's +Inf is not "infinitely slow": it is no answer.
    check = judge(P99_LATENCY, Sample(math.inf, 0.2, BUSY, BUSY), DEFAULT_VOLUME)
    assert check.outcome is Outcome.NO_DATA


@pytest.mark.parametrize(
    ("new_volume", "baseline_volume", "side", "rate"),
    [
        (0.2, BUSY, "the new version", "0.2 req/s"),
        (0.0, BUSY, "the new version", "0 req/s"),
        (BUSY, 0.5, "the baseline", "0.5 req/s"),
    ],
)
def test_either_side_under_the_minimum_volume_is_not_enough_traffic(
    new_volume: float, baseline_volume: float, side: str, rate: str
) -> None:
    check = judge(ERROR_RATIO, Sample(0.5, 0.001, new_volume, baseline_volume), DEFAULT_VOLUME)
    assert check.outcome is Outcome.LOW_VOLUME
    assert check.reason == (
        f"not enough traffic to judge error ratio: {side} served {rate}, "
        "under the minimum of 1 req/s"
    )


def test_an_idle_new_version_is_low_volume_even_when_its_ratio_is_nan() -> None:
    # 0/0 is what a version that served nothing answers: the traffic is the reason to give.
    check = judge(ERROR_RATIO, Sample(math.nan, 0.001, 0.0, BUSY), DEFAULT_VOLUME)
    assert check.outcome is Outcome.LOW_VOLUME


def test_exactly_the_minimum_volume_is_enough() -> None:
    check = judge(ERROR_RATIO, Sample(0.5, 0.001, 1.0, 1.0), DEFAULT_VOLUME)
    assert check.outcome is Outcome.BREACH


@pytest.mark.parametrize(
    ("new_volume", "baseline_volume", "said"),
    [
        (None, BUSY, "no request volume for the new version (no data)"),
        (BUSY, math.nan, "no request volume for the baseline (NaN)"),
    ],
)
def test_no_volume_figure_is_no_data(
    new_volume: float | None, baseline_volume: float | None, said: str
) -> None:
    check = judge(ERROR_RATIO, Sample(0.5, 0.001, new_volume, baseline_volume), DEFAULT_VOLUME)
    assert check.outcome is Outcome.NO_DATA
    assert check.reason == f"no verdict on error ratio: {said}"


def test_without_a_minimum_the_volume_is_not_consulted() -> None:
    check = judge(ERROR_RATIO, Sample(0.5, 0.001), NO_MINIMUM)
    assert check.outcome is Outcome.BREACH


def test_an_unanswered_query_is_no_data_with_the_reason_given() -> None:
    check = unanswered(ERROR_RATIO, "Prometheus did not answer within 5s")
    assert check.outcome is Outcome.NO_DATA
    assert check.reason == "no verdict on error ratio: Prometheus did not answer within 5s"
    assert check.new is None and check.baseline is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (math.nan, None), (math.inf, None), (-1e-9, None), (0.0, 0.0), (2.5, 2.5)],
)
def test_usable_values(value: float | None, expected: float | None) -> None:
    assert usable(value) == expected


@pytest.mark.parametrize(
    ("ratio", "absolute", "message"),
    [
        (1.0, 0.01, "ratio must be above 1"),
        (0.5, 0.01, "ratio must be above 1"),
        (math.nan, 0.01, "ratio must be above 1"),
        (3.0, -0.01, "floor must be 0 or more"),
        (3.0, math.inf, "floor must be 0 or more"),
    ],
)
def test_a_rule_that_would_call_noise_a_regression_is_refused(
    ratio: float, absolute: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Rule(ratio, absolute)


def test_a_signal_with_a_bad_template_cannot_be_made() -> None:
    with pytest.raises(TemplateError, match="unknown placeholder"):
        Signal("errors", 'up{job="a"}', Rule(2, 0), "ratio")
    with pytest.raises(ValueError, match="unit"):
        Signal("errors", "up", Rule(2, 0), "percent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="minimum request volume"):
        Volume(REQUEST_RATE, -1)
