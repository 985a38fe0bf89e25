"""How the listeners answer in Slack: privately to the person who acted, or to the channel."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import blocks
from bot.adapters.slack.render import Message

log = logging.getLogger(__name__)

NOT_INVITED = (
    "Invite me to this channel (`/invite @rollback-bot`) so I can keep this message and its "
    "thread up to date."
)


async def say_privately(respond: AsyncRespond, message: Message) -> None:
    await respond(
        response_type="ephemeral", replace_original=False, text=message.text, blocks=message.blocks
    )


async def tell(
    client: AsyncWebClient,
    channel: str,
    user: str,
    message: Message,
    *,
    thread_ts: str | None = None,
) -> None:
    """Privately, where there is no response_url (a modal's submission); in `thread_ts`'s
    thread when given, next to the message it is about."""
    await client.chat_postEphemeral(
        channel=channel, user=user, text=message.text, blocks=message.blocks, thread_ts=thread_ts
    )


async def post_in_channel(
    client: AsyncWebClient, respond: AsyncRespond, channel: str, message: Message
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
            blocks=[*message.blocks, *blocks.notice(NOT_INVITED).blocks],
        )
        return None


async def bot_is_in(client: AsyncWebClient, channel: str) -> bool:
    """Whether the bot is a member of `channel`, so the rollback's thread can be posted there.
    A channel Slack will not describe (a private one the bot is not in) is not; an app without
    the scope to ask is given the benefit of the doubt."""
    try:
        response = await client.conversations_info(channel=channel)
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error == "channel_not_found":
            return False
        if error == "missing_scope":
            log.warning("cannot check channel membership: the app lacks channels:read/groups:read")
            return True
        raise
    return bool((response.get("channel") or {}).get("is_member"))
