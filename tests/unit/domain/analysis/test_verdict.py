"""The verdict over recorded series: a 10-minute window of 30-second intervals, fed interval by
interval as the use case will, with the figures Prometheus could have answered."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from bot.domain.analysis.checks import Check, Outcome, Sample, judge, unanswered
from bot.domain.analysis.presets import DEFAULT_VOLUME, ERROR_RATIO, P99_LATENCY
from bot.domain.analysis.signals import Signal
from bot.domain.analysis.verdict import Analysis, Verdict, VerdictKind, interval_outcome

INTERVAL = 30.0
WINDOW = 600.0  # 20 intervals
BUSY = 20.0
BASELINE = 0.004  # 0.4 % errors before the deploy
BAD = 0.06  # 6 %: over 3× the baseline and over the 1 % floor
OK = 0.005


def errors(new: float | None, baseline: float | None = BASELINE, volume: float = BUSY) -> Sample:
    return Sample(new, baseline, new_volume=volume, baseline_volume=BUSY)


UNREACHABLE = "unreachable"  # an interval where Prometheus did not answer


@dataclass
class Run:
    verdict: Verdict | None
    intervals: int  # how many were observed, up to the verdict
    notices: list[str]
    analysis: Analysis


def replay(
    series: Sequence[Sample | str | dict[Signal, Sample]],
    *,
    consecutive: int = 3,
    window: float = WINDOW,
) -> Run:
    """Feeds one interval after another (error ratio alone unless a dict says otherwise) and
    stops at the verdict, as the use case does."""
    analysis = Analysis.start(window, INTERVAL, consecutive)
    notices: list[str] = []
    for number, recorded in enumerate(series, start=1):
        checks: tuple[Check, ...]
        if isinstance(recorded, str):
            checks = (unanswered(ERROR_RATIO, "Prometheus did not answer (connection refused)"),)
        elif isinstance(recorded, dict):
            checks = tuple(judge(s, sample, DEFAULT_VOLUME) for s, sample in recorded.items())
        else:
            checks = (judge(ERROR_RATIO, recorded, DEFAULT_VOLUME),)
        analysis, verdict = analysis.observe(number * INTERVAL, checks)
        notices += analysis.notices
        if verdict is not None:
            return Run(verdict, number, notices, analysis)
    return Run(None, len(series), notices, analysis)


def test_a_breach_is_confirmed_by_three_breaching_intervals_in_a_row() -> None:
    series = [errors(v) for v in (0.004, 0.005, 0.003, 0.004, BAD, 0.07, 0.065, 0.08, 0.07)]
    run = replay(series)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.BREACH
    assert run.intervals == 7  # intervals 5, 6 and 7
    assert run.verdict.at_seconds == 210
    assert run.verdict.first_breach_at == 150
    assert run.verdict.run_started_at == 150
    assert run.verdict.reason == (
        "breach confirmed: 3 intervals in a row breached, from 2m30s to 3m30s into the analysis"
    )
    assert [c.outcome for c in run.verdict.checks] == [Outcome.BREACH]
    assert run.verdict.checks[0].new == 0.065
    assert run.analysis.verdict == run.verdict


def test_noise_below_the_floor_is_healthy() -> None:
    # Up to 90 times a tiny baseline, never above 1 %: noise, for 20 intervals.
    noise = [0.002, 0.009, 0.004, 0.008, 0.0, 0.006, 0.009, 0.003, 0.007, 0.005] * 2
    run = replay([errors(v, baseline=0.0001) for v in noise])
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.intervals == 20
    assert run.verdict.tally.breach == 0
    assert (
        run.verdict.reason
        == "healthy: no breach confirmed in 10 minutes, 20 of 20 intervals judged"
    )


def test_low_volume_gives_no_verdict_and_says_so_once() -> None:
    run = replay([errors(0.5, volume=0.3) for _ in range(20)])
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.NO_VERDICT
    assert run.verdict.why is Outcome.LOW_VOLUME
    assert run.verdict.reason.startswith("no verdict: not enough traffic to judge in 10 minutes")
    assert run.notices == [
        "not enough traffic to judge error ratio: the new version served 0.3 req/s, "
        "under the minimum of 1 req/s"
    ]


def test_flapping_never_confirms() -> None:
    run = replay([errors(BAD if i % 2 == 0 else OK) for i in range(20)])
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.verdict.tally.breach == 10
    assert run.verdict.first_breach_at == 30
    assert run.verdict.reason.endswith("; 10 breaching intervals did not repeat 3 times in a row")


def test_flapping_in_pairs_never_confirms_three_in_a_row() -> None:
    run = replay([errors(OK if i % 3 == 2 else BAD) for i in range(21)])
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    # Two breaches at the window's end were followed one more interval, which passed.
    assert run.verdict.at_seconds == 630


def test_a_single_spike_never_confirms() -> None:
    series = [errors(OK)] * 8 + [errors(0.4)] + [errors(OK)] * 11
    run = replay(series)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.verdict.first_breach_at == 270


@pytest.mark.parametrize("consecutive", [2, 3, 5])
def test_a_single_spike_never_confirms_whatever_n_above_one(consecutive: int) -> None:
    series = [errors(OK)] * 8 + [errors(0.4)] + [errors(OK)] * 11
    run = replay(series, consecutive=consecutive)
    assert run.verdict is not None and run.verdict.kind is VerdictKind.HEALTHY


def test_with_consecutive_1_a_single_spike_is_a_breach() -> None:
    series = [errors(OK)] * 8 + [errors(0.4)] + [errors(OK)] * 11
    run = replay(series, consecutive=1)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.BREACH
    assert run.verdict.at_seconds == run.verdict.first_breach_at == 270
    assert run.verdict.reason == "breach confirmed: the interval 4m30s into the analysis breached"


def test_prometheus_unreachable_all_along_never_rolls_back_and_says_so_once() -> None:
    run = replay([UNREACHABLE] * 20)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.NO_VERDICT
    assert run.verdict.why is Outcome.NO_DATA
    assert run.verdict.reason == (
        "no verdict: no data in 10 minutes (not enough traffic in 0 of 20 intervals, no data in 20)"
    )
    assert run.notices == [
        "no verdict on error ratio: Prometheus did not answer (connection refused)"
    ]


def test_missing_data_breaks_a_run_of_breaches() -> None:
    # Breaching before and after Prometheus went away: never three seen in a row.
    series: list[Sample | str] = [errors(BAD), errors(BAD), UNREACHABLE, errors(BAD)]
    run = replay([*series, errors(BAD), errors(None)] + [errors(OK)] * 14)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY


def test_a_missing_baseline_never_counts_towards_a_rollback() -> None:
    run = replay([errors(0.9, baseline=None)] * 20)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.NO_VERDICT
    assert run.notices == ["no verdict on error ratio: no baseline to compare with (no data)"]


def test_nan_and_inf_between_breaches_never_confirm() -> None:
    series = [errors(BAD), errors(BAD), errors(math.nan)] * 3
    series += [errors(BAD), errors(BAD), errors(math.inf)] * 3
    series += [errors(BAD), errors(math.nan, baseline=math.nan)]
    run = replay(series)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.notices == ["no verdict on error ratio: no usable value for the new version (NaN)"]


def test_a_window_of_nan_is_no_verdict() -> None:
    run = replay([errors(math.nan, baseline=math.nan)] * 20)
    assert run.verdict is not None and run.verdict.kind is VerdictKind.NO_VERDICT


def test_infinite_latency_alongside_healthy_errors_is_healthy() -> None:
    interval = {ERROR_RATIO: errors(OK), P99_LATENCY: Sample(math.inf, 0.2, BUSY, BUSY)}
    run = replay([interval] * 20)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.notices == ["no verdict on p99 latency: no usable value for the new version (+Inf)"]


def test_a_baseline_at_zero_after_a_counter_reset_breaches_only_above_the_floor() -> None:
    # The old pods restarted: their rate reads 0 for a few intervals while the new version's
    # errors stay where they were, a trickle under the 1 % floor. Not a regression.
    trickle = [errors(0.006, baseline=0.0) if 6 <= i < 10 else errors(0.006) for i in range(20)]
    run = replay(trickle)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.verdict.tally.breach == 0
    # The same reset while the new version really fails: that is a breach all the same.
    failing = [errors(BAD, baseline=0.0) if 6 <= i < 10 else errors(OK) for i in range(20)]
    run = replay(failing)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.BREACH
    assert run.verdict.first_breach_at == 7 * INTERVAL


def test_a_negative_rate_after_a_counter_reset_is_no_data_not_a_breach() -> None:
    # A query built on delta() or a subtraction can go below 0 across a reset.
    series = [errors(BAD), errors(BAD), errors(-0.03)] * 6 + [errors(OK)] * 2
    run = replay(series)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.notices == [
        "no verdict on error ratio: no usable value for the new version (negative: -0.03)"
    ]


def test_a_healthy_window_ends_when_the_window_has_passed() -> None:
    run = replay([errors(OK)] * 25)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.intervals == 20
    assert run.verdict.at_seconds == WINDOW
    assert run.verdict.checks[0].new == OK
    assert run.verdict.first_breach_at is None


def test_healthy_needs_one_judged_interval_and_shows_the_last_judged() -> None:
    series = [errors(0.003)] + [UNREACHABLE] * 19
    run = replay(series)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert (
        run.verdict.reason == "healthy: no breach confirmed in 10 minutes, 1 of 20 intervals judged"
    )
    assert run.verdict.checks[0].new == 0.003


def test_a_run_of_breaches_at_the_window_end_is_followed_to_its_end() -> None:
    late = [errors(OK)] * 18 + [errors(BAD)] * 3
    run = replay(late)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.BREACH
    assert run.verdict.at_seconds == 630
    broken = [errors(OK)] * 18 + [errors(BAD)] * 2 + [errors(OK)]
    run = replay(broken)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.HEALTHY
    assert run.verdict.at_seconds == 630


def test_a_gap_in_the_observations_breaks_a_run() -> None:
    analysis = Analysis.start(WINDOW, INTERVAL, 3)
    bad = (judge(ERROR_RATIO, errors(BAD), DEFAULT_VOLUME),)
    analysis, _ = analysis.observe(30, bad)
    analysis, _ = analysis.observe(60, bad)
    analysis, verdict = analysis.observe(150, bad)  # 90 s later: two intervals were not seen
    assert verdict is None
    assert analysis.run == 1 and analysis.run_started_at == 150
    analysis, verdict = analysis.observe(180, bad)
    analysis, verdict = analysis.observe(240, bad)  # 60 s: late, but within two intervals
    assert verdict is not None and verdict.kind is VerdictKind.BREACH
    assert verdict.run_started_at == 150 and verdict.first_breach_at == 30


def test_any_signal_breaching_makes_the_interval_breach() -> None:
    interval = {ERROR_RATIO: errors(OK), P99_LATENCY: Sample(1.5, 0.3, BUSY, BUSY)}
    run = replay([interval] * 3)
    assert run.verdict is not None
    assert run.verdict.kind is VerdictKind.BREACH
    assert [c.outcome for c in run.verdict.checks] == [Outcome.PASS, Outcome.BREACH]


def test_an_interval_is_as_bad_as_its_worst_check() -> None:
    def check(outcome: Outcome) -> Check:
        return Check(ERROR_RATIO, outcome, "")

    assert interval_outcome(()) is Outcome.NO_DATA
    assert interval_outcome((check(Outcome.NO_DATA), check(Outcome.PASS))) is Outcome.PASS
    assert interval_outcome((check(Outcome.NO_DATA), check(Outcome.LOW_VOLUME))) is (
        Outcome.LOW_VOLUME
    )
    assert interval_outcome((check(Outcome.PASS), check(Outcome.BREACH))) is Outcome.BREACH


def test_each_kind_of_missing_data_is_said_once_per_signal() -> None:
    series = [
        {ERROR_RATIO: errors(None), P99_LATENCY: Sample(None, 0.2, BUSY, BUSY)},
        {ERROR_RATIO: errors(math.nan), P99_LATENCY: Sample(0.2, 0.2, BUSY, BUSY)},
        {ERROR_RATIO: errors(OK, volume=0.1), P99_LATENCY: Sample(math.nan, 0.2, BUSY, BUSY)},
        {ERROR_RATIO: errors(None), P99_LATENCY: Sample(0.2, 0.2, BUSY, BUSY)},
    ]
    run = replay(series)
    assert run.verdict is None
    assert run.notices == [
        "no verdict on error ratio: no usable value for the new version (no data)",
        "no verdict on p99 latency: no usable value for the new version (no data)",
        "not enough traffic to judge error ratio: the new version served 0.1 req/s, "
        "under the minimum of 1 req/s",
    ]


def test_no_verdict_names_what_was_missing_most() -> None:
    series: list[Sample | str] = [errors(0.5, volume=0.2)] * 12 + [UNREACHABLE] * 8
    run = replay(series)
    assert run.verdict is not None
    assert run.verdict.why is Outcome.LOW_VOLUME
    assert run.verdict.reason == (
        "no verdict: not enough traffic to judge in 10 minutes (not enough traffic in 12 of 20 "
        "intervals, no data in 8)"
    )
    run = replay(series[8:] + [UNREACHABLE] * 8)
    assert run.verdict is not None and run.verdict.why is Outcome.NO_DATA


def test_observing_after_the_verdict_or_back_in_time_is_refused() -> None:
    analysis = Analysis.start(60, INTERVAL, 1)
    bad = (judge(ERROR_RATIO, errors(BAD), DEFAULT_VOLUME),)
    with pytest.raises(ValueError, match="0 or more"):
        analysis.observe(-1, bad)
    analysis, _ = analysis.observe(30, (judge(ERROR_RATIO, errors(OK), DEFAULT_VOLUME),))
    for at in (30, 10):
        with pytest.raises(ValueError, match="forward in time"):
            analysis.observe(at, bad)
    analysis, verdict = analysis.observe(40, bad)
    assert verdict is not None
    with pytest.raises(ValueError, match="observe no more"):
        analysis.observe(70, bad)


@pytest.mark.parametrize(
    ("window", "interval", "consecutive", "message"),
    [
        (600, 0, 3, "interval must be above 0"),
        (600, math.nan, 3, "interval must be above 0"),
        (20, 30, 3, "at least the interval"),
        (600, 30, 0, "consecutive must be 1 or more"),
    ],
)
def test_an_analysis_that_could_not_end_well_does_not_start(
    window: float, interval: float, consecutive: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Analysis.start(window, interval, consecutive)
