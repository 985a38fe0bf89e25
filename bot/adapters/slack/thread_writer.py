"""Posting in one Slack thread and editing what was posted there, through the scheduler: what
the rollback's and the switch's reporters share."""

from __future__ import annotations

from bot.adapters.slack.render import Message
from bot.adapters.slack.scheduled_client import ScheduledWebClient
from bot.adapters.slack.scheduler import Priority, sending_as


class ThreadWriter:
    def __init__(self, client: ScheduledWebClient, *, channel: str, thread_ts: str) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts

    async def _post(self, message: Message, priority: Priority = Priority.ROLLBACK) -> str:
        with sending_as(priority):
            response = await self._client.chat_postMessage(
                channel=self._channel,
                thread_ts=self._thread_ts,
                text=message.text,
                blocks=message.blocks,
            )
        return str(response["ts"])

    async def _update(self, ts: str, message: Message, priority: Priority) -> None:
        with sending_as(priority):
            await self._client.chat_update(
                channel=self._channel, ts=ts, text=message.text, blocks=message.blocks
            )
