"""The storm digest's picker, "Roll back another service…": a firing service that had no line of
its own in the digest. Its offer is posted in the digest's thread for everyone, saying who picked
it, and its button then works as any alert message's (re-authorized at the click)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids, blocks, digest_blocks
from bot.adapters.slack.payloads import BadPayload
from bot.adapters.slack.render import clip, escape
from bot.config.catalog import Catalog
from bot.usecases.rollback.views import ServiceViews
from handlers.after_ack import AfterAck
from handlers.errors import answering_failures
from handlers.replies import say_privately

NOT_OURS = "this choice was not made by this version of rollback-bot"


def picked_service(body: dict[str, Any]) -> str:
    """The service chosen, as the digest rendered it: one of its option values (anyone can
    send anything here, so anything else is refused)."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else {}
    option = action.get("selected_option") if isinstance(action, dict) else None
    value = option.get("value") if isinstance(option, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > digest_blocks.OPTION_VALUE:
        raise BadPayload(NOT_OURS)
    return value


def digest_thread(body: dict[str, Any]) -> str:
    """The thread the offer goes in: the digest's own (the picker is on the digest)."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    ts = message.get("thread_ts") or message.get("ts") or container.get("message_ts")
    if not isinstance(ts, str) or not ts:
        raise BadPayload(NOT_OURS)
    return ts


def register(
    app: AsyncApp,
    catalog: Catalog,
    views: ServiceViews,
    *,
    after_ack: AfterAck | None = None,
) -> None:
    @app.action(action_ids.DIGEST_PICK)
    async def on_digest_pick(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        # Reading the cluster waits its turn, as a command's does: a storm brings many clicks.
        turn: AbstractAsyncContextManager[Any] = (
            after_ack if after_ack is not None else nullcontext()
        )
        async with turn, answering_failures(body, respond, client):
            await offer_picked(body, client, respond)

    async def offer_picked(
        body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        user = body["user"]["id"]
        channel = body["channel"]["id"]
        name = picked_service(body)
        thread = digest_thread(body)
        ref = catalog.resolve(name)
        if ref.entry is None:
            # The digest offers catalog services only: a Deployment named otherwise is not ours
            # to show here (`/rollback` still answers whoever may name it).
            said = f"{clip(name, 150)} is not a service of the catalog."
            await say_privately(respond, blocks.notice(escape(said), ":grey_question:", plain=said))
            return
        view = await views.offer(ref, user, channel)
        message = digest_blocks.picked_reply(view, user)
        await client.chat_postMessage(
            channel=channel, thread_ts=thread, text=message.text, blocks=message.blocks
        )
