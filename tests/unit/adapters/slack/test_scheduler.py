"""The outbound Slack scheduler with an injected clock: time moves only when a test advances it,
so every "not yet" and "now" below is exact, and nothing really sleeps."""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.slack.scheduler import (
    MAX_ATTEMPTS,
    Pace,
    Priority,
    SchedulerClosed,
    SlackScheduler,
    current_priority,
    retry_after,
    sending_as,
)

T = TypeVar("T")
CHANNEL, OTHER = "C0SHOP", "C0OTHER"


async def settle() -> None:
    """Let every task that can run, run (the fake calls never wait on anything real)."""
    for _ in range(200):
        await asyncio.sleep(0)


class FakeTime:
    """The scheduler's clock and sleep: a sleeper wakes when `advance` reaches its time, in
    the order of their times."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        waker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._order), waker))
        await waker

    async def advance(self, seconds: float) -> None:
        end = self.now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            at, _, waker = heapq.heappop(self._sleepers)
            self.now = max(self.now, at)
            if not waker.done():
                waker.set_result(None)
            await settle()
        self.now = end
        await settle()


class FakeCalls:
    """Web API calls as the scheduler runs them: each attempt is recorded when it goes out."""

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.sent: list[str] = []
        self.at: list[float] = []

    def call(
        self,
        label: str,
        *,
        failures: list[Exception] | None = None,
        gate: asyncio.Event | None = None,
    ) -> Callable[[], Coroutine[Any, Any, str]]:
        async def attempt() -> str:
            self.sent.append(label)
            self.at.append(self.time.now)
            if gate is not None:
                await gate.wait()
            if failures:
                raise failures.pop(0)
            return f"answer to {label}"

        return attempt


def slack_error(status: int, error: str, headers: dict[str, str] | None = None) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": error},
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError(  # type: ignore[no-untyped-call]
        f"The request to the Slack API failed: {error}", response
    )


def rate_limited(seconds: int) -> SlackApiError:
    return slack_error(429, "ratelimited", {"Retry-After": str(seconds)})


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def calls(time: FakeTime) -> FakeCalls:
    return FakeCalls(time)


@pytest.fixture
def scheduler(time: FakeTime) -> SlackScheduler:
    return SlackScheduler(clock=time, sleep=time.sleep)


def spawn(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    return asyncio.ensure_future(coro)


def post(
    scheduler: SlackScheduler,
    calls: FakeCalls,
    label: str,
    *,
    channel: str = CHANNEL,
    priority: Priority | None = None,
    failures: list[Exception] | None = None,
    gate: asyncio.Event | None = None,
) -> asyncio.Task[str]:
    return spawn(
        scheduler.send(
            "chat.postMessage",
            calls.call(label, failures=failures, gate=gate),
            channel=channel,
            priority=priority,
        )
    )


def edit(
    scheduler: SlackScheduler,
    calls: FakeCalls,
    label: str,
    ts: str,
    *,
    channel: str = CHANNEL,
    priority: Priority | None = None,
    gate: asyncio.Event | None = None,
) -> asyncio.Task[str]:
    return spawn(
        scheduler.send(
            "chat.update",
            calls.call(label, gate=gate),
            channel=channel,
            ts=ts,
            priority=priority,
        )
    )


# -- priorities -------------------------------------------------------------------------------


async def test_an_outcome_queued_behind_alert_posts_goes_out_at_once(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    with sending_as(Priority.ALERTS):
        alerts = [post(scheduler, calls, f"alert {n}") for n in range(20)]
    await time.advance(0)
    assert calls.sent == ["alert 0"]  # alerts leave the rest of the channel's burst in reserve

    await time.advance(0.5)  # the worker waits for alert 1's tokens
    outcome = post(scheduler, calls, "outcome")  # unmarked: a rollback's, the most urgent
    await time.advance(0)
    assert calls.sent == ["alert 0", "outcome"]  # woken, and sent from the reserve
    assert outcome.result() == "answer to outcome"

    await time.advance(30)
    assert calls.sent[2:] == [f"alert {n}" for n in range(1, 20)]
    assert [a.result() for a in alerts] == [f"answer to alert {n}" for n in range(20)]


async def test_each_priority_leaves_tokens_for_the_more_urgent_ones(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    with sending_as(Priority.ALERTS):
        for n in range(10):
            post(scheduler, calls, f"alert {n}")
    await time.advance(0)
    post(scheduler, calls, "progress", priority=Priority.PROGRESS)
    post(scheduler, calls, "outcome")
    await time.advance(0)
    assert calls.sent == ["alert 0", "outcome"]  # one token left: progress keeps it
    await time.advance(0.9)
    assert len(calls.sent) == 2
    await time.advance(0.1)
    assert calls.sent[2] == "progress"  # two tokens: one for it, one kept for outcomes
    await time.advance(1.9)
    assert len(calls.sent) == 3  # alerts wait for three: they keep two
    await time.advance(0.1)
    assert calls.sent[3] == "alert 1"


async def test_alerts_in_many_channels_leave_the_workspaces_posts_to_an_outcome(
    time: FakeTime, calls: FakeCalls
) -> None:
    scheduler = SlackScheduler(
        clock=time, sleep=time.sleep, post_workspace_pace=Pace(per_second=1.0, burst=4)
    )
    with sending_as(Priority.ALERTS):
        for n in range(12):  # one alert in each of 12 channels: no channel is busy on its own
            post(scheduler, calls, f"alert {n}", channel=f"C{n:02d}")
    await time.advance(0)
    assert len(calls.sent) == 2  # the workspace's burst, but for what alerts keep in reserve
    outcome = post(scheduler, calls, "outcome", channel="C0ROLLBACK")
    await time.advance(0)
    assert calls.sent[-1] == "outcome" and outcome.result() == "answer to outcome"
    await time.advance(60)
    assert len(calls.sent) == 13


async def test_within_a_priority_calls_go_in_the_order_they_came(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    post(scheduler, calls, "alert 0", priority=Priority.ALERTS)
    post(scheduler, calls, "progress 0", priority=Priority.PROGRESS)
    post(scheduler, calls, "alert 1", priority=Priority.ALERTS)
    post(scheduler, calls, "progress 1", priority=Priority.PROGRESS)
    post(scheduler, calls, "outcome 0")
    post(scheduler, calls, "progress 2", priority=Priority.PROGRESS)
    post(scheduler, calls, "outcome 1")
    await time.advance(10)
    assert calls.sent == [
        "outcome 0",
        "outcome 1",
        "progress 0",
        "progress 1",
        "progress 2",
        "alert 0",
        "alert 1",
    ]


def test_sending_as_marks_only_the_calls_inside_it() -> None:
    assert current_priority() is Priority.ROLLBACK
    with sending_as(Priority.ALERTS):
        assert current_priority() is Priority.ALERTS
        with sending_as(Priority.PROGRESS):
            assert current_priority() is Priority.PROGRESS
        assert current_priority() is Priority.ALERTS
    assert current_priority() is Priority.ROLLBACK


# -- pacing and order -------------------------------------------------------------------------


async def test_a_lane_sends_one_call_at_a_time_in_order(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    # The channel has tokens for all three, but the second must not overtake the first.
    gate = asyncio.Event()
    started = post(scheduler, calls, "started", gate=gate)
    progress = post(scheduler, calls, "progress")
    outcome = post(scheduler, calls, "outcome")
    await time.advance(0)
    assert calls.sent == ["started"]
    gate.set()
    await time.advance(0)
    assert calls.sent == ["started", "progress", "outcome"]
    assert [t.done() for t in (started, progress, outcome)] == [True, True, True]


async def test_each_channel_has_its_own_post_budget(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    for n in range(5):
        post(scheduler, calls, f"shop {n}")
        post(scheduler, calls, f"other {n}", channel=OTHER)
    await time.advance(0)
    expected = [f"shop {n}" for n in range(3)] + [f"other {n}" for n in range(3)]
    assert sorted(calls.sent) == sorted(expected)
    await time.advance(1)
    assert len(calls.sent) == 8  # one more a second in each channel


async def test_edits_of_every_channel_share_the_workspace_budget(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    # chat.update is limited for the workspace: 50 in any 60 s, whichever the channels.
    for n in range(100):
        edit(scheduler, calls, f"edit {n}", f"1764216001.{n:06d}", channel=f"C{n % 10}")
    await time.advance(0)
    assert len(calls.sent) == 5
    await time.advance(59.9)
    assert len(calls.sent) == 49  # 5 at once, then 45 a minute
    await time.advance(0.2)
    assert len(calls.sent) == 50
    first_minute = [at for at in calls.at if at < time.now - 0.1]
    assert len(first_minute) <= 50


# -- coalescing -------------------------------------------------------------------------------


async def test_queued_edits_of_one_message_become_one_send_with_the_last_state(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    gate = asyncio.Event()
    ts = "1764216001.000001"
    in_flight = edit(scheduler, calls, "edit 0", ts, priority=Priority.PROGRESS, gate=gate)
    await time.advance(0)
    queued = [edit(scheduler, calls, f"edit {n}", ts, priority=Priority.PROGRESS) for n in "123"]
    await time.advance(0)
    assert calls.sent == ["edit 0"]

    gate.set()
    await time.advance(0)
    # The edit in flight went with its own state; the three queued ones as one, the newest.
    assert calls.sent == ["edit 0", "edit 3"]
    assert in_flight.result() == "answer to edit 0"
    assert [t.result() for t in queued] == ["answer to edit 3"] * 3
    assert scheduler.stats().coalesced == 2


async def test_edits_of_different_messages_are_not_coalesced(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    gate = asyncio.Event()
    edit(scheduler, calls, "hold", "1764216001.000009", gate=gate)
    await time.advance(0)
    edit(scheduler, calls, "a", "1764216001.000001")
    edit(scheduler, calls, "b", "1764216001.000002")
    edit(scheduler, calls, "c", "1764216001.000001", channel=OTHER)  # same ts, other channel
    gate.set()
    await time.advance(10)
    assert calls.sent == ["hold", "a", "b", "c"]


async def test_the_more_urgent_priority_wins_and_the_older_edit_keeps_its_place(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    gate = asyncio.Event()
    edit(scheduler, calls, "hold", "1764216001.000009", gate=gate)
    await time.advance(0)
    progress = edit(scheduler, calls, "M progress", "M", priority=Priority.PROGRESS)
    other_outcome = edit(scheduler, calls, "R final", "R")
    other_progress = edit(scheduler, calls, "N progress", "N", priority=Priority.PROGRESS)
    final = edit(scheduler, calls, "M final", "M")  # the rollback's final state
    gate.set()
    await time.advance(10)
    # M's edit became urgent and kept its place, ahead of R's which came after it.
    assert calls.sent == ["hold", "M final", "R final", "N progress"]
    assert progress.result() == final.result() == "answer to M final"
    assert other_outcome.done() and other_progress.done()


async def test_an_edit_coming_during_a_retry_wait_is_folded_into_the_retry(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    first = spawn(
        scheduler.send(
            "chat.update",
            calls.call("edit 1", failures=[rate_limited(5)]),
            channel=CHANNEL,
            ts="M",
            priority=Priority.PROGRESS,
        )
    )
    await time.advance(0)
    newer = edit(scheduler, calls, "edit 2", "M", priority=Priority.PROGRESS)
    await time.advance(5)
    assert calls.sent == ["edit 1", "edit 2"]
    assert first.result() == newer.result() == "answer to edit 2"


async def test_an_edit_coming_while_its_message_is_refused_is_folded_into_the_retry(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    gate = asyncio.Event()
    first = spawn(
        scheduler.send(
            "chat.update",
            calls.call("edit 1", failures=[rate_limited(5)], gate=gate),
            channel=CHANNEL,
            ts="M",
        )
    )
    await time.advance(0)
    newer = edit(scheduler, calls, "edit 2", "M", priority=Priority.PROGRESS)  # 1 in flight
    await time.advance(0)
    gate.set()  # and Slack refuses it: the retry goes with the newest state, once
    await time.advance(5)
    assert calls.sent == ["edit 1", "edit 2"]
    assert first.result() == newer.result() == "answer to edit 2"


# -- Retry-After ------------------------------------------------------------------------------


async def test_a_429_pauses_the_lane_for_retry_after_then_retries_the_call_first(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    limited = post(scheduler, calls, "started", failures=[rate_limited(30)])
    after = post(scheduler, calls, "progress")
    await time.advance(29.9)
    assert calls.sent == ["started"]  # Slack said 30 s: nothing in the channel before
    await time.advance(0.1)
    assert calls.sent == ["started", "started", "progress"]
    assert limited.result() == "answer to started"  # the caller never saw the 429
    assert after.result() == "answer to progress"
    assert scheduler.stats().rate_limited == 1


async def test_a_paused_lane_does_not_hold_up_the_others(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    post(scheduler, calls, "shop", failures=[rate_limited(30)])
    await time.advance(0)
    elsewhere = post(scheduler, calls, "other", channel=OTHER)
    edited = edit(scheduler, calls, "edit", "1764216001.000001")
    await time.advance(0)
    assert elsewhere.done() and edited.done()
    assert calls.sent == ["shop", "other", "edit"]


async def test_retries_are_bounded_then_the_caller_gets_the_429(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    always: list[Exception] = [rate_limited(1) for _ in range(10)]
    doomed = post(scheduler, calls, "doomed", failures=always)
    following = post(scheduler, calls, "following")
    await time.advance(MAX_ATTEMPTS + 1)
    assert calls.sent == ["doomed"] * MAX_ATTEMPTS + ["following"]
    with pytest.raises(SlackApiError) as caught:
        doomed.result()
    assert caught.value.response.status_code == 429
    assert following.result() == "answer to following"


async def test_other_errors_reach_the_caller_unchanged_and_the_lane_goes_on(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    error = slack_error(200, "channel_not_found")
    refused = post(scheduler, calls, "refused", failures=[error])
    following = post(scheduler, calls, "following")
    await time.advance(0)
    assert refused.exception() is error
    assert calls.sent == ["refused", "following"]
    assert following.result() == "answer to following"


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "7"}, 7.0),
        (429, {"retry-after": "2"}, 2.0),  # header names are case-insensitive
        (429, {}, 1.0),
        (429, {"Retry-After": "soon"}, 1.0),
        (429, {"Retry-After": "86400"}, 60.0),  # a wrong header does not stop the bot for a day
        (200, {"Retry-After": "7"}, None),
    ],
)
def test_retry_after(status: int, headers: dict[str, str], expected: float | None) -> None:
    error = slack_error(status, "ratelimited" if status == 429 else "channel_not_found", headers)
    assert retry_after(error) == expected


# -- methods that are not queued --------------------------------------------------------------


async def test_unpaced_methods_bypass_the_queues(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    # The channel paused by Slack and chat.update's budget spent: a modal still opens at once.
    post(scheduler, calls, "shop", failures=[rate_limited(30)])
    for n in range(10):
        edit(scheduler, calls, f"edit {n}", f"1764216001.{n:06d}")
    await time.advance(0)
    opened = spawn(scheduler.send("views.open", calls.call("modal"), channel=CHANNEL))
    looked_up = [spawn(scheduler.send("users.info", calls.call(f"user {n}"))) for n in range(10)]
    await settle()
    assert opened.result() == "answer to modal"
    assert [t.result() for t in looked_up] == [f"answer to user {n}" for n in range(10)]
    assert scheduler.stats().queued == 6  # the post waiting out its pause and five edits


async def test_unpaced_methods_wait_out_retry_after_and_so_do_their_other_calls(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    first = spawn(scheduler.send("users.info", calls.call("alice", failures=[rate_limited(2)])))
    await settle()
    second = spawn(scheduler.send("users.info", calls.call("bob")))
    other_method = spawn(scheduler.send("conversations.info", calls.call("channel")))
    await time.advance(1.9)
    assert calls.sent == ["alice", "channel"]  # users.info waits for Slack's 2 s
    await time.advance(0.1)
    assert sorted(calls.sent) == sorted(["alice", "channel", "alice", "bob"])
    assert first.result() == "answer to alice"
    assert second.result() == "answer to bob"
    assert other_method.result() == "answer to channel"


async def test_unpaced_retries_are_bounded(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    always: list[Exception] = [rate_limited(1) for _ in range(10)]
    doomed = spawn(scheduler.send("users.info", calls.call("alice", failures=always)))
    await time.advance(MAX_ATTEMPTS + 1)
    assert calls.sent == ["alice"] * MAX_ATTEMPTS
    assert isinstance(doomed.exception(), SlackApiError)


# -- callers, context, closing ----------------------------------------------------------------


async def test_a_queued_call_whose_caller_gave_up_is_not_sent(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    for n in range(3):
        post(scheduler, calls, f"burst {n}")
    given_up = post(scheduler, calls, "given up")
    kept = post(scheduler, calls, "kept")
    await time.advance(0)
    given_up.cancel()
    await time.advance(5)
    assert calls.sent == ["burst 0", "burst 1", "burst 2", "kept"]
    assert kept.result() == "answer to kept"


async def test_the_call_runs_in_its_callers_context(
    scheduler: SlackScheduler, time: FakeTime
) -> None:
    interaction: contextvars.ContextVar[str] = contextvars.ContextVar("interaction", default="-")
    seen: list[str] = []

    async def attempt() -> None:
        seen.append(interaction.get())

    async def caller(name: str) -> None:
        interaction.set(name)
        await scheduler.send("chat.postMessage", attempt, channel=CHANNEL)

    spawn(caller("click 1"))
    spawn(caller("click 2"))
    await time.advance(0)
    assert seen == ["click 1", "click 2"]  # each in its own, though one worker sends both


async def test_close_cancels_what_is_left_and_refuses_new_calls(
    scheduler: SlackScheduler, calls: FakeCalls, time: FakeTime
) -> None:
    paused = post(scheduler, calls, "paused", failures=[rate_limited(30)])
    behind = post(scheduler, calls, "behind")
    await time.advance(0)
    await scheduler.close(timeout=0)
    await settle()
    assert isinstance(paused.exception(), SchedulerClosed)
    assert isinstance(behind.exception(), SchedulerClosed)
    with pytest.raises(SchedulerClosed):
        await scheduler.send("chat.postMessage", calls.call("late"), channel=CHANNEL)
    assert calls.sent == ["paused"]


async def test_close_lets_queued_calls_go_out_first(calls: FakeCalls) -> None:
    scheduler = SlackScheduler(post_pace=Pace(per_second=1000.0, burst=1))
    sent = [post(scheduler, calls, f"post {n}") for n in range(5)]
    await asyncio.sleep(0)
    await scheduler.close(timeout=5.0)
    assert [t.result() for t in sent] == [f"answer to post {n}" for n in range(5)]
