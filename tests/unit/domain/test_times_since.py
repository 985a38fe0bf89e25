"""`--since`: how far back people ask to look, read and written back the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.times import format_since, parse_since


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90m", timedelta(minutes=90)),
        (" 2D ", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_parse(text: str, since: timedelta) -> None:
    assert parse_since(text) == since


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "a few characters"),
        ("x" * 100, "a few characters"),
        ("0d", "no time back"),
        ("0s", "no time back"),
        ("7 days", "not a time back"),
        ("d7", "not a time back"),
        ("1w", "not a time back"),
        ("-7d", "not a time back"),
        ("3651d", "more than 3650 days"),
        ("99999h", "more than 3650 days"),
    ],
)
def test_parse_refuses(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_since(text)


@pytest.mark.parametrize("text", ["7d", "1d12h", "90m", "45s", "2d3h4m5s"])
def test_format_reads_back(text: str) -> None:
    assert parse_since(format_since(parse_since(text))) == parse_since(text)


def test_format() -> None:
    assert format_since(timedelta(days=7)) == "7d"
    assert format_since(timedelta(hours=36)) == "1d12h"
    assert format_since(timedelta(minutes=90)) == "1h30m"
