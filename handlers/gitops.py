"""GitOps that would revert a rollback, in Slack: the check a click makes before its
confirmation opens, and the "Resume auto-sync" button (re-authorized like a rollback of the
service, recorded by the use case, which warns first when Git may still name the bad version)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import blocks, gitops_blocks
from bot.adapters.slack.gitops_blocks import RESUME_ANYWAY_BUTTON, RESUME_BUTTON, ResumeButton
from bot.adapters.slack.render import Message
from bot.config.catalog import Catalog, ServiceRef
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.gitops import GitopsNote
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.gitops import GitopsGuard
from handlers.errors import answering_failures
from handlers.identity import from_elsewhere
from handlers.replies import say_privately

log = logging.getLogger(__name__)

# A click's modal must open within Slack's 3 s trigger: the GitOps check gets part of that.
# Without its answer the modal opens without the note; the runner checks again before acting.
CLICK_CHECK_SECONDS = 1.5


async def gitops_note(guard: GitopsGuard | None, ref: ServiceRef) -> GitopsNote | None:
    if guard is None:
        return None
    try:
        async with asyncio.timeout(CLICK_CHECK_SECONDS):
            return await guard.note(ref.target, ref.entry.gitops if ref.entry else None)
    except (TimeoutError, RollbackBotError) as exc:
        log.warning("could not check the GitOps of %s before confirming: %s", ref.qualified, exc)
        return None


def gitops_refused_message(service: str, note: GitopsNote) -> Message:
    return gitops_blocks.refused_message(service, note.managed)


def register(app: AsyncApp, catalog: Catalog, access: Access, guard: GitopsGuard) -> None:
    @app.action(RESUME_BUTTON)
    async def on_resume(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await resume(body, respond, force=False)

    @app.action(RESUME_ANYWAY_BUTTON)
    async def on_resume_anyway(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await resume(body, respond, force=True)

    async def resume(body: dict[str, Any], respond: AsyncRespond, *, force: bool) -> None:
        user = body["user"]["id"]
        button = ResumeButton.decode(body["actions"][0].get("value"))
        ref = catalog.resolve(button.service)
        # The same people who may roll the service back, asked again now.
        refusal = await access.authorize(
            ref, user, "resume auto-sync", external=from_elsewhere(body), fresh=True
        )
        if refusal is not None:
            await say_privately(respond, blocks.denied_message(ref.name, refusal))
            return
        result = await guard.resume(ref.target, user, "Slack", force=force)
        if result.outcome == "warn":
            await say_privately(
                respond, gitops_blocks.resume_anyway_message(ref.name, result.message)
            )
        elif result.outcome == "not_suspended":
            await say_privately(respond, gitops_blocks.resume_notice(result.message))
        # "resumed": told in the rollback's thread by the use case.
