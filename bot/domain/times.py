"""Time as the bot reads and writes it, in one place. Pure.

- Kubernetes timestamps: RFC 3339 in (`parse_time`), `Time` and `MicroTime` out.
- Durations as people type them ("90s", "5m", "1h30m") and as they read them: compact for
  progress and outcomes ("1m42s"), ages ("12m", "3 days") and spans in sentences ("12 minutes").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

_PART = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_MAX_TEXT = 64


def utc_now() -> datetime:
    """Now, aware, in UTC: the default clock every use case takes (tests inject their own)."""
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp ("2026-11-27T04:00:00Z"), aware, in UTC; None when absent or bad.

    A timestamp without an offset is taken as UTC, as the API server writes every time in UTC.
    One whose UTC instant falls outside the calendar ("9999-12-31T23:59:59-23:59") is bad too:
    formatting it again would overflow.
    """
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def slack_ts_time(ts: str) -> datetime | None:
    """When a Slack message was posted, from its ts ("1764216000.000100"); None when the text
    is not a plausible ts (the field comes from outside)."""
    if len(ts) > _MAX_TEXT or not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,9})?", ts):
        return None
    return datetime.fromtimestamp(float(ts), UTC)


def kube_time(when: datetime) -> str:
    """Kubernetes `Time` (RFC 3339, whole seconds, UTC): "2026-11-27T04:00:00Z"."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(when: datetime) -> str:
    """Kubernetes `MicroTime`: RFC 3339 with microseconds, UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_duration(text: str) -> float:
    """Seconds from "300", "90s", "5m", "1h30m" or "1.5s"; ValueError otherwise."""
    text = text.strip().lower()
    if len(text) > _MAX_TEXT:
        raise ValueError("a duration is a few characters (examples: 90s, 5m, 1h30m)")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 5m, 1h30m)")
    return sum(float(n) * _UNIT[u] for n, u in parts)


MAX_SINCE_DAYS = 3650


def parse_since(text: str) -> timedelta:
    """How far back to look, as people type it: "7d", "36h", "1d12h", "90m"; ValueError with
    what is wrong otherwise (days, then a duration as `parse_duration` reads it)."""
    text = text.strip().lower()
    example = "examples: 7d, 36h, 1d12h, 90m"
    if not text or len(text) > _MAX_TEXT:
        raise ValueError(f"a time back is a few characters ({example})")
    days, rest = 0, text
    found = re.fullmatch(r"(\d{1,5})d(.*)", text)
    if found:
        days, rest = int(found.group(1)), found.group(2)
    try:
        seconds = parse_duration(rest) if rest else 0.0
    except ValueError:
        raise ValueError(f"{text!r} is not a time back ({example})") from None
    if days > MAX_SINCE_DAYS or seconds > MAX_SINCE_DAYS * 86400:
        raise ValueError(f"{text!r} is more than {MAX_SINCE_DAYS} days back")
    since = timedelta(days=days, seconds=seconds)
    if since <= timedelta(0):
        raise ValueError(f"{text!r} is no time back: give more than 0 ({example})")
    return since


def format_since(since: timedelta) -> str:
    """A time back as `parse_since` reads it: "7d", "36h", "1d12h", "90m", "45s"."""
    seconds = int(since.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def format_duration(seconds: float) -> str:
    """How long something took: "0.4s", "12s", "1m42s", "2h05m"."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_age(seconds: float) -> str:
    """How long ago, as people say it: "42s", "12m", "5h12m", "3 days"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 48 * 3600:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours}h{rest // 60:02d}m"
    return f"{int(seconds // 86400)} days"


def ago(when: datetime | None, now: datetime, unknown: str = "at an unknown time") -> str:
    """ "12m ago", or `unknown` when the time is not known."""
    if when is None:
        return unknown
    return f"{format_age((now - when).total_seconds())} ago"


def span(delta: timedelta) -> str:
    """A span in a sentence: "less than a minute", "12 minutes", "2 hours 5 minutes", "3 days"."""
    minutes = int(abs(delta).total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return _plural(minutes, "minute")
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return _plural(hours, "hour") + (f" {_plural(rest, 'minute')}" if rest else "")
    return _plural(hours // 24, "day")


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
