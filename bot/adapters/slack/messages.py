"""Messages the use cases keep in Slack, rendered here and sent through the Web API: the
versions message a rollback was asked from, and the alert groups' messages and replies."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import alert_blocks, blocks, digest_blocks
from bot.adapters.slack.render import Message
from bot.adapters.slack.scheduler import Priority, sending_as
from bot.domain.alerts.advice import Advice
from bot.domain.alerts.views import AlertGroupView, DigestView
from bot.domain.rollback.approvals import ApprovalRequest
from bot.domain.rollback.models import Thread
from bot.domain.rollback.views import ServiceView
from bot.domain.times import utc_now


class SlackMessages:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def _post(self, channel: str, message: Message, thread_ts: str | None = None) -> str:
        response = await self._client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=message.text, blocks=message.blocks
        )
        return str(response["ts"])

    async def _update(self, channel: str, ts: str, message: Message) -> None:
        await self._client.chat_update(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks
        )

    # -- the versions message (the runner's `VersionMessages`) ------------------------------

    async def lock(self, thread: Thread, view: ServiceView) -> None:
        if thread.message_ts is not None and view.running is not None:
            await self._update(
                thread.channel, thread.message_ts, blocks.locked_message(view, view.running)
            )

    async def refresh(self, thread: Thread, view: ServiceView) -> None:
        if thread.message_ts is not None:
            await self._update(thread.channel, thread.message_ts, blocks.versions_message(view))

    # -- requests for approval (the approvals use case's `ApprovalMessages`) -----------------

    async def post_request(self, request: ApprovalRequest, approvers: Sequence[str]) -> str:
        message = blocks.approval_request_message(request, approvers, at=utc_now())
        return await self._post(request.thread.channel, message, request.thread.thread_ts)

    async def update_request(self, request: ApprovalRequest, approvers: Sequence[str]) -> None:
        if request.request_ts is None:
            return
        message = blocks.approval_request_message(request, approvers, at=utc_now())
        await self._update(request.thread.channel, request.request_ts, message)

    async def announce_break_glass(
        self,
        thread: Thread,
        requester: str,
        service: str,
        to_version: str,
        reason: str,
        approvers: Sequence[str],
    ) -> None:
        message = blocks.break_glass_message(requester, service, to_version, reason, approvers)
        await self._post(thread.channel, message, thread.thread_ts)

    # -- alert messages and storm digests (the alert use case's `AlertMessages` and
    # `DigestMessages`): they go after everything a rollback sends (the scheduler's priorities).

    async def post(self, channel: str, view: AlertGroupView) -> str:
        with sending_as(Priority.ALERTS):
            return await self._post(channel, alert_blocks.alert_message(view))

    async def update(self, channel: str, ts: str, view: AlertGroupView) -> None:
        with sending_as(Priority.ALERTS):
            await self._update(channel, ts, alert_blocks.alert_message(view))

    async def note_resolved(self, channel: str, ts: str, view: AlertGroupView) -> None:
        with sending_as(Priority.ALERTS):
            await self._post(channel, alert_blocks.resolved_note(view), thread_ts=ts)

    async def reply(
        self, channel: str, thread_ts: str, view: ServiceView, title: str, advice: Advice | None
    ) -> str:
        with sending_as(Priority.ALERTS):
            return await self._post(
                channel, alert_blocks.alert_reply(view, title, advice), thread_ts=thread_ts
            )

    async def post_digest(self, channel: str, view: DigestView) -> str:
        with sending_as(Priority.ALERTS):
            return await self._post(channel, digest_blocks.digest_message(view))

    async def update_digest(
        self, channel: str, ts: str, view: DigestView, list_ts: str | None
    ) -> str | None:
        with sending_as(Priority.ALERTS):
            await self._update(channel, ts, digest_blocks.digest_message(view))
            if not digest_blocks.digest_overflows(view):
                return list_ts
            listing = digest_blocks.digest_list_message(view)
            if list_ts is None:
                return await self._post(channel, listing, thread_ts=ts)
            await self._update(channel, list_ts, listing)
            return list_ts
