"""The Slack stand-in, checked against the real clients (slack_sdk, slack_bolt), not our code.

If these pass, the fake speaks what slack_sdk's Web API clients, Bolt's request verification and
aiohttp adapter, and the Socket Mode client expect — so end-to-end tests of the bot against it
mean something.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from rollback_sandbox.slack.requests import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_USER_ID,
    SendOptions,
    SlackRequestSender,
    alertmanager_attachment,
    bot_message_event,
    event_callback_payload,
    make_trigger_id,
    message_event,
    sign,
    slash_command_payload,
    view_submission_payload,
)
from rollback_sandbox.slack.web_api import FakeSlackWebApi

pytest_plugins = ["tests.slack_fixtures"]

TS = re.compile(r"^\d{10}\.\d{6}$")
BUTTON_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*checkout* 2.14.0 is failing"}},
    {
        "type": "actions",
        "block_id": "rollback_actions",
        "elements": [
            {
                "type": "button",
                "action_id": "rollback_confirm",
                "text": {"type": "plain_text", "text": "Roll back to 2.13.0"},
                "value": '{"deployment": "checkout", "revision": 7}',
                "style": "danger",
            }
        ],
    },
]
MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "rollback_modal",
    "private_metadata": '{"deployment": "checkout"}',
    "title": {"type": "plain_text", "text": "Roll back"},
    "submit": {"type": "plain_text", "text": "Roll back"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason_block",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "reason"},
        },
        {
            "type": "input",
            "block_id": "revision_block",
            "label": {"type": "plain_text", "text": "Revision"},
            "element": {
                "type": "static_select",
                "action_id": "revision",
                "options": [
                    {"text": {"type": "plain_text", "text": "7 (2.13.0)"}, "value": "7"},
                    {"text": {"type": "plain_text", "text": "6 (2.12.3)"}, "value": "6"},
                ],
            },
        },
    ],
}


@pytest.fixture
def client(slack_api: FakeSlackWebApi) -> AsyncWebClient:
    return AsyncWebClient(token=slack_api.bot_token, base_url=slack_api.api_url)


async def _error_of(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value


# ---------------------------------------------------------------------------------------------
# Web API through slack_sdk's AsyncWebClient
# ---------------------------------------------------------------------------------------------


async def test_auth_test_identifies_the_bot(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    response = await client.auth_test()
    assert response["user_id"] == slack_api.workspace.bot_user_id
    assert response["bot_id"] == slack_api.workspace.bot_id
    assert response["team_id"].startswith("T")
    assert slack_api.calls("auth.test")[0].token == slack_api.bot_token


async def test_post_thread_update_react_and_permalink(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    posted = await client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID, text="checkout is failing", blocks=BUTTON_BLOCKS
    )
    ts = posted["ts"]
    assert TS.match(ts)
    assert posted["channel"] == DEFAULT_CHANNEL_ID
    assert posted["message"]["user"] == slack_api.workspace.bot_user_id
    call = slack_api.calls("chat.postMessage")[0]
    assert call.transport == "json"
    assert call.args["blocks"][1]["block_id"] == "rollback_actions"

    reply = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, thread_ts=ts, text="step 1")
    second = await client.chat_postMessage(channel="#incidents", thread_ts=ts, text="step 2")
    assert reply["ts"] < second["ts"]
    assert second["message"]["thread_ts"] == ts
    assert [m.text for m in slack_api.thread(DEFAULT_CHANNEL_ID, ts)] == ["step 1", "step 2"]
    assert [m.ts for m in slack_api.messages(DEFAULT_CHANNEL_ID)] == [ts]

    updated = await client.chat_update(
        channel=DEFAULT_CHANNEL_ID, ts=ts, text="rolled back", blocks=BUTTON_BLOCKS[:1]
    )
    assert updated["message"]["edited"]["user"] == slack_api.workspace.bot_user_id
    now = slack_api.message(DEFAULT_CHANNEL_ID, ts)
    assert now is not None
    assert now.text == "rolled back"
    assert now.buttons() == []
    assert [(v.text, v.by) for v in now.versions] == [
        ("checkout is failing", "chat.postMessage"),
        ("rolled back", "chat.update"),
    ]
    assert now.edits[0].blocks[1]["elements"][0]["action_id"] == "rollback_confirm"
    assert now.to_api()["reply_count"] == 2

    await client.reactions_add(channel=DEFAULT_CHANNEL_ID, timestamp=ts, name="white_check_mark")
    assert now.reactions == {"white_check_mark": [slack_api.workspace.bot_user_id]}
    error = await _error_of(
        client.reactions_add(channel=DEFAULT_CHANNEL_ID, timestamp=ts, name="white_check_mark")
    )
    assert error.response["error"] == "already_reacted"

    link = await client.chat_getPermalink(channel=DEFAULT_CHANNEL_ID, message_ts=reply["ts"])
    assert link["permalink"].endswith(
        f"/archives/{DEFAULT_CHANNEL_ID}/p{reply['ts'].replace('.', '')}"
        f"?thread_ts={ts}&cid={DEFAULT_CHANNEL_ID}"
    )


async def test_post_ephemeral(client: AsyncWebClient, slack_api: FakeSlackWebApi) -> None:
    response = await client.chat_postEphemeral(
        channel=DEFAULT_CHANNEL_ID, user=DEFAULT_USER_ID, text="only you can see this"
    )
    assert TS.match(response["message_ts"])
    [ephemeral] = slack_api.ephemerals(DEFAULT_CHANNEL_ID, user=DEFAULT_USER_ID)
    assert ephemeral.text == "only you can see this"
    assert slack_api.messages(DEFAULT_CHANNEL_ID) == []
    error = await _error_of(
        client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=response["message_ts"], text="x")
    )
    assert error.response["error"] == "message_not_found"


async def test_views_open_and_update(client: AsyncWebClient, slack_api: FakeSlackWebApi) -> None:
    trigger = make_trigger_id()
    opened = await client.views_open(trigger_id=trigger, view=MODAL)
    view = opened["view"]
    assert view["id"].startswith("V")
    assert view["callback_id"] == "rollback_modal"
    assert view["state"] == {"values": {}}

    again = await _error_of(client.views_open(trigger_id=trigger, view=MODAL))
    assert again.response["error"] == "exchanged_trigger_id"
    stale = await _error_of(
        client.views_open(trigger_id=make_trigger_id(time.time() - 4), view=MODAL)
    )
    assert stale.response["error"] == "expired_trigger_id"
    made_up = await _error_of(client.views_open(trigger_id="12345.98765.abc", view=MODAL))
    assert made_up.response["error"] == "invalid_trigger_id"

    updated = await client.views_update(
        view_id=view["id"], hash=view["hash"], view={**MODAL, "private_metadata": "v2"}
    )
    assert updated["view"]["private_metadata"] == "v2"
    conflict = await _error_of(
        client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL)
    )
    assert conflict.response["error"] == "hash_conflict"
    too_long = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    invalid = await _error_of(client.views_update(view_id=view["id"], view=too_long))
    assert invalid.response["error"] == "invalid_arguments"
    assert "/view/title/text" in invalid.response["response_metadata"]["messages"][0]


async def test_directory_methods(client: AsyncWebClient, slack_api: FakeSlackWebApi) -> None:
    sre = slack_api.add_user("sre-lead", real_name="Sam Rivers", email="sam@example.com")
    slack_api.add_usergroup("S0SREONCAL", "sre-oncall", [sre, DEFAULT_USER_ID])

    members = await client.usergroups_users_list(usergroup="S0SREONCAL")
    assert members["users"] == [sre, DEFAULT_USER_ID]
    assert slack_api.calls("usergroups.users.list")[0].transport == "query"
    missing = await _error_of(client.usergroups_users_list(usergroup="S0NOTHERE"))
    assert missing.response["error"] == "no_such_subteam"

    user = await client.users_info(user=sre)
    assert user["user"]["profile"]["email"] == "sam@example.com"
    assert user["user"]["real_name"] == "Sam Rivers"
    nobody = await _error_of(client.users_info(user="U0NOBODY00"))
    assert nobody.response["error"] == "user_not_found"

    channel = await client.conversations_info(channel=DEFAULT_CHANNEL_ID)
    assert channel["channel"]["name"] == "incidents"
    assert channel["channel"]["is_member"] is True


async def test_token_errors(client: AsyncWebClient, slack_api: FakeSlackWebApi) -> None:
    wrong = AsyncWebClient(token="xoxb-not-a-real-token", base_url=slack_api.api_url)
    assert (await _error_of(wrong.auth_test())).response["error"] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=slack_api.api_url)
    assert (await _error_of(anonymous.auth_test())).response["error"] == "not_authed"
    app_level = AsyncWebClient(token=slack_api.app_token, base_url=slack_api.api_url)
    refused = await _error_of(app_level.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="x"))
    assert refused.response["error"] == "not_allowed_token_type"
    bot_for_socket = await _error_of(client.apps_connections_open(app_token=slack_api.bot_token))
    assert bot_for_socket.response["error"] == "not_allowed_token_type"

    opened = await client.apps_connections_open(app_token=slack_api.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{slack_api.url.rsplit(':', 1)[1]}/link/?")


async def test_channel_and_message_errors(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    lost = await _error_of(client.chat_postMessage(channel="C0NOTHERE1", text="hello"))
    assert lost.response["error"] == "channel_not_found"
    assert (await _error_of(client.conversations_info(channel="C0NOTHERE1"))).response[
        "error"
    ] == "channel_not_found"
    outside = slack_api.add_channel("payments", bot_is_member=False)
    denied = await _error_of(client.chat_postMessage(channel=outside, text="hello"))
    assert denied.response["error"] == "not_in_channel"
    unknown_ts = await _error_of(
        client.chat_update(channel=DEFAULT_CHANNEL_ID, ts="1700000000.000100", text="x")
    )
    assert unknown_ts.response["error"] == "message_not_found"
    empty = await _error_of(client.api_call("chat.postMessage", json={"channel": "general"}))
    assert empty.response["error"] == "no_text"
    human = slack_api.post_as(DEFAULT_CHANNEL_ID, "deploying 2.14.0", user=DEFAULT_USER_ID)
    theirs = await _error_of(client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=human.ts, text="x"))
    assert theirs.response["error"] == "cant_update_message"


def _button(**overrides: Any) -> dict[str, Any]:
    button = {
        "type": "button",
        "action_id": "go",
        "text": {"type": "plain_text", "text": "Go"},
        "value": "v",
    }
    return {**button, **overrides}


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([{"type": "divider"}] * 51, "/blocks"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "/blocks/0/text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [_button(text={"type": "plain_text", "text": "x" * 76})],
                }
            ],
            "/blocks/0/elements/0/text/text",
        ),
        (
            [{"type": "actions", "elements": [_button(value="x" * 2001)]}],
            "/blocks/0/elements/0/value",
        ),
        (
            [{"type": "actions", "elements": [_button(action_id="x" * 256)]}],
            "/blocks/0/elements/0/action_id",
        ),
        ([{"type": "no_such_block"}], "/blocks/0/type"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}], "/blocks/0/text"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        _button(
                            confirm={
                                "title": {"type": "plain_text", "text": "Sure?"},
                                "text": {"type": "mrkdwn", "text": "x" * 301},
                                "confirm": {"type": "plain_text", "text": "Yes"},
                                "deny": {"type": "plain_text", "text": "No"},
                            }
                        )
                    ],
                }
            ],
            "/blocks/0/elements/0/confirm/text/text",
        ),
    ],
    ids=[
        "51-blocks",
        "section-3001",
        "button-text-76",
        "value-2001",
        "action-id-256",
        "type",
        "header-151",
        "confirm-301",
    ],
)
async def test_block_kit_limits_give_invalid_blocks(
    client: AsyncWebClient, slack_api: FakeSlackWebApi, blocks: list[Any], pointer: str
) -> None:
    error = await _error_of(
        client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="fallback", blocks=blocks)
    )
    assert error.response["error"] == "invalid_blocks"
    assert any(f"[json-pointer:{pointer}" in e for e in error.response["errors"])
    assert slack_api.messages(DEFAULT_CHANNEL_ID) == []


async def test_blocks_at_the_limits_are_accepted(client: AsyncWebClient) -> None:
    at_limits = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}] * 49 + [
        {
            "type": "actions",
            "elements": [
                _button(
                    text={"type": "plain_text", "text": "x" * 75},
                    value="v" * 2000,
                    action_id="a" * 255,
                )
            ],
        }
    ]
    posted = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="ok", blocks=at_limits)
    assert len(posted["message"]["blocks"]) == 50


async def test_ratelimited_is_a_429_with_retry_after(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    slack_api.set_rate_limit("chat.postMessage", max_calls=1, window=30)
    await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="first")
    error = await _error_of(client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="second"))
    assert error.response.status_code == 429
    assert error.response["error"] == "ratelimited"
    assert int(error.response.headers["Retry-After"]) >= 29
    # The limit is per channel: another channel still accepts a message.
    await client.chat_postMessage(channel="general", text="elsewhere")
    assert [c.status for c in slack_api.calls("chat.postMessage")] == [200, 429, 200]


async def test_rate_limit_per_message_for_progress_edits(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    first = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="0%")
    second = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="0%")
    slack_api.set_rate_limit("chat.update", per="message", max_calls=1, window=30)
    await client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=first["ts"], text="50%")
    await client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=second["ts"], text="50%")
    error = await _error_of(
        client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=first["ts"], text="100%")
    )
    assert error.response.status_code == 429
    slack_api.clear_faults()
    await client.chat_update(channel=DEFAULT_CHANNEL_ID, ts=first["ts"], text="100%")


async def test_sdk_retry_handler_waits_out_ratelimited(slack_api: FakeSlackWebApi) -> None:
    retrying = AsyncWebClient(
        token=slack_api.bot_token,
        base_url=slack_api.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack_api.fail_next("chat.postMessage", "ratelimited", retry_after=0)
    posted = await retrying.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="eventually")
    assert posted["ok"]
    assert [c.error for c in slack_api.calls("chat.postMessage")] == ["ratelimited", None]


async def test_calls_record_what_was_sent_and_messages_what_slack_stores(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    blocks = [{"type": "section", "text": {"type": "plain_text", "text": "hi"}}]
    posted = await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="hi", blocks=blocks)
    assert slack_api.calls("chat.postMessage")[0].args["blocks"] == blocks
    stored = posted["message"]["blocks"][0]
    assert stored["block_id"]  # Slack generates one when none is given
    assert stored["text"] == {"type": "plain_text", "text": "hi", "emoji": True}


async def test_response_url_through_slack_sdks_webhook_client(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    posted = await client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID, text="checkout is failing", blocks=BUTTON_BLOCKS
    )
    url = slack_api.issue_response_url(
        channel_id=DEFAULT_CHANNEL_ID, user_id=DEFAULT_USER_ID, message_ts=posted["ts"]
    )
    webhook = AsyncWebhookClient(url)
    private = await webhook.send(text="only for you")
    assert private.status_code == 200
    [ephemeral] = slack_api.ephemerals(DEFAULT_CHANNEL_ID, user=DEFAULT_USER_ID)
    assert ephemeral.text == "only for you"
    public = await webhook.send(text="for everyone", response_type="in_channel")
    assert public.status_code == 200
    assert [m.text for m in slack_api.messages(DEFAULT_CHANNEL_ID)][-1] == "for everyone"
    invalid = await webhook.send(text="x", blocks=[{"type": "divider"}] * 51)
    assert (invalid.status_code, json.loads(invalid.body)["error"]) == (400, "invalid_blocks")
    await webhook.send(text="edited", replace_original=True)
    original = slack_api.message(DEFAULT_CHANNEL_ID, posted["ts"])
    assert original is not None
    assert original.text == "edited"
    await webhook.send(delete_original=True)
    assert slack_api.message(DEFAULT_CHANNEL_ID, posted["ts"]) is None
    await webhook.send(text="fifth use")
    spent = await webhook.send(text="sixth use")
    assert (spent.status_code, json.loads(spent.body)["error"]) == (404, "used_url")


async def test_form_encoded_and_sync_client(slack_api: FakeSlackWebApi) -> None:
    # A form body with the token as an argument and blocks as a JSON string.
    fields = {
        "token": slack_api.bot_token,
        "channel": DEFAULT_CHANNEL_ID,
        "text": "from a form",
        "blocks": json.dumps(BUTTON_BLOCKS),
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{slack_api.api_url}chat.postMessage", data=fields) as form_reply,
    ):
        assert (await form_reply.json())["ok"] is True
    call = slack_api.calls("chat.postMessage")[-1]
    assert call.transport == "form"
    assert call.args["blocks"][1]["elements"][0]["action_id"] == "rollback_confirm"

    # A JSON body cannot carry the token (Slack reads it only from the header or form/query).
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{slack_api.api_url}auth.test", json={"token": slack_api.bot_token}
        ) as json_reply,
    ):
        assert (await json_reply.json())["error"] == "not_authed"

    def with_sync_client() -> tuple[str, str]:
        sync = WebClient(token=slack_api.bot_token, base_url=slack_api.api_url)
        ts = sync.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="sync")["ts"]
        info = sync.users_info(user=DEFAULT_USER_ID)
        return str(ts), str(info["user"]["name"])

    ts, name = await asyncio.to_thread(with_sync_client)
    assert TS.match(ts)
    assert name == "oncall"


async def test_wait_for_polls_recorded_state(
    client: AsyncWebClient, slack_api: FakeSlackWebApi
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel=DEFAULT_CHANNEL_ID, text="done")

    task = asyncio.create_task(later())
    found = await slack_api.wait_for(lambda: slack_api.messages(DEFAULT_CHANNEL_ID), timeout=2)
    await task
    assert found[0].text == "done"
    with pytest.raises(AssertionError, match=r"chat\.postMessage"):
        await slack_api.wait_for(lambda: slack_api.calls("views.open"), timeout=0.05)


# ---------------------------------------------------------------------------------------------
# Signed requests through Bolt's verification and aiohttp adapter
# ---------------------------------------------------------------------------------------------


@asynccontextmanager
async def serve_bolt(app: AsyncApp) -> AsyncIterator[str]:
    """Serve `app` with Bolt's own aiohttp server app on 127.0.0.1; yield its events URL."""
    runner = web.AppRunner(app.web_app(path="/slack/events"), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/slack/events"
    finally:
        await runner.cleanup()


def bolt_app(slack_api: FakeSlackWebApi, signing_secret: str) -> AsyncApp:
    return AsyncApp(
        signing_secret=signing_secret,
        client=AsyncWebClient(token=slack_api.bot_token, base_url=slack_api.api_url),
    )


async def test_bolt_acks_a_signed_slash_command_and_its_response_url_lands(
    slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender, slack_signing_secret: str
) -> None:
    app = bolt_app(slack_api, slack_signing_secret)
    seen: list[dict[str, Any]] = []

    async def on_rollback(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        seen.append(command)
        await ack()
        await respond(text=f"rolling back {command['text']}", response_type="in_channel")

    app.command("/rollback")(on_rollback)
    async with serve_bolt(app) as url:
        slack_sender.events_url = url
        reply = await slack_sender.slash_command("/rollback", "checkout")
        assert reply.status == 200
        message = await slack_api.wait_for(
            lambda: slack_api.messages(DEFAULT_CHANNEL_ID), timeout=3
        )
    assert message[0].text == "rolling back checkout"
    assert message[0].posted_by == "response_url"
    command = seen[0]
    assert command["user_id"] == DEFAULT_USER_ID
    assert command["user_name"] == "oncall"
    assert command["channel_name"] == "incidents"
    assert command["trigger_id"].count(".") == 2
    # Bolt authorised the request with auth.test against the fake.
    assert slack_api.calls("auth.test")


async def test_bolt_handles_a_click_a_modal_and_its_submission(
    slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender, slack_signing_secret: str
) -> None:
    app = bolt_app(slack_api, slack_signing_secret)
    submitted: list[dict[str, Any]] = []

    async def on_click(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        action = body["actions"][0]
        await client.views_open(
            trigger_id=body["trigger_id"], view={**MODAL, "private_metadata": action["value"]}
        )
        await respond(replace_original=True, text="Rollback requested", blocks=[])

    async def on_submit(ack: AsyncAck, view: dict[str, Any]) -> None:
        submitted.append(view)
        reason = view["state"]["values"]["reason_block"]["reason"]["value"]
        if not reason:
            await ack(response_action="errors", errors={"reason_block": "Say why"})
            return
        await ack()

    app.action("rollback_confirm")(on_click)
    app.view("rollback_modal")(on_submit)

    client = AsyncWebClient(token=slack_api.bot_token, base_url=slack_api.api_url)
    posted = await client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID, text="checkout is failing", blocks=BUTTON_BLOCKS
    )
    async with serve_bolt(app) as url:
        slack_sender.events_url = url
        clicked = await slack_sender.click(DEFAULT_CHANNEL_ID, posted["ts"], "rollback_confirm")
        assert clicked.status == 200
        sent_action = clicked.sent["actions"][0]
        assert sent_action["block_id"] == "rollback_actions"
        assert sent_action["value"] == '{"deployment": "checkout", "revision": 7}'
        assert clicked.sent["message"]["ts"] == posted["ts"]

        await slack_api.wait_for(lambda: slack_api.calls("response_url"), timeout=3)
        [view] = await slack_api.wait_for(slack_api.views, timeout=3)
        assert view["private_metadata"] == sent_action["value"]

        rejected = await slack_sender.submit_view(view["id"], {"revision": "7"})
        assert rejected.status == 200
        assert rejected.json() == {
            "response_action": "errors",
            "errors": {"reason_block": "Say why"},
        }
        accepted = await slack_sender.submit_view(view["id"], {"reason": "5xx", "revision": "6"})
        assert accepted.status == 200
        assert accepted.text == ""

    now = slack_api.message(DEFAULT_CHANNEL_ID, posted["ts"])
    assert now is not None
    assert now.text == "Rollback requested"
    assert [v.by for v in now.versions] == ["chat.postMessage", "response_url"]
    values = submitted[-1]["state"]["values"]
    assert values["revision_block"]["revision"]["selected_option"]["value"] == "6"


async def test_bolt_receives_alertmanager_bot_message_and_retries(
    slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender, slack_signing_secret: str
) -> None:
    app = bolt_app(slack_api, slack_signing_secret)
    received: list[tuple[dict[str, Any], str | None]] = []

    async def on_bot_message(body: dict[str, Any], request: AsyncBoltRequest) -> None:
        retry = request.headers.get("x-slack-retry-num", [None])[0]
        received.append((body, retry))

    app.event({"type": "message", "subtype": "bot_message"})(on_bot_message)

    attachment = alertmanager_attachment(
        alert_count=2,
        group_labels={"alertname": "KubeDeploymentReplicasMismatch"},
        common_labels={
            "alertname": "KubeDeploymentReplicasMismatch",
            "deployment": "checkout",
            "namespace": "shop",
        },
    )
    assert attachment["title"] == "[FIRING:2] KubeDeploymentReplicasMismatch (checkout shop)"
    stored = slack_api.post_as(
        DEFAULT_CHANNEL_ID, bot_id="B0ALERTMGR", username="Alertmanager", attachments=[attachment]
    )
    event = bot_message_event(
        attachments=[attachment], bot_id="B0ALERTMGR", username="Alertmanager", ts=stored.ts
    )
    assert stored.to_event() == event
    async with serve_bolt(app) as url:
        slack_sender.events_url = url
        first = await slack_sender.event(event, event_id="Ev0ALERT001")
        retried = await slack_sender.event(
            event, event_id="Ev0ALERT001", options=SendOptions.retry(1, "http_timeout")
        )
        assert (first.status, retried.status) == (200, 200)
        await slack_api.wait_for(lambda: len(received) == 2, timeout=3)

    body, retry = received[0]
    assert body["event_id"] == "Ev0ALERT001"
    assert body["authorizations"][0]["user_id"] == slack_api.workspace.bot_user_id
    assert body["event"]["attachments"][0]["title"].startswith("[FIRING:2]")
    assert body["event"]["attachments"][0]["id"] == 1
    assert retry is None
    assert received[1][1] == "1"


async def test_bolt_rejects_forged_and_expired_signatures(
    slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender, slack_signing_secret: str
) -> None:
    app = bolt_app(slack_api, slack_signing_secret)
    ran: list[str] = []

    async def on_rollback(ack: AsyncAck) -> None:
        ran.append("ran")
        await ack()

    app.command("/rollback")(on_rollback)
    async with serve_bolt(app) as url:
        slack_sender.events_url = url
        verified = await slack_sender.url_verification("challenge-accepted")
        forged = await slack_sender.slash_command(
            "/rollback", "checkout", options=SendOptions(forge_signature=True)
        )
        expired = await slack_sender.slash_command(
            "/rollback", "checkout", options=SendOptions(expired_timestamp=True)
        )
        fine = await slack_sender.slash_command("/rollback", "checkout")
    assert verified.status == 200
    assert verified.json() == {"challenge": "challenge-accepted"}
    assert (forged.status, expired.status, fine.status) == (401, 401, 200)
    assert ran == ["ran"]


def test_signatures_pass_slack_sdks_verifier() -> None:
    body = urlencode(slash_command_payload("/rollback", "checkout"))
    now = int(time.time())
    verifier = SignatureVerifier("the-secret")
    assert verifier.is_valid(body, str(now), sign("the-secret", now, body))
    assert not verifier.is_valid(body, str(now), sign("another-secret", now, body))
    stale = now - 6 * 60
    assert not verifier.is_valid(body, str(stale), sign("the-secret", stale, body))


def test_builders_mirror_the_documented_field_sets() -> None:
    command = slash_command_payload("/rollback", "checkout")
    assert set(command) >= {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "response_url",
        "trigger_id",
    }
    assert all(isinstance(v, str) for v in command.values())
    view = {**MODAL, "id": "V0VIEW0001", "hash": "1.abc"}
    submission = view_submission_payload(view, {"reason": "bad deploy"})
    values = submission["view"]["state"]["values"]
    assert values["reason_block"]["reason"] == {"type": "plain_text_input", "value": "bad deploy"}
    assert values["revision_block"]["revision"] == {
        "type": "static_select",
        "selected_option": None,
    }
    event = event_callback_payload(message_event("hi"))
    assert event["event_id"].startswith("Ev")
    assert event["type"] == "event_callback"
    assert urlencode(command)  # form-encodable as is


# ---------------------------------------------------------------------------------------------
# Socket Mode through slack_bolt's aiohttp handler
# ---------------------------------------------------------------------------------------------


@asynccontextmanager
async def socket_mode_app(
    slack_api: FakeSlackWebApi, register: Callable[[AsyncApp], None]
) -> AsyncIterator[AsyncSocketModeHandler]:
    client = AsyncWebClient(token=slack_api.bot_token, base_url=slack_api.api_url)
    app = AsyncApp(client=client, signing_secret="unused-in-socket-mode")
    register(app)
    handler = AsyncSocketModeHandler(app, app_token=slack_api.app_token, ping_interval=1)
    await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
    try:
        await slack_api.socket_mode.wait_connected(timeout=5)
        yield handler
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated


async def test_socket_mode_delivers_and_records_acks(slack_api: FakeSlackWebApi) -> None:
    commands: list[Mapping[str, Any]] = []
    events: list[Mapping[str, Any]] = []

    def register(app: AsyncApp) -> None:
        async def on_rollback(ack: AsyncAck, command: dict[str, Any]) -> None:
            commands.append(command)
            await ack(text=f"Looking at {command['text']}…")

        async def on_message(body: dict[str, Any]) -> None:
            events.append(body)

        app.command("/rollback")(on_rollback)
        app.event("message")(on_message)

    async with socket_mode_app(slack_api, register):
        opened = slack_api.calls("apps.connections.open")
        assert opened[0].token == slack_api.app_token

        ack = await slack_api.socket_mode.deliver_slash_command(
            slash_command_payload("/rollback", "checkout")
        )
        assert ack.payload == {"text": "Looking at checkout…"}
        assert ack.elapsed < 3
        envelope = slack_api.socket_mode.envelopes[0]
        assert envelope.type == "slash_commands"
        assert envelope.accepts_response_payload is True

        event_ack = await slack_api.socket_mode.deliver_event(
            event_callback_payload(message_event("is checkout ok?")),
            retry_attempt=1,
            retry_reason="timeout",
        )
        assert event_ack.payload is None
        assert slack_api.socket_mode.envelopes[1].to_json()["retry_attempt"] == 1
        await slack_api.wait_for(lambda: events, timeout=2)

        # Slack asks clients to reconnect from time to time; the client gets a new URL.
        await slack_api.socket_mode.send_disconnect()
        await slack_api.socket_mode.wait_connected(count=2, timeout=5)
        again = await slack_api.socket_mode.deliver_slash_command(
            slash_command_payload("/rollback", "payments")
        )
        assert again.payload == {"text": "Looking at payments…"}
        assert len(slack_api.calls("apps.connections.open")) == 2

    assert [c["text"] for c in commands] == ["checkout", "payments"]
    assert events[0]["event"]["text"] == "is checkout ok?"


async def test_socket_mode_interactive_click(slack_api: FakeSlackWebApi) -> None:
    def register(app: AsyncApp) -> None:
        async def on_click(ack: AsyncAck) -> None:
            await ack()

        app.action("rollback_confirm")(on_click)

    client = AsyncWebClient(token=slack_api.bot_token, base_url=slack_api.api_url)
    posted = await client.chat_postMessage(
        channel=DEFAULT_CHANNEL_ID, text="checkout is failing", blocks=BUTTON_BLOCKS
    )
    sender = SlackRequestSender("unused", slack=slack_api)
    payload = sender.build_click(DEFAULT_CHANNEL_ID, posted["ts"], "rollback_confirm")
    async with socket_mode_app(slack_api, register):
        ack = await slack_api.socket_mode.deliver_interactive(payload)
    assert ack.envelope_id == slack_api.socket_mode.envelopes[0].envelope_id
    assert slack_api.socket_mode.envelopes[0].accepts_response_payload is False
