"""Automatic rollback's watch in Slack (the analysis use case's `AnalysisMessages`): the watch
message in the service's channel, edited as the watch ends, and its thread (notices, the verdict,
the chart).

Priorities (`scheduler.py`): the watch message, its notices and its quiet endings wait behind a
rollback's own messages, as progress does; a breach (its verdict, and the edit saying what was
done) goes first. A Slack failure is raised as `SlackUnavailable`, a `RollbackBotError`: the
watch tells it from its own bugs (a notice that could not be posted is logged, and the watch
goes on).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import analysis_blocks
from bot.adapters.slack.render import Message
from bot.adapters.slack.scheduler import Priority, SchedulerClosed, sending_as
from bot.domain.analysis.report import Report
from bot.domain.analysis.watching import WatchStatus
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.models import Thread
from bot.domain.rollback.views import ServiceView

FILENAME_TEXT = 80


class SlackUnavailable(RollbackBotError):
    """Slack did not take a message of the watch (it answered an error, or could not be
    reached)."""


@asynccontextmanager
async def _said(what: str) -> AsyncIterator[None]:
    try:
        yield
    except SlackApiError as exc:
        raise SlackUnavailable(f"Slack refused {what}: {exc.response.get('error')}") from exc
    except (SlackClientError, aiohttp.ClientError, TimeoutError, SchedulerClosed) as exc:
        raise SlackUnavailable(f"Slack could not be reached for {what}: {exc}") from exc


def chart_filename(title: str) -> str:
    """A file name from the chart's title: letters, digits, dots and dashes only."""
    stem = re.sub(r"[^A-Za-z0-9.]+", "-", title).strip("-.")[:FILENAME_TEXT].strip("-.")
    return f"{stem or 'analysis'}.png"


class SlackAnalysisMessages:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        # The status each running watch's message shows, by thread: its notices name the
        # rollout in their notification text. A watch taken over from another replica has none
        # until it ends; its notices then say only what happened.
        self._shown: dict[Thread, WatchStatus] = {}

    def _showing(self, thread: Thread, status: WatchStatus) -> None:
        if status.phase.ended:
            self._shown.pop(thread, None)
        else:
            self._shown[thread] = status

    async def _post(
        self,
        channel: str,
        message: Message,
        thread_ts: str | None = None,
        *,
        reply_broadcast: bool | None = None,
    ) -> str:
        response = await self._client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            reply_broadcast=reply_broadcast,
            text=message.text,
            blocks=message.blocks,
        )
        return str(response["ts"])

    async def post_watching(self, channel: str, status: WatchStatus) -> Thread:
        message = analysis_blocks.watch_message(status)
        with sending_as(Priority.PROGRESS):
            async with _said("the watch message"):
                ts = await self._post(channel, message)
        thread = Thread(channel, ts)
        self._showing(thread, status)
        return thread

    async def update(self, thread: Thread, status: WatchStatus) -> None:
        self._showing(thread, status)
        message = analysis_blocks.watch_message(status)
        # What was done about a breach is said at once; a quiet ending can wait.
        priority = Priority.ROLLBACK if status.phase.breach else Priority.PROGRESS
        with sending_as(priority):
            async with _said("the edit of the watch message"):
                await self._client.chat_update(
                    channel=thread.channel,
                    ts=thread.thread_ts,
                    text=message.text,
                    blocks=message.blocks,
                )

    async def notice(self, thread: Thread, text: str) -> None:
        message = analysis_blocks.notice_message(self._shown.get(thread), text)
        with sending_as(Priority.PROGRESS):
            async with _said("a notice of the watch"):
                await self._post(thread.channel, message, thread.thread_ts)

    async def verdict(
        self,
        thread: Thread,
        status: WatchStatus,
        report: Report,
        *,
        offer: ServiceView | None,
        loud: bool,
    ) -> None:
        message = analysis_blocks.verdict_message(status, report, offer=offer)
        async with _said("the verdict"):
            await self._post(thread.channel, message, thread.thread_ts, reply_broadcast=loud)

    async def chart(self, thread: Thread, title: str, png: bytes) -> None:
        async with _said("the chart"):
            await self._client.files_upload_v2(
                channel=thread.channel,
                thread_ts=thread.thread_ts,
                content=png,
                filename=chart_filename(title),
                title=title,
            )
