from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.times import format_age, format_duration, kube_time, parse_duration, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5s", 1.5)]
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "m5", "5x", "1h-3m"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.42, "0.4s"), (12, "12s"), (102, "1m42s"), (7500, "2h05m")]
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(42, "42s"), (720, "12m"), (18720, "5h12m"), (3 * 86400 + 5, "3 days")]
)
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_a_slack_ts_is_a_time_and_anything_else_is_none() -> None:
    from datetime import UTC, datetime

    from bot.domain.times import slack_ts_time

    assert slack_ts_time("1764216000.000100") == datetime(2025, 11, 27, 4, 0, 0, 100, tzinfo=UTC)
    for bad in ("", "nan", "inf", "1e309", "-1", "1" * 80, "12.3.4", "１２"):
        assert slack_ts_time(bad) is None


@pytest.mark.parametrize(
    "hostile", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59Z"]
)
def test_a_time_at_the_calendars_edge_is_read_or_refused_never_an_overflow_later(
    hostile: str,
) -> None:
    parsed = parse_time(hostile)
    if parsed is not None:  # whatever is read can be written again
        assert kube_time(parsed).endswith("Z")
        assert parsed.utcoffset() == timedelta(0)
