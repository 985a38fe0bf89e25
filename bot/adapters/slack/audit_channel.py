"""The catalog's `audit_channel`: one line per finished rollback (succeeded, failed, unknown,
timed out, abandoned) with a link to its thread (`chat.getPermalink`). An audit sink, posting
in the background: a slow Slack never holds up the rollback it reports on."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.blocks import audit_channel_message
from bot.domain.audit import AuditRecord, Step
from bot.domain.rollback.models import Deployment

log = logging.getLogger(__name__)

FINISHED = frozenset({Step.SUCCEEDED, Step.FAILED, Step.UNKNOWN, Step.TIMED_OUT, Step.ABANDONED})


class AuditChannelSink:
    def __init__(self, client: AsyncWebClient, channel: str) -> None:
        self._client = client
        self.channel = channel
        self._posting: set[asyncio.Task[None]] = set()

    async def write(self, record: AuditRecord, deployment: Deployment | None) -> None:
        if record.step not in FINISHED:
            return
        task = asyncio.create_task(self._post(record), name="audit-channel")
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _permalink(self, record: AuditRecord) -> str | None:
        if not record.channel or not record.thread_ts:
            return None  # a rollback from the CLI has no thread
        try:
            answer = await self._client.chat_getPermalink(
                channel=record.channel, message_ts=record.thread_ts
            )
        except SlackApiError as exc:
            log.warning(
                "no link to the thread of %s's rollback in the audit channel: %s",
                record.service,
                exc.response.get("error"),
            )
            return None
        link = answer.get("permalink")
        return link if isinstance(link, str) else None

    async def _post(self, record: AuditRecord) -> None:
        try:
            message = audit_channel_message(record, await self._permalink(record))
            await self._client.chat_postMessage(
                channel=self.channel, text=message.text, blocks=message.blocks
            )
        except Exception as exc:  # a lost line must be said, never raised into a rollback
            log.error(
                "the audit channel %s did not get the outcome of %s's rollback (%s): %s",
                self.channel,
                record.service,
                record.step,
                exc,
            )

    async def close(self, grace: float) -> None:
        """Wait up to `grace` seconds for the lines still being posted."""
        if self._posting:
            await asyncio.wait(set(self._posting), timeout=grace)
