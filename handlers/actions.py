"""A "Roll back to X" click: re-authorize, then open the confirmation."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.payloads import ConfirmContext, RollbackButton
from bot.adapters.slack.render import Message
from bot.config.catalog import Catalog, ServiceRef
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.gitops import GitopsGuard
from bot.usecases.rollback.ports import RunningRollbacks
from bot.usecases.rollback.preview import Previews
from handlers.errors import answering_failures
from handlers.gitops import gitops_note, gitops_refused_message
from handlers.identity import from_elsewhere
from handlers.previews import changes_of, read_preview, refused_message
from handlers.replies import bot_is_in, say_privately

NOT_INVITED_TO_ACT = (
    "I am not in this channel, so nobody here would see the rollback's progress and outcome. "
    "Invite me (`/invite @rollback-bot`), then click again. Nothing was changed."
)


async def not_here(
    client: AsyncWebClient, channel: str, running: RunningRollbacks, ref: ServiceRef
) -> Message | None:
    """Why a click may not open a confirmation now: the bot is not in the channel (nobody
    would see the rollback's story in its thread), or a rollback of it runs already."""
    if not await bot_is_in(client, channel):
        return blocks.notice(NOT_INVITED_TO_ACT, ":warning:")
    run = running.running(ref.target)
    return blocks.already_running_message(run) if run is not None else None


def clicked(body: dict[str, Any], button: RollbackButton) -> ConfirmContext:
    """The confirmation's context: the click, and the message (and thread) it was in."""
    message = body.get("message") or {}
    return ConfirmContext(
        button=button,
        channel=body["channel"]["id"],
        message_ts=message.get("ts") or body["container"]["message_ts"],
        thread_ts=message.get("thread_ts"),
    )


def register(
    app: AsyncApp,
    catalog: Catalog,
    access: Access,
    running: RunningRollbacks,
    *,
    previews: Previews,
    gitops: GitopsGuard | None = None,
) -> None:
    @app.action(action_ids.ABORT_BUTTON)
    @app.action(action_ids.ROLLBACK_BUTTON_PATTERN)
    async def on_rollback_click(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await open_confirmation(body, client, respond)

    async def open_confirmation(
        body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        user = body["user"]["id"]
        action = body["actions"][0]
        button = RollbackButton.decode(action["value"])
        ref = catalog.resolve(button.service)
        refusal = await access.authorize(ref, user, "click", external=from_elsewhere(body))
        if refusal is not None:
            await say_privately(respond, blocks.denied_message(ref.name, refusal))
            return
        channel = body["channel"]["id"]
        elsewhere = await not_here(client, channel, running, ref)
        if elsewhere is not None:
            await say_privately(respond, elsewhere)
            return
        # What it changes, or why it is refused (the migration guard: a forged or old button),
        # and the GitOps that would revert it: read together, so the trigger's 3 s suffice. An
        # abort changes no template and nothing GitOps reverts.
        if button.abort:
            found, note = None, None
        else:
            found, note = await asyncio.gather(
                read_preview(previews, ref, button, user, channel), gitops_note(gitops, ref)
            )
        if found is not None and found.plan is None:
            await say_privately(respond, refused_message(ref.name, found.refusal or "refused"))
            return
        if note is not None and note.action == "refuse":
            await say_privately(respond, gitops_refused_message(ref.name, note))
            return
        context = clicked(body, button)
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=blocks.confirm_modal(
                context,
                ref.reason_required,
                # Its block says the version was rolled back from: the modal says it too.
                known_bad=blocks.clicked_known_bad(action.get("block_id")),
                approvals=ref.entry.approvals if ref.entry and not button.abort else 0,
                changes=changes_of(found),
                changes_unread=found is None and not button.abort,
                gitops=note,
            ),
        )
