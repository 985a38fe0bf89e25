"""Approve / Reject on a request for approval: re-authorize the approver (groups asked afresh),
then count the click; the request's message in the thread shows the result to everyone."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.render import escape
from bot.config.catalog import Catalog
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.approvals import Approvals
from handlers.errors import answering_failures
from handlers.identity import from_elsewhere
from handlers.replies import say_privately

REQUEST_ID = re.compile(r"[0-9a-f]{12}")


def register(app: AsyncApp, catalog: Catalog, access: Access, approvals: Approvals) -> None:
    @app.action(action_ids.APPROVE_BUTTON)
    async def on_approve(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await decide(body, respond, approve=True)

    @app.action(action_ids.REJECT_BUTTON)
    async def on_reject(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await decide(body, respond, approve=False)

    async def decide(body: dict[str, Any], respond: AsyncRespond, *, approve: bool) -> None:
        user = body["user"]["id"]
        request_id = str(body["actions"][0].get("value") or "")
        request = await approvals.find(request_id) if REQUEST_ID.fullmatch(request_id) else None
        if request is None:
            notice = blocks.notice("This request for approval is not known (any more).")
            await say_privately(respond, notice)
            return
        ref = catalog.resolve(request.service)
        # Whoever asked may withdraw their own request; everyone else must be an approver.
        withdrawing = not approve and user == request.requester
        refusal = (
            None
            if withdrawing
            else await access.authorize_approval(ref, user, external=from_elsewhere(body))
        )
        if refusal is not None:
            await say_privately(respond, blocks.denied_message(ref.name, refusal))
            return
        if approve:
            # The rollback runs as the person who asked, maybe long after: still allowed?
            asker = await access.refusal(ref, request.requester, fresh=True)
            if asker is not None:
                said = f"The person who asked may no longer roll {escape(ref.name)} back ({asker})."
                await say_privately(respond, blocks.notice(said, ":warning:"))
                return
            refusal = await approvals.approve(request_id, user)
        else:
            refusal = await approvals.reject(request_id, user)
        if refusal is not None:
            what = "approve" if approve else "reject"
            notice = blocks.notice(f"You cannot {what} it: {refusal}.", ":warning:")
            await say_privately(respond, notice)
