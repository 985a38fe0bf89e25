"""`ScheduledWebClient` against the Slack stand-in over real HTTP: Slack's 429s are waited out
(Retry-After) and never reach the caller, a channel's messages arrive in order, and a rollback's
outcome overtakes the alert posts still waiting in its channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

import pytest
from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncSay
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.scheduled_client import ScheduledWebClient
from bot.adapters.slack.scheduler import Priority, SchedulerClosed, SlackScheduler, sending_as
from rollback_sandbox.slack.requests import (
    DEFAULT_CHANNEL_ID,
    make_trigger_id,
    slash_command_payload,
)
from rollback_sandbox.slack.web_api import GENERAL_CHANNEL_ID, FakeSlackWebApi

MODAL = {
    "type": "modal",
    "callback_id": "rollback_modal",
    "title": {"type": "plain_text", "text": "Roll back"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Roll back checkout?"}}],
}


@pytest.fixture
async def scheduler() -> AsyncIterator[SlackScheduler]:
    scheduler = SlackScheduler()
    yield scheduler
    await scheduler.close(timeout=0)


@pytest.fixture
def client(slack_api: FakeSlackWebApi, scheduler: SlackScheduler) -> ScheduledWebClient:
    return ScheduledWebClient(
        scheduler,
        token=slack_api.bot_token,
        base_url=slack_api.api_url,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2)],
    )


async def test_every_message_gets_through_slacks_429s_in_order(
    client: ScheduledWebClient, slack_api: FakeSlackWebApi, scheduler: SlackScheduler
) -> None:
    # Stricter than the scheduler's pace, so Slack refuses some posts (429, Retry-After 1).
    slack_api.set_rate_limit("chat.postMessage", max_calls=2, window=1.0)
    parent = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="checkout is failing")
    thread = str(parent["ts"])
    story = [f"step {n}" for n in range(5)]
    posts = [
        asyncio.ensure_future(
            client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, thread_ts=thread, text=text)
        )
        for text in story
    ]
    elsewhere = asyncio.ensure_future(client.chat_postMessage(channel="general", text="hello"))
    await asyncio.wait_for(asyncio.gather(*posts, elsewhere), timeout=20)  # no error raised
    assert [m.text for m in slack_api.thread(DEFAULT_CHANNEL_ID, thread)] == story
    assert [m.text for m in slack_api.messages(GENERAL_CHANNEL_ID)] == ["hello"]
    refused = [c for c in slack_api.calls("chat.postMessage") if c.status == 429]
    assert refused and all(c.headers.get("Retry-After") for c in refused)

    # Edits of one message, one of them refused once: the message ends in the last state.
    slack_api.fail_next("chat.update", retry_after=1)
    progress = await client.chat_postMessage(channel="general", text="0%")
    for text in ("50%", "100%"):
        await client.chat_update(channel=GENERAL_CHANNEL_ID, ts=progress["ts"], text=text)
    message = slack_api.message(GENERAL_CHANNEL_ID, str(progress["ts"]))
    assert message is not None and message.text == "100%"
    assert [c.status for c in slack_api.calls("chat.update")] == [429, 200, 200]

    # A method that is not queued waits out its Retry-After too.
    slack_api.fail_next("users.info", retry_after=1)
    user = await client.users_info(user=slack_api.workspace.bot_user_id)
    assert user["ok"]
    assert [c.status for c in slack_api.calls("users.info")] == [429, 200]
    assert scheduler.stats().rate_limited == len(refused) + 2


async def test_an_outcome_overtakes_the_alert_posts_waiting_in_its_channel(
    client: ScheduledWebClient, slack_api: FakeSlackWebApi
) -> None:
    with sending_as(Priority.ALERTS):
        alerts = [
            asyncio.ensure_future(
                client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text=f"alert {n}")
            )
            for n in range(30)
        ]
    await slack_api.wait_for_call("chat.postMessage")  # the alerts have started going out
    outcome = "checkout rolled back to 1.1"
    await asyncio.wait_for(
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text=outcome), timeout=5
    )
    await slack_api.wait_for(lambda: len(slack_api.messages(DEFAULT_CHANNEL_ID)) >= 4, timeout=10)
    texts = [m.text for m in slack_api.messages(DEFAULT_CHANNEL_ID)]
    before = texts.index(outcome)
    # Alerts leave the channel's burst in reserve: one went ahead of it at most, and every
    # alert still waiting went after it.
    assert before <= 1
    assert texts[:before] == [f"alert {n}" for n in range(before)]
    assert texts[before + 1 :] == [f"alert {n}" for n in range(before, len(texts) - 1)]
    await client.scheduler.close(timeout=0)
    results = await asyncio.gather(*alerts, return_exceptions=True)
    assert all(isinstance(r, SchedulerClosed) for r in results[len(texts) - 1 :])


async def test_a_modal_opens_at_once_while_the_channel_waits_out_a_429(
    client: ScheduledWebClient, slack_api: FakeSlackWebApi
) -> None:
    slack_api.fail_next("chat.postMessage", retry_after=2)
    waiting = asyncio.ensure_future(client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x"))
    await slack_api.wait_for_call("chat.postMessage")
    opened = await asyncio.wait_for(
        client.views_open(trigger_id=make_trigger_id(), view=MODAL), timeout=1.5
    )
    assert opened["ok"] and not waiting.done()
    assert (await waiting)["ok"]


def test_the_client_refuses_slack_sdks_own_rate_limit_retries(
    scheduler: SlackScheduler,
) -> None:
    with pytest.raises(ValueError, match="rate limits"):
        ScheduledWebClient(scheduler, retry_handlers=[AsyncRateLimitErrorRetryHandler()])
    assert isinstance(ScheduledWebClient(scheduler, token="xoxb-1"), AsyncWebClient)


async def test_bolt_listeners_get_the_scheduled_client_from_a_global_middleware(
    client: ScheduledWebClient, slack_api: FakeSlackWebApi, scheduler: SlackScheduler
) -> None:
    # Bolt makes a plain AsyncWebClient for each request; the wiring's middleware swaps it.
    app = AsyncApp(client=client, request_verification_enabled=False, process_before_response=True)

    async def scheduled(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context["client"] = client
        # Bolt made `say` with its own client when it built this middleware's arguments.
        context.pop("say", None)
        await next()

    app.middleware(scheduled)
    seen: list[AsyncWebClient | None] = []

    @app.command("/rollback")
    async def command(
        ack: Callable[[], Awaitable[None]], say: AsyncSay, client: AsyncWebClient
    ) -> None:
        await ack()
        seen.extend([client, say.client])
        await say("checkout: pick a version")

    before = scheduler.stats().attempts
    body = urlencode(slash_command_payload("/rollback", "checkout"))
    response = await app.async_dispatch(
        AsyncBoltRequest(body=body, headers={"content-type": "application/x-www-form-urlencoded"})
    )
    assert response.status == 200
    assert seen == [client, client]
    assert [m.text for m in slack_api.messages(DEFAULT_CHANNEL_ID)] == ["checkout: pick a version"]
    assert scheduler.stats().attempts > before  # say() went through the scheduler
