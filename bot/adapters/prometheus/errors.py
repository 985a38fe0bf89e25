"""The one error the Prometheus client raises, and how outside text goes into its sentence."""

from __future__ import annotations

import unicodedata

from bot.domain.errors import MetricsUnavailable

# Enough of Prometheus' own message to act on (a parse error names the line and column), short
# enough for a Slack line and a log line.
MAX_MESSAGE_CHARS = 300
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class PrometheusError(MetricsUnavailable):
    """Prometheus could not be asked, or did not answer with numbers: one plain sentence.

    `transient`: the same query may well work in a moment (no connection, a timeout, 502/503).
    Never holds the bearer token nor the query's body; text that came from the server is
    flattened to one line and clipped."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def plain(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Outside text made one plain line: control, format (bidi overrides, zero-width) and
    unassigned characters become spaces, runs of spaces one, and it is clipped with "…"."""
    cleaned = "".join(
        " " if unicodedata.category(char) in _INVISIBLE else char for char in text[: limit * 4]
    )
    flat = " ".join(cleaned.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def scrub(text: str, secret: str | None) -> str:
    """`text` without `secret` in it: a hostile or debugging server may echo the request's
    Authorization header back in its error."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return text
