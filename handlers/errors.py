"""What every listener does when its work fails, in one place: the person who acted is told
privately in one sentence, nothing else of the error leaves the bot, and unexpected errors are
logged with their traceback.

Listeners ack first and then do their work inside `answering_failures`. Bolt's own error handler
(`app.error`, registered here too, for anything raised before the ack) cannot be the only net:
in async mode, when a listener raises right after `ack()`, Bolt resets the acknowledgement to
None before its dispatcher has seen it, so the request waits out the 3-second ack timeout and is
answered 404 ("didn't call ack()").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import blocks
from bot.adapters.slack.payloads import BadPayload, ConfirmContext
from bot.adapters.slack.render import Message, escape
from bot.domain.errors import RollbackBotError, UnknownService
from handlers.replies import say_privately, tell

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong on my side; it is logged. Try again."


def notice_for(error: Exception, body: dict[str, Any]) -> Message:
    """The private answer to a failed command, click or confirmation. The error's sentence can
    carry outside text (a typed service name, the API server's message): shown escaped."""
    confirming = body.get("type") == "view_submission"
    if isinstance(error, UnknownService):
        said, emoji = str(error), ":grey_question:"
    elif isinstance(error, BadPayload):
        said, emoji = str(error), ":warning:"
    elif isinstance(error, RollbackBotError):
        said, emoji = (f"Not rolled back: {error}" if confirming else str(error)), ":x:"
    else:
        said, emoji = UNEXPECTED, ":x:"
    return blocks.notice(escape(said), emoji, plain=said)


def _log(error: Exception, body: dict[str, Any]) -> None:
    what = str(body.get("type") or ("slash_command" if "command" in body else "request"))
    if isinstance(error, RollbackBotError | BadPayload):
        log.warning("%s not done: %s", what, error)
    elif isinstance(error, SlackApiError):
        log.warning("%s not done: Slack answered %s", what, error.response.get("error"))
    else:
        log.error("%s failed", what, exc_info=error)


@asynccontextmanager
async def answering_failures(
    body: dict[str, Any], respond: AsyncRespond | None, client: AsyncWebClient
) -> AsyncIterator[None]:
    """Run a listener's work after its ack; a failure is answered by `answer_failure`."""
    try:
        yield
    except Exception as error:
        await answer_failure(error, body, respond, client)


def register(app: AsyncApp) -> None:
    app.error(answer_failure)


async def answer_failure(
    error: Exception, body: dict[str, Any], respond: AsyncRespond | None, client: AsyncWebClient
) -> None:
    """Log the failure and tell the person who acted, privately, in one sentence."""
    _log(error, body)
    message = notice_for(error, body)
    try:
        if body.get("response_url") and respond is not None:
            await say_privately(respond, message)
        elif body.get("type") == "view_submission":
            user = (body.get("user") or {}).get("id")
            metadata = (body.get("view") or {}).get("private_metadata") or ""
            channel = ConfirmContext.decode(metadata).channel
            if user:
                await tell(client, channel, str(user), message)
    except (SlackApiError, BadPayload, OSError) as exc:
        log.warning("could not tell the user what failed: %s", type(exc).__name__)
