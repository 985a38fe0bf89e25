"""Links to Prometheus' own graph page, for a person to see what the analysis saw. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

from bot.domain.analysis.queries import promql_duration


def check_prometheus_url(url: str) -> str:
    """The base URL of a Prometheus (http or https, maybe under a path), without a trailing
    slash; ValueError otherwise. No user:password in it: secrets stay out of the catalog.

    A URL that holds `@` is refused before anything quotes it: what comes before it may be a
    password, and refusals end up in logs."""
    if "@" in url:
        raise ValueError(
            "the Prometheus URL must not hold a user or password (it has an '@'): give a "
            "bearer_token_file"
        )
    if not url or url != url.strip() or any(ord(char) < 0x21 for char in url):
        raise ValueError(f"the Prometheus URL {url[:200]!r} has spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(f"the Prometheus URL {url[:200]!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"the Prometheus URL {url[:200]!r} must be http:// or https:// with a host"
        )
    if parts.query or parts.fragment:
        raise ValueError(
            f"the Prometheus URL {url[:200]!r} must not have a query or fragment "
            "(the bot adds the API's paths to it)"
        )
    return url.rstrip("/")


def graph_link(
    prometheus_url: str, query: str, window_seconds: float, *, end: datetime | None = None
) -> str:
    """Prometheus' graph page showing `query` over the `window_seconds` before `end` (now when
    None: a link read later then shows a later time)."""
    params = {"g0.expr": query, "g0.tab": "0", "g0.range_input": promql_duration(window_seconds)}
    if end is not None:
        # The graph page reads its end in UTC, to the second.
        params["g0.end_input"] = end.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{check_prometheus_url(prometheus_url)}/graph?{urlencode(params, quote_via=quote)}"
