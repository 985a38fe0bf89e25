"""Slack's documented Web API rate limits as token buckets: the table, the bucket, the decision.

Pure: no I/O and no clock of its own (the caller passes `now`, or a clock to `RateLimiter`), so
tests drive time by hand. `FakeSlackWebApi` (web_api.py) answers HTTP 429 `ratelimited` with
`Retry-After: <RateDecision.retry_after>` when `RateLimiter.check` refuses a call.

Why token buckets rather than windows: a client that paces itself with a bucket at or under
the documented rate must never see a 429, and a sliding window would refuse such a client
right after a burst. A bucket holds `burst` tokens, refills at the documented rate, and every
call takes one; a refused call takes none.

Figures (Slack, https://docs.slack.dev/apis/web-api/rate-limits): limits apply "per API method
per app per workspace"; Tier 1 is 1+ a minute, Tier 2 20+, Tier 3 50+, Tier 4 100+ ("generous
burst behavior"). chat.postMessage is a special tier: about one message a second to a channel
with short bursts allowed, and "several hundred messages per minute" across the workspace.
Tiers of each method are those of its reference page ("Rate limiting: Tier N"). Where Slack
gives a "+" we use the floor, and the bursts are ours (Slack gives no figure): half the
per-minute figure, except where noted.

Left out, on purpose: `auth.test` and `chat.getPermalink` (special tiers without a published
figure), `apps.connections.open` (Tier 1, but Socket Mode clients reconnect whenever Slack asks
them to, and one call a minute would refuse those reconnects).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "SLACK_LIMITS",
    "Limit",
    "LimitScope",
    "LimitTable",
    "MethodLimits",
    "RateDecision",
    "RateLimiter",
    "Tier",
    "TokenBucket",
    "retry_after_seconds",
]

#: Which calls share a bucket: those to the same channel, or every call of the method.
LimitScope = Literal["channel", "method"]
Tier = Literal["tier1", "tier2", "tier3", "tier4", "special"]

#: Refill arithmetic is in floats (50/60 tokens a second): a token that is there up to this
#: much counts as there, so waiting exactly the computed time always suffices.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Limit:
    """One bucket per `scope` key: `burst` tokens, refilled at `per_minute` a minute."""

    per_minute: float
    burst: int
    scope: LimitScope = "method"

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError(f"a limit needs a positive rate and a burst of at least 1: {self}")

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


@dataclass(frozen=True)
class MethodLimits:
    """A method's rate-limit tier as Slack documents it, and the buckets that enforce it."""

    tier: Tier
    limits: tuple[Limit, ...]


LimitTable = Mapping[str, MethodLimits]


def _tier(tier: Tier, per_minute: int, *, burst: int | None = None) -> MethodLimits:
    return MethodLimits(tier, (Limit(per_minute, burst or per_minute // 2),))


#: The limits `FakeSlackWebApi` enforces by default, by method. Methods not listed are unlimited.
SLACK_LIMITS: LimitTable = MappingProxyType(
    {
        "chat.postMessage": MethodLimits(
            "special",
            (
                # "1 message per second to a specific channel ... short bursts allowed"
                Limit(60, 5, "channel"),
                # "several hundred messages per minute" across the workspace: the low end, with
                # room for ten channels' bursts at once.
                Limit(300, 50, "method"),
            ),
        ),
        # A smaller burst than the other tiers': progress edits come in runs, and the point is
        # that a run faster than 50 a minute meets a 429 soon, as it would on Slack.
        "chat.update": _tier("tier3", 50, burst=10),
        "chat.postEphemeral": _tier("tier4", 100),
        "views.open": _tier("tier4", 100),
        "views.update": _tier("tier4", 100),
        "users.info": _tier("tier4", 100),
        "conversations.info": _tier("tier3", 50),
        "reactions.add": _tier("tier3", 50),
        "usergroups.users.list": _tier("tier2", 20),
        # Both steps of a file upload are "Tier 4: 100+ per minute" on their reference pages
        # (files.getUploadURLExternal, files.completeUploadExternal); the POST of the bytes to the
        # upload URL is not a Web API method and has no published limit.
        "files.getUploadURLExternal": _tier("tier4", 100),
        "files.completeUploadExternal": _tier("tier4", 100),
    }
)


class TokenBucket:
    """`capacity` tokens, refilled continuously at `rate` a second; starts full at `now`."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a bucket needs a positive rate and room for at least one token")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._stamp = now

    def tokens(self, now: float) -> float:
        """Tokens available at `now`."""
        self._refill(now)
        return self._tokens

    def wait(self, now: float, cost: float = 1.0) -> float:
        """Seconds from `now` until `cost` tokens are there (0 if they are now)."""
        missing = cost - self.tokens(now)
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take `cost` tokens if they are there; False (and nothing taken) if not."""
        if self.wait(now, cost) > 0:
            return False
        self._tokens = max(0.0, self._tokens - cost)
        return True

    def _refill(self, now: float) -> None:
        # An injected clock may stand still or (by mistake) step back: never un-refill.
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._stamp = now


@dataclass(frozen=True)
class RateDecision:
    """Whether a call may go ahead; if not, whole seconds to wait (Slack's `Retry-After`)."""

    allowed: bool
    retry_after: int = 0


def retry_after_seconds(wait: float) -> int:
    """`Retry-After` for a wait of `wait` seconds: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait - _EPSILON))


class RateLimiter:
    """Buckets for a limit table, made on first use per (method, limit, scope key)."""

    def __init__(self, limits: LimitTable, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, int, str], TokenBucket] = {}

    def check(self, method: str, channel: str = "") -> RateDecision:
        """Take a token from each of `method`'s buckets (the one for `channel` where the limit
        is per channel), or none of them if any is empty: then say how long to wait."""
        entry = self.limits.get(method)
        if entry is None:
            return RateDecision(True)
        now = self._clock()
        buckets = [
            self._bucket(method, i, limit, channel, now) for i, limit in enumerate(entry.limits)
        ]
        wait = max((bucket.wait(now) for bucket in buckets), default=0.0)
        if wait > 0:
            return RateDecision(False, retry_after_seconds(wait))
        for bucket in buckets:
            bucket.take(now)
        return RateDecision(True)

    def reset(self) -> None:
        """Full buckets again, as if no call had been made."""
        self._buckets.clear()

    def _bucket(
        self, method: str, index: int, limit: Limit, channel: str, now: float
    ) -> TokenBucket:
        key = (method, index, channel if limit.scope == "channel" else "*")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(limit.per_second, limit.burst, now)
        return bucket
