"""How the bot retries: exponential backoff with full jitter, and the one loop that applies it.

Every retrying call uses this: conflicts re-planned by the rollback, a Lease or the alert index
changed by another replica meanwhile, a watch that dropped, a cluster that does not answer at
start. The schedule is a pure function of the attempt; `retry` sleeps between attempts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays of `first` · `factor`^(attempt-1), capped at `cap`, with full jitter: a random
    share of the delay (`jitter` 1.0: anywhere from 0 to it) so replicas that collided once do
    not collide again in step."""

    first: float = 0.05
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 1.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """The pause after failed attempt number `attempt` (1 for the first failure)."""
        base = min(self.cap, self.first * self.factor ** max(0, attempt - 1))
        return base * (1.0 - self.jitter * rng())


NO_WAIT = Backoff(first=0.0, cap=0.0, jitter=0.0)


async def retry(
    attempt: Callable[[int], Awaitable[T]],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    attempts: int | None,
    backoff: Backoff = Backoff(),
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`attempt(n)` for n = 1, 2, … until it returns, or raises anything but `retry_on`, or
    `attempts` (None: no limit) have failed, when the last error is raised.

    `on_retry(n, error, delay)` hears of each failure that is retried (to log it)."""
    number = 1
    while True:
        try:
            return await attempt(number)
        except retry_on as exc:
            if attempts is not None and number >= attempts:
                raise
            delay = backoff.delay(number)
            if on_retry is not None:
                on_retry(number, exc, delay)
            await sleep(delay)
            number += 1
