"""Slack's documented rate limits in the stand-in: token buckets on by default, answered as
Slack answers them (HTTP 429 `ratelimited` with `Retry-After`), checked through the real
slack_sdk client over HTTP. Time is an injected clock: nothing here sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from rollback_sandbox.slack.main import RATE_LIMITS_VARIABLE, limits_wanted, serve
from rollback_sandbox.slack.rate_limits import (
    SLACK_LIMITS,
    Limit,
    MethodLimits,
    RateLimiter,
    TokenBucket,
    retry_after_seconds,
)
from rollback_sandbox.slack.requests import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_CHANNEL_NAME,
    DEFAULT_USER_ID,
)
from rollback_sandbox.slack.web_api import GENERAL_CHANNEL_ID, FakeSlackWebApi
from rollback_sandbox.slack.workspace_ui import LocalWorkspace


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[FakeSlackWebApi]:
    async with FakeSlackWebApi(clock=clock) as api:
        yield api


@pytest.fixture
def client(slack: FakeSlackWebApi) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)


async def _refused(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


def _ratelimited(error: SlackApiError) -> tuple[int, str, int]:
    """(HTTP status, error, Retry-After) of a refused call."""
    response = error.response
    return response.status_code, response["error"], int(response.headers["Retry-After"])


# ---------------------------------------------------------------------------------------------
# The pure module: buckets, the table, the decision
# ---------------------------------------------------------------------------------------------


def test_a_bucket_starts_full_empties_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, capacity=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait(0.0) == pytest.approx(0.5)
    assert not bucket.take(0.25)
    assert bucket.take(0.5)
    # Refilling stops at the capacity, however long the pause.
    assert bucket.tokens(1000.0) == 3


def test_a_refused_take_costs_nothing_and_a_clock_stepping_back_does_not_refill() -> None:
    bucket = TokenBucket(rate=1.0, capacity=1, now=10.0)
    assert bucket.take(10.0)
    for _ in range(5):
        assert not bucket.take(10.5)
    assert bucket.tokens(10.5) == pytest.approx(0.5)
    assert bucket.tokens(9.0) == pytest.approx(0.5)
    assert bucket.take(11.0)


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(1.0) == 1
    assert retry_after_seconds(1.2) == 2
    # 50 a minute refills a token every 1.2 s, in floats that are not exact.
    assert retry_after_seconds(1 / (50 / 60)) == 2


def test_the_table_follows_slacks_documented_tiers() -> None:
    floor = {"tier1": 1, "tier2": 20, "tier3": 50, "tier4": 100}
    expected_tiers = {
        "chat.postMessage": "special",
        "chat.update": "tier3",
        "chat.postEphemeral": "tier4",
        "views.open": "tier4",
        "views.update": "tier4",
        "users.info": "tier4",
        "conversations.info": "tier3",
        "reactions.add": "tier3",
        "usergroups.users.list": "tier2",
        "files.getUploadURLExternal": "tier4",
        "files.completeUploadExternal": "tier4",
    }
    assert {m: e.tier for m, e in SLACK_LIMITS.items()} == expected_tiers
    for entry in SLACK_LIMITS.values():
        if entry.tier != "special":
            [limit] = entry.limits
            assert (limit.per_minute, limit.scope) == (floor[entry.tier], "method")
            assert 1 <= limit.burst <= limit.per_minute
    assert SLACK_LIMITS["chat.update"].limits == (Limit(50, 10, "method"),)
    per_channel, workspace = SLACK_LIMITS["chat.postMessage"].limits
    assert per_channel == Limit(60, 5, "channel")
    # The workspace cap must not be what stops one channel's documented rate and burst.
    assert workspace.scope == "method"
    assert workspace.per_minute >= 5 * per_channel.per_minute
    assert workspace.burst >= 5 * per_channel.burst


def test_the_limiter_keeps_a_bucket_per_channel_and_one_per_workspace(clock: Clock) -> None:
    table = {"post": MethodLimits("special", (Limit(60, 2, "channel"), Limit(60, 3, "method")))}
    limiter = RateLimiter(table, clock)
    assert limiter.check("post", "C1").allowed
    assert limiter.check("post", "C1").allowed
    refused = limiter.check("post", "C1")
    assert (refused.allowed, refused.retry_after) == (False, 1)
    assert limiter.check("post", "C2").allowed
    # The workspace bucket is empty now: C3's own bucket is full, yet the call waits, and
    # takes nothing from C3's bucket.
    assert not limiter.check("post", "C3").allowed
    clock.advance(1)
    assert limiter.check("post", "C3").allowed
    clock.advance(1)
    assert limiter.check("post", "C3").allowed
    assert limiter.check("unlisted.method").allowed
    limiter.reset()
    assert limiter.check("post", "C1").allowed


def test_a_client_pacing_itself_at_the_documented_rate_is_never_refused(clock: Clock) -> None:
    # What the bot's own scheduler does: a bucket of the same rate and burst on its side.
    for method, entry in SLACK_LIMITS.items():
        limiter = RateLimiter(SLACK_LIMITS, clock)
        limit = entry.limits[0]
        own = TokenBucket(limit.per_second, limit.burst, clock())
        for sent in range(3 * int(limit.per_minute) + limit.burst):
            clock.advance(own.wait(clock()))
            assert own.take(clock())
            assert limiter.check(method, "C1").allowed, (method, sent)


# ---------------------------------------------------------------------------------------------
# Through slack_sdk over HTTP
# ---------------------------------------------------------------------------------------------


async def test_a_burst_of_five_posts_passes_and_the_sixth_waits_a_second(
    client: AsyncWebClient, slack: FakeSlackWebApi, clock: Clock
) -> None:
    for i in range(5):
        await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text=f"post {i}")
    error = await _refused(client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="sixth"))
    assert _ratelimited(error) == (429, "ratelimited", 1)
    # By name it is the same channel, the same budget.
    by_name = await _refused(client.chat_postMessage(channel=DEFAULT_CHANNEL_NAME, text="x"))
    assert _ratelimited(by_name) == (429, "ratelimited", 1)
    # Another channel has its own.
    await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="elsewhere")
    clock.advance(1)
    await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="a second later")
    # One second refilled one token, not more: refused calls took none, and the next waits.
    again = await _refused(client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="too soon"))
    assert _ratelimited(again) == (429, "ratelimited", 1)
    statuses = [c.status for c in slack.calls("chat.postMessage")]
    assert statuses == [200] * 5 + [429, 429, 200, 200, 429]
    assert [m.text for m in slack.messages(DEFAULT_CHANNEL_ID)][-1] == "a second later"


async def test_posting_across_the_workspace_is_capped_too(
    client: AsyncWebClient, slack: FakeSlackWebApi, clock: Clock
) -> None:
    per_channel, workspace = SLACK_LIMITS["chat.postMessage"].limits
    channels = [slack.add_channel(f"team-{i}") for i in range(workspace.burst // per_channel.burst)]
    for channel in channels:
        for _ in range(per_channel.burst):
            await client.chat_postMessage(channel=channel, text="status")
    fresh = slack.add_channel("fresh")
    error = await _refused(client.chat_postMessage(channel=fresh, text="one too many"))
    assert _ratelimited(error) == (429, "ratelimited", 1)  # 300 a minute: a token every 0.2 s
    clock.advance(0.2)
    await client.chat_postMessage(channel=fresh, text="now")


async def test_chat_update_allows_fifty_a_minute_after_a_burst_of_ten(
    client: AsyncWebClient, slack: FakeSlackWebApi, clock: Clock
) -> None:
    posted = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="0%")
    for i in range(10):
        await client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=posted["ts"], text=f"{i}%")
    error = await _refused(
        client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=posted["ts"], text="x")
    )
    assert _ratelimited(error) == (429, "ratelimited", 2)  # 50 a minute: a token every 1.2 s
    # The limit is the method's, workspace-wide: another message waits too.
    other = await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="other")
    error = await _refused(client.chat_update(channel=GENERAL_CHANNEL_ID, ts=other["ts"], text="x"))
    assert _ratelimited(error) == (429, "ratelimited", 2)
    # Sustained at 50 a minute, every edit of a whole minute passes.
    for i in range(50):
        clock.advance(60 / 50)
        await client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=posted["ts"], text=f"{i}/50")
    message = slack.message(DEFAULT_CHANNEL_ID, posted["ts"])
    assert message is not None
    assert message.text == "49/50"


async def test_size_limits_still_answer_as_slack_does(client: AsyncWebClient) -> None:
    blocks = [{"type": "divider"}] * 51
    error = await _refused(
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x", blocks=blocks)
    )
    assert (error.response.status_code, error.response["error"]) == (200, "invalid_blocks")
    error = await _refused(client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x" * 40_001))
    assert (error.response.status_code, error.response["error"]) == (200, "msg_too_long")
    fifty = await client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID, text="x", blocks=[{"type": "divider"}] * 50
    )
    assert len(fifty["message"]["blocks"]) == 50


async def test_enforce_limits_false_turns_them_off(clock: Clock) -> None:
    async with FakeSlackWebApi(enforce_limits=False, clock=clock) as slack:
        assert slack.limits is None
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        for i in range(20):
            await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text=f"post {i}")
        assert {c.status for c in slack.calls("chat.postMessage")} == {200}


async def test_limits_can_be_replaced_turned_off_and_refilled_at_run_time(
    client: AsyncWebClient, slack: FakeSlackWebApi
) -> None:
    assert slack.limits is SLACK_LIMITS
    slack.use_limits({"users.info": MethodLimits("tier4", (Limit(per_minute=6, burst=1),))})
    await client.users_info(user=DEFAULT_USER_ID)
    error = await _refused(client.users_info(user=DEFAULT_USER_ID))
    assert _ratelimited(error) == (429, "ratelimited", 10)
    for i in range(10):  # chat.postMessage is not in that table
        await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text=f"post {i}")
    slack.reset_limits()
    await client.users_info(user=DEFAULT_USER_ID)
    slack.use_limits(None)
    await client.users_info(user=DEFAULT_USER_ID)
    slack.use_limits()
    assert slack.limits is SLACK_LIMITS


async def test_faults_and_opt_in_rules_sit_on_top_of_the_default_limits(
    client: AsyncWebClient, slack: FakeSlackWebApi, clock: Clock
) -> None:
    # An injected failure is no call Slack counted: the burst of five is still there.
    slack.fail_next("chat.postMessage", "ratelimited", times=2)
    for _ in range(2):
        await _refused(client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x"))
    for i in range(5):
        await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text=f"post {i}")
    # clear_faults forgets the opt-in faults only: Slack's limit still refuses the sixth.
    slack.clear_faults()
    error = await _refused(client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="sixth"))
    assert _ratelimited(error) == (429, "ratelimited", 1)
    # An opt-in rule tighter than Slack's answers with its own window...
    slack.set_rate_limit("chat.postMessage", channel=GENERAL_CHANNEL_ID, max_calls=1, window=30)
    await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="first")
    error = await _refused(client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="second"))
    assert _ratelimited(error) == (429, "ratelimited", 30)
    # ...and a call it refuses costs no token of Slack's bucket: four remain for #general.
    slack.clear_faults()
    for i in range(4):
        await client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text=f"post {i}")
    error = await _refused(client.chat_postMessage(channel=GENERAL_CHANNEL_ID, text="x"))
    assert _ratelimited(error) == (429, "ratelimited", 1)


async def test_a_dm_counts_against_one_budget_by_user_or_by_its_id(
    client: AsyncWebClient, slack: FakeSlackWebApi
) -> None:
    first = await client.chat_postMessage(channel=DEFAULT_USER_ID, text="hello")
    dm = first["channel"]
    assert dm.startswith("D")
    for i in range(4):
        await client.chat_postMessage(channel=dm if i % 2 else DEFAULT_USER_ID, text=f"{i}")
    error = await _refused(client.chat_postMessage(channel=dm, text="one too many"))
    assert _ratelimited(error) == (429, "ratelimited", 1)


async def test_an_unknown_user_is_not_given_a_dm_by_the_rate_check(
    client: AsyncWebClient, slack: FakeSlackWebApi
) -> None:
    before = len(slack.channels())
    error = await _refused(client.conversations_info(channel=DEFAULT_USER_ID))
    assert error.response["error"] == "channel_not_found"
    assert len(slack.channels()) == before


# ---------------------------------------------------------------------------------------------
# The local workspace process
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "flag_off", "wanted"),
    [
        ({}, False, True),
        ({RATE_LIMITS_VARIABLE: "on"}, False, True),
        ({RATE_LIMITS_VARIABLE: "off"}, False, False),
        ({RATE_LIMITS_VARIABLE: " 0 "}, False, False),
        ({RATE_LIMITS_VARIABLE: "False"}, False, False),
        ({}, True, False),
    ],
)
def test_the_process_enforces_limits_unless_told_not_to(
    environ: dict[str, str], flag_off: bool, wanted: bool
) -> None:
    assert limits_wanted(environ, flag_off=flag_off) is wanted


@pytest.mark.parametrize("enforce", [True, False])
async def test_serve_passes_the_choice_to_the_workspace(enforce: bool) -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    seen: list[LocalWorkspace] = []

    def ready(workspace: LocalWorkspace) -> None:
        seen.append(workspace)
        started.set()

    task = asyncio.create_task(
        serve(
            "127.0.0.1",
            0,
            "http://127.0.0.1:9/slack/events",
            "s3cret",
            "xoxb-1",
            stop=stop,
            on_ready=ready,
            enforce_limits=enforce,
        )
    )
    await asyncio.wait_for(started.wait(), 5)
    assert (seen[0].api.limits is SLACK_LIMITS) is enforce
    assert (seen[0].api.limits is None) is not enforce
    stop.set()
    assert await asyncio.wait_for(task, 5) == 0
