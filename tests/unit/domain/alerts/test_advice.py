"""Whether a rollback is likely to help: the deploy's time against the alert's start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.alerts.advice import DEFAULT_SKEW, DEFAULT_WINDOW, Verdict, advise
from bot.domain.times import span

STARTED = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def before(minutes: float) -> datetime:
    return STARTED - timedelta(minutes=minutes)


def test_a_deploy_shortly_before_is_the_likely_cause() -> None:
    advice = advise(STARTED, before(12), "2.14.0")
    assert advice.verdict is Verdict.LIKELY and advice.likely
    assert advice.lead == timedelta(minutes=12)
    assert advice.headline == "likely caused by the deploy of 2.14.0"
    assert advice.text == (
        "Likely caused by the deploy of 2.14.0: it went out 12 minutes before the alert started."
    )


def test_the_window_is_inclusive() -> None:
    assert advise(STARTED, before(60), "v").verdict is Verdict.LIKELY
    assert advise(STARTED, before(60) - timedelta(seconds=1), "v").verdict is Verdict.NOT_RECENT
    assert advise(STARTED, before(90), "v", timedelta(minutes=120)).verdict is Verdict.LIKELY
    assert timedelta(minutes=60) == DEFAULT_WINDOW


def test_no_recent_deploy() -> None:
    advice = advise(STARTED, before(3 * 24 * 60 + 5), "2.14.0")
    assert advice.verdict is Verdict.NOT_RECENT and not advice.likely
    assert advice.headline == "no recent deploy; rollback may not help"
    assert advice.text == (
        "No recent deploy: 2.14.0 went out 3 days before the alert started "
        "(more than 60 minutes), so rollback may not help."
    )


def test_a_deploy_after_the_alert_started_is_not_the_cause() -> None:
    advice = advise(STARTED, STARTED + timedelta(minutes=4), "2.14.0")
    assert advice.verdict is Verdict.AFTER
    assert advice.text == (
        "Deployed after the alert started: 2.14.0 went out 4 minutes later, "
        "so it is not the cause and rollback may not help."
    )
    assert advice.headline == "2.14.0 was deployed after the alert started"


def test_clock_skew_is_tolerated() -> None:
    advice = advise(STARTED, STARTED + DEFAULT_SKEW, "2.14.0")
    assert advice.verdict is Verdict.LIKELY
    assert "at about the time the alert started" in advice.text
    later = advise(STARTED, STARTED + DEFAULT_SKEW + timedelta(seconds=1), "2.14.0")
    assert later.verdict is Verdict.AFTER
    strict = advise(STARTED, STARTED + timedelta(seconds=1), "v", skew=timedelta(0))
    assert strict.verdict is Verdict.AFTER


def test_an_unknown_deploy_time() -> None:
    advice = advise(STARTED, None, "2.14.0")
    assert advice.verdict is Verdict.UNKNOWN
    assert advice.lead is None
    assert "rollback may not help" in advice.text and "2.14.0" in advice.text
    assert advice.headline == "no recent deploy; rollback may not help"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=20), "less than a minute"),
        (timedelta(seconds=60), "1 minute"),
        (timedelta(minutes=12, seconds=59), "12 minutes"),
        (timedelta(minutes=119), "119 minutes"),
        (timedelta(minutes=120), "2 hours"),
        (timedelta(hours=2, minutes=5), "2 hours 5 minutes"),
        (timedelta(hours=25, minutes=1), "25 hours 1 minute"),
        (timedelta(hours=48), "2 days"),
        (timedelta(days=1, hours=30), "2 days"),
        (-timedelta(minutes=3), "3 minutes"),
    ],
)
def test_spans_read_naturally(delta: timedelta, text: str) -> None:
    assert span(delta) == text
