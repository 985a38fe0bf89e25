"""The bot's one rate limiter for Slack's Web API: every outbound call passes here.

Slack's budget is shared, so what goes out first is decided in one place. Paced methods wait in
a lane (chat.postMessage: one lane per channel; chat.update: one for the workspace), each sent
in turn by the lane's one worker, the most urgent first (`Priority`), in arrival order within a
priority. A queued edit of a message that a newer edit of the same message supersedes is not
sent: the newer one takes its place. A 429 pauses the lane for Slack's `Retry-After` and the
call goes again, a few times at most. Other methods are not queued (a modal must open within
the trigger's 3 s), but they too wait out a `Retry-After` before trying again.

Callers say how urgent their calls are with `sending_as`, because slack_sdk's methods take only
the API's arguments; an unmarked call is `Priority.ROLLBACK`, so an answer to a person never
waits behind alert traffic.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Priority(IntEnum):
    """Lower goes first."""

    ROLLBACK = 0  # rollback starts, outcomes and refusals, and every call not marked otherwise
    PROGRESS = 1  # a running rollback's progress message
    ALERTS = 2  # alert messages and digests


@dataclass(frozen=True)
class Pace:
    """A token bucket: `burst` calls at once, refilled at `per_second`."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a pace needs a positive rate and a burst of at least 1")


# chat.postMessage: Slack allows about one message a second in a channel, "short bursts" allowed
# (no figure given): a burst of 3 lets a thread's start and first progress go out together.
POST_PACE = Pace(per_second=1.0, burst=3)
# ...and "several hundred messages per minute" for the workspace as a whole: many channels' alert
# posts together must not spend what a rollback's outcome in another channel needs. Under the
# stand-in's 300 a minute (burst 50), as the per-channel pace is under its 1/s (burst 5).
POST_WORKSPACE_PACE = Pace(per_second=280 / 60, burst=40)
# chat.update is Tier 3, 50 a minute for the workspace whatever the channel. A bucket of 5
# refilled at 45 a minute sends at most 5 + 45 = 50 in any 60 s, so even a burst stays inside
# the tier.
UPDATE_PACE = Pace(per_second=45 / 60, burst=5)
# Tokens a call must leave in its lane's bucket for more urgent ones: under an alert storm the
# digests' and alerts' calls drain the budget as fast as it refills, and a rollback's outcome
# must still find a token at once, not wait for the next refill behind them.
RESERVED_TOKENS = {Priority.ROLLBACK: 0, Priority.PROGRESS: 1, Priority.ALERTS: 2}
# Attempts of one call, the first included, before its caller gets Slack's 429.
MAX_ATTEMPTS = 5
# When a 429 has no usable Retry-After (Slack always sends one, a proxy may not).
DEFAULT_RETRY_AFTER = 1.0
# A longer Retry-After is waited out this long, then asked again: a wrong header must not hold a
# rollback's outcome for an hour.
MAX_RETRY_AFTER = 60.0
# How long `close` lets queued calls go out by default.
DRAIN_SECONDS = 5.0

_PACED = frozenset({"chat.postMessage", "chat.update"})
_EPSILON = 1e-9  # a token this close to whole counts as whole: waiting the computed time suffices

_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "slack_priority", default=Priority.ROLLBACK
)


@contextmanager
def sending_as(priority: Priority) -> Iterator[None]:
    """Mark the Slack calls made inside the block (and by tasks started inside it)."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> Priority:
    return _priority.get()


class SchedulerClosed(RuntimeError):
    """The scheduler was closed before the call could go out."""


@dataclass(frozen=True)
class SchedulerStats:
    attempts: int  # calls that reached Slack, retries included
    coalesced: int  # calls answered by a newer edit's send instead of their own
    rate_limited: int  # 429s received
    queued: int  # calls waiting in the lanes now


@dataclass(eq=False)
class _Call:
    priority: Priority
    order: int
    call: Callable[[], Coroutine[Any, Any, Any]]
    context: contextvars.Context
    edit_of: tuple[str, str] | None  # (channel, ts) of a chat.update, what coalesces
    waiters: list[asyncio.Future[Any]]
    attempts: int = 0

    @property
    def abandoned(self) -> bool:
        return all(w.done() for w in self.waiters)

    def answer(self, result: Any) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(result)

    def fail(self, error: BaseException) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_exception(error)


class _Bucket:
    def __init__(self, pace: Pace, now: float) -> None:
        self._pace = pace
        self._tokens = float(pace.burst)
        self._stamp = now

    def wait(self, now: float, reserved: int = 0) -> float:
        """Seconds until a token is there beyond the `reserved` ones (never more than the
        bucket holds but one)."""
        if now > self._stamp:  # an injected clock may stand still: never refill backwards
            self._tokens = min(
                float(self._pace.burst), self._tokens + (now - self._stamp) * self._pace.per_second
            )
            self._stamp = now
        missing = 1.0 + min(reserved, self._pace.burst - 1) - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self._pace.per_second

    def take(self) -> None:
        self._tokens = max(0.0, self._tokens - 1.0)


@dataclass(eq=False)
class _Lane:
    name: str
    bucket: _Bucket
    paused_until: float = float("-inf")
    # Sorted by (priority, order): the head goes next.
    queue: list[_Call] = field(default_factory=list)
    # The queued (never the in-flight) edit of each message.
    edits: dict[tuple[str, str], _Call] = field(default_factory=dict)
    worker: asyncio.Task[None] | None = None
    # While the worker waits for tokens for a call of `waiting_for`: a more urgent call that
    # comes meanwhile may need fewer (the reserve), so it wakes the worker.
    sleeper: asyncio.Future[None] | None = None
    waiting_for: Priority = Priority.ROLLBACK

    # A bucket this lane shares with others (chat.postMessage: the workspace's).
    shared: _Bucket | None = None

    def wait(self, now: float, priority: Priority) -> float:
        reserved = RESERVED_TOKENS[priority]
        shared = self.shared.wait(now, reserved) if self.shared is not None else 0.0
        return max(self.paused_until - now, self.bucket.wait(now, reserved), shared, 0.0)

    def take(self) -> None:
        self.bucket.take()
        if self.shared is not None:
            self.shared.take()

    def add(self, item: _Call) -> None:
        bisect.insort(self.queue, item, key=_rank)
        if item.edit_of is not None:
            self.edits[item.edit_of] = item
        if self.sleeper is not None and item.priority < self.waiting_for:
            self.sleeper.cancel()

    def remove(self, item: _Call) -> None:
        self.queue.remove(item)
        if item.edit_of is not None and self.edits.get(item.edit_of) is item:
            del self.edits[item.edit_of]

    def pop(self) -> _Call:
        item = self.queue[0]
        self.remove(item)
        return item

    def drop_abandoned(self) -> None:
        """Calls whose every caller gave up (cancelled) are not sent."""
        for item in [i for i in self.queue if i.abandoned]:
            self.remove(item)


def _rank(item: _Call) -> tuple[int, int]:
    return (item.priority, item.order)


def _merge(into: _Call, newer: _Call) -> None:
    """`into` keeps its place and goes with `newer`'s arguments, at the more urgent priority."""
    into.call, into.context = newer.call, newer.context
    into.waiters.extend(newer.waiters)
    into.priority = min(into.priority, newer.priority)


def retry_after(error: SlackApiError) -> float | None:
    """Seconds Slack asks to wait before the next call, if `error` is a rate limit; else None."""
    response = error.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, Mapping) else None
    if status != 429 and code != "ratelimited":
        return None
    headers = getattr(response, "headers", None)
    value = None
    if isinstance(headers, Mapping):
        value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else DEFAULT_RETRY_AFTER
    except (TypeError, ValueError):
        seconds = DEFAULT_RETRY_AFTER
    if math.isnan(seconds):
        seconds = DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class SlackScheduler:
    """Decides when each outbound Slack call goes. One per bot (per workspace token)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        post_pace: Pace = POST_PACE,
        post_workspace_pace: Pace = POST_WORKSPACE_PACE,
        update_pace: Pace = UPDATE_PACE,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self._post_pace = post_pace
        self._update_pace = update_pace
        self._posts = _Bucket(post_workspace_pace, clock())
        self._max_attempts = max_attempts
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._paused: dict[str, float] = {}  # unpaced methods a 429 paused, until when
        self._order = itertools.count()
        self._retried = itertools.count(-1, -1)  # ahead of every first attempt of its priority
        self._closed = False
        self._attempts = 0
        self._coalesced = 0
        self._rate_limited = 0

    async def send(
        self,
        method: str,
        call: Callable[[], Coroutine[Any, Any, T]],
        *,
        channel: str | None = None,
        ts: str | None = None,
        priority: Priority | None = None,
    ) -> T:
        """Run `call` (one attempt of Web API `method`; it may be called again after a 429)
        when the method's budget allows, and return what it returns.

        `channel`: where a chat.postMessage goes (its lane) or the chat.update's message is;
        `ts`: the message a chat.update edits. `priority`: default, the caller's `sending_as`.
        The call runs in a copy of the caller's context (its log fields). Raises what the call
        raises (a 429 only once `max_attempts` are spent), or `SchedulerClosed`."""
        if self._closed:
            raise SchedulerClosed(f"the Slack scheduler is closed; {method} not sent")
        if method not in _PACED:
            return await self._send_unpaced(method, call)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()
        item = _Call(
            priority=current_priority() if priority is None else priority,
            order=next(self._order),
            call=call,
            context=contextvars.copy_context(),
            edit_of=(channel, ts) if method == "chat.update" and channel and ts else None,
            waiters=[waiter],
        )
        lane = self._lane(method, channel)
        queued = lane.edits.get(item.edit_of) if item.edit_of is not None else None
        if queued is not None and not queued.abandoned:
            lane.remove(queued)
            _merge(queued, item)
            lane.add(queued)
            self._coalesced += 1
        else:
            if queued is not None:  # nobody waits for it any more: the newer goes in its own turn
                lane.remove(queued)
            lane.add(item)
        if lane.worker is None or lane.worker.done():
            # Not the caller's context: the worker serves every caller of the lane.
            lane.worker = loop.create_task(
                self._work(lane), name=f"slack {lane.name}", context=contextvars.Context()
            )
        return await waiter

    def stats(self) -> SchedulerStats:
        return SchedulerStats(
            attempts=self._attempts,
            coalesced=self._coalesced,
            rate_limited=self._rate_limited,
            queued=sum(len(lane.queue) for lane in self._lanes.values()),
        )

    async def close(self, timeout: float = DRAIN_SECONDS) -> None:
        """Take no more calls; let the queued ones go out for up to `timeout` seconds (drain),
        then cancel the rest: their callers get `SchedulerClosed`."""
        self._closed = True
        workers = [
            lane.worker
            for lane in self._lanes.values()
            if lane.worker is not None and not lane.worker.done()
        ]
        if workers and timeout > 0:
            await asyncio.wait(workers, timeout=timeout)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for lane in self._lanes.values():
            for item in lane.queue:
                item.fail(SchedulerClosed("the Slack scheduler closed before this call went out"))
            lane.queue.clear()
            lane.edits.clear()

    # -- lanes -------------------------------------------------------------------------------

    def _lane(self, method: str, channel: str | None) -> _Lane:
        # chat.update's limit is the workspace's; chat.postMessage's is each channel's.
        key = (method, "") if method == "chat.update" else (method, channel or "")
        lane = self._lanes.get(key)
        if lane is None:
            pace = self._update_pace if method == "chat.update" else self._post_pace
            name = method if method == "chat.update" else f"{method} {channel}"
            shared = self._posts if method == "chat.postMessage" else None
            lane = self._lanes[key] = _Lane(name, _Bucket(pace, self._clock()), shared=shared)
        return lane

    async def _work(self, lane: _Lane) -> None:
        """Send the lane's calls one at a time (so no call overtakes an earlier one it depends
        on), choosing only once a token is there: a call that came meanwhile may go first."""
        while True:
            lane.drop_abandoned()
            if not lane.queue:
                return
            head = lane.queue[0].priority
            wait = lane.wait(self._clock(), head)
            if wait > 0:
                lane.waiting_for = head
                sleeper = lane.sleeper = asyncio.ensure_future(self._sleep(wait))
                try:
                    await asyncio.wait({sleeper})  # a cancelled sleep ends it early
                finally:
                    sleeper.cancel()
                    lane.sleeper = None
                continue
            item = lane.pop()
            lane.take()
            await self._attempt(lane, item)

    async def _attempt(self, lane: _Lane, item: _Call) -> None:
        item.attempts += 1
        self._attempts += 1
        try:
            # A task of its own, to run in the caller's context; the worker is shared.
            result = await asyncio.create_task(item.call(), context=item.context)
        except asyncio.CancelledError:
            item.fail(SchedulerClosed("the Slack scheduler closed while this call was sent"))
            raise
        except SlackApiError as exc:
            delay = retry_after(exc)
            if delay is None:
                item.fail(exc)
                return
            self._rate_limited += 1
            lane.paused_until = max(lane.paused_until, self._clock() + delay)
            if item.attempts >= self._max_attempts:
                log.warning(
                    "Slack rate-limited %s %d times: giving up on this call",
                    lane.name,
                    item.attempts,
                )
                item.fail(exc)
                return
            log.warning(
                "Slack rate-limited %s: waiting %.1fs before sending again", lane.name, delay
            )
            self._requeue(lane, item)
        except Exception as exc:
            item.fail(exc)
        else:
            item.answer(result)

    def _requeue(self, lane: _Lane, item: _Call) -> None:
        """Back at the head of its priority; an edit of the same message queued meanwhile
        is folded in (the message is not in flight any more)."""
        item.order = next(self._retried)
        newer = lane.edits.get(item.edit_of) if item.edit_of is not None else None
        if newer is not None:
            lane.remove(newer)
            _merge(item, newer)
            self._coalesced += 1
        lane.add(item)

    # -- unpaced methods ---------------------------------------------------------------------

    async def _send_unpaced(self, method: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        attempts = 0
        while True:
            wait = self._paused.get(method, float("-inf")) - self._clock()
            if wait > 0:
                await self._sleep(wait)
            attempts += 1
            self._attempts += 1
            try:
                return await call()
            except SlackApiError as exc:
                delay = retry_after(exc)
                if delay is None:
                    raise
                self._rate_limited += 1
                # Slack's limits are per method: the method's other callers wait too.
                until = self._clock() + delay
                self._paused[method] = max(self._paused.get(method, until), until)
                if attempts >= self._max_attempts:
                    log.warning("Slack rate-limited %s %d times: giving up", method, attempts)
                    raise
                log.warning(
                    "Slack rate-limited %s: waiting %.1fs before asking again", method, delay
                )
