"""`/rollback [status|history|help] SERVICE`: ack at once, then answer in the channel."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.audit import Step
from bot.domain.errors import RollbackBotError, UnknownService
from bot.adapters.slack import blocks
from handlers.deps import Deps
from bot.usecases.rollback.views import service_view

log = logging.getLogger(__name__)

SUBCOMMANDS = ("status", "history")


async def post_in_channel(
    client: AsyncWebClient, respond: AsyncRespond, channel: str, message: blocks.Message
) -> str | None:
    """Post where everyone sees it; the ts, or None when only response_url could carry it."""
    try:
        response = await client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks
        )
        return str(response["ts"])
    except SlackApiError as exc:
        if exc.response.get("error") not in ("not_in_channel", "channel_not_found"):
            raise
        # The bot was not invited: the command's response_url still reaches the channel.
        await respond(
            response_type="in_channel",
            text=message.text,
            blocks=[
                *message.blocks,
                blocks.notice(
                    "Invite me to this channel (`/invite @rollback-bot`) so I can keep this "
                    "message and its thread up to date."
                ).blocks[0],
            ],
        )
        return None


async def say_privately(respond: AsyncRespond, message: blocks.Message) -> None:
    await respond(
        response_type="ephemeral",
        replace_original=False,
        text=message.text,
        blocks=message.blocks,
    )


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command(deps.command)
    async def on_rollback(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user = command["user_id"]
        channel = command["channel_id"]
        words = (command.get("text") or "").split()
        try:
            if not words or words[0] == "help" or (words[0] in SUBCOMMANDS and len(words) < 2):
                await say_privately(respond, await help_for(deps, user))
                return
            kind, name = (words[0], words[1]) if words[0] in SUBCOMMANDS else ("versions", words[0])
            ref = deps.catalog.resolve(name)
            view = await service_view(deps, ref, user)
            if kind == "status":
                await post_in_channel(client, respond, channel, blocks.status_message(view))
                return
            if kind == "history":
                await post_in_channel(client, respond, channel, blocks.history_message(view))
                return
            await post_in_channel(client, respond, channel, blocks.versions_message(view))
            deployment = view.history.deployment
            await deps.record(
                Step.ASKED,
                ref,
                user,
                deployment,
                from_version=deployment.version,
                from_revision=deployment.revision,
                channel=channel,
            )
        except UnknownService as exc:
            await say_privately(respond, blocks.notice(str(exc), ":grey_question:"))
        except RollbackBotError as exc:
            await say_privately(respond, blocks.notice(str(exc), ":x:"))
        except Exception:
            log.exception("/rollback %s failed", " ".join(words))
            await say_privately(
                respond,
                blocks.notice("Something went wrong on my side; it is logged. Try again.", ":x:"),
            )


async def help_for(deps: Deps, user: str) -> blocks.Message:
    services = [
        (ref.name, ref.qualified, await deps.may_roll_back(ref, user))
        for ref in deps.catalog.refs()
    ]
    return blocks.help_message(deps.command, services)
