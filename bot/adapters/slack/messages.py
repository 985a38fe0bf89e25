"""Messages the use cases keep in Slack, rendered here and sent through the Web API: the
versions message a rollback was asked from, and the alert groups' messages and replies."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import alert_blocks, blocks
from bot.adapters.slack.render import Message
from bot.domain.alerts.advice import Advice
from bot.domain.alerts.views import AlertGroupView
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

    # -- alert messages (the alert use case's `AlertMessages`) -------------------------------

    async def post(self, channel: str, view: AlertGroupView) -> str:
        return await self._post(channel, alert_blocks.alert_message(view))

    async def update(self, channel: str, ts: str, view: AlertGroupView) -> None:
        await self._update(channel, ts, alert_blocks.alert_message(view))

    async def note_resolved(self, channel: str, ts: str, view: AlertGroupView) -> None:
        await self._post(channel, alert_blocks.resolved_note(view), thread_ts=ts)

    async def reply(
        self, channel: str, thread_ts: str, view: ServiceView, title: str, advice: Advice | None
    ) -> str:
        return await self._post(
            channel, alert_blocks.alert_reply(view, title, advice), thread_ts=thread_ts
        )
