"""The GitOps guard's messages in the rollback's Slack thread (the `GitopsNotices` port)."""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import gitops_blocks
from bot.adapters.slack.render import Message
from bot.adapters.slack.scheduler import Priority, sending_as
from bot.domain.rollback.gitops import Managed, Suspension
from bot.domain.rollback.models import Thread


class SlackGitopsNotices:
    def __init__(self, client: AsyncWebClient, *, reminder_every: timedelta) -> None:
        self._client = client
        self._every = reminder_every

    async def _post(self, thread: Thread, message: Message) -> None:
        await self._client.chat_postMessage(
            channel=thread.channel,
            thread_ts=thread.thread_ts,
            text=message.text,
            blocks=message.blocks,
        )

    async def suspended(self, thread: Thread, managed: Managed, suspension: Suspension) -> None:
        await self._post(thread, gitops_blocks.suspended_message(managed, suspension, self._every))

    async def reminder(self, thread: Thread, managed: Managed, now: datetime) -> None:
        if managed.state is None or managed.state.suspension is None:
            return
        message = gitops_blocks.reminder_message(managed, managed.state.suspension, now)
        # A reminder can wait for a rollback's own messages, as progress does.
        with sending_as(Priority.PROGRESS):
            await self._post(thread, message)

    async def resumed(
        self, thread: Thread, managed: Managed, actor: str, warning: str | None
    ) -> None:
        await self._post(thread, gitops_blocks.resumed_message(managed, actor, warning))
