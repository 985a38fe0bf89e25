"""The migration guard's break glass: an "Override migration guard" click (re-authorized: who
may roll the service back, and one of the catalog's break-glass people), its modal (the
service's name typed, a reason), and the submit (both checked again, then one rollback with the
override, recorded)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.payloads import BadPayload, ConfirmContext, RollbackButton
from bot.adapters.slack.render import escape
from bot.config.catalog import Catalog, ServiceRef
from bot.domain.errors import RollbackBotError
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.approvals import Approvals
from bot.usecases.rollback.ports import RunningRollbacks
from bot.usecases.rollback.preview import Previews
from bot.usecases.rollback.runner import RolloutRunner
from handlers.actions import clicked, not_here
from handlers.errors import answering_failures
from handlers.identity import from_elsewhere
from handlers.previews import changes_of, read_preview, refused_message
from handlers.replies import say_privately, tell
from handlers.views import (
    ERROR_TEXT,
    confirmation_of,
    confirmed_request,
    submitted_reason,
    tell_result,
)


def submitted_service(view: dict[str, Any]) -> str | None:
    values = ((view.get("state") or {}).get("values") or {}).get(
        action_ids.OVERRIDE_SERVICE_BLOCK
    ) or {}
    value = (values.get(action_ids.OVERRIDE_SERVICE_INPUT) or {}).get("value")
    return value.strip() if isinstance(value, str) else None


def register(
    app: AsyncApp,
    catalog: Catalog,
    access: Access,
    running: RunningRollbacks,
    previews: Previews,
    runner: RolloutRunner,
    approvals: Approvals,
) -> None:
    @app.action(action_ids.OVERRIDE_BUTTON_PATTERN)
    async def on_override_click(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await open_override(body, client, respond)

    async def open_override(
        body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        user = body["user"]["id"]
        button = RollbackButton.decode(body["actions"][0]["value"])
        ref = catalog.resolve(button.service)
        external = from_elsewhere(body)
        refusal = await access.authorize(ref, user, "override click", external=external)
        if refusal is None:
            refusal = await access.authorize_break_glass(
                ref, user, "override click", external=external
            )
        if refusal is not None:
            await say_privately(respond, blocks.denied_message(ref.name, refusal))
            return
        channel = body["channel"]["id"]
        elsewhere = await not_here(client, channel, running, ref)
        if elsewhere is not None:
            await say_privately(respond, elsewhere)
            return
        found = await read_preview(previews, ref, button, user, channel, override=True)
        if found is not None and found.plan is None:
            await say_privately(respond, refused_message(ref.name, found.refusal or "refused"))
            return
        if found is not None and found.plan is not None and found.plan.overridden is None:
            await say_privately(
                respond,
                blocks.notice(
                    f"The migration guard no longer blocks revision {button.target_revision}: "
                    f"ask `/rollback {escape(ref.name)}` again and use its button.",
                ),
            )
            return
        context = clicked(body, button)
        guard = (
            found.plan.overridden
            if found is not None and found.plan is not None and found.plan.overridden
            else "the migration guard blocks this revision"
        )
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=blocks.override_modal(context, guard, changes_of(found)),
        )

    @app.view(action_ids.OVERRIDE_VIEW)
    async def on_override_submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        try:
            context, ref = confirmation_of(view, catalog)
        except (BadPayload, RollbackBotError) as exc:
            errors = {action_ids.REASON_BLOCK: str(exc)[:ERROR_TEXT]}
            await ack(response_action="errors", errors=errors)
            return
        typed = submitted_service(view)
        if typed != ref.name:
            errors = {
                action_ids.OVERRIDE_SERVICE_BLOCK: f"Type {ref.name} exactly to confirm."[
                    :ERROR_TEXT
                ]
            }
            await ack(response_action="errors", errors=errors)
            return
        reason = submitted_reason(view)
        if not reason:
            errors = {action_ids.REASON_BLOCK: "Overriding the migration guard needs a reason."}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        async with answering_failures(body, None, client):
            await roll_back(body, context, ref, reason, client)

    async def roll_back(
        body: dict[str, Any],
        context: ConfirmContext,
        ref: ServiceRef,
        reason: str,
        client: AsyncWebClient,
    ) -> None:
        user = body["user"]["id"]
        external = from_elsewhere(body)
        refusal = await access.authorize(
            ref, user, "override confirmation", external=external, fresh=True
        )
        if refusal is None:
            refusal = await access.authorize_break_glass(
                ref, user, "override confirmation", external=external
            )
        if refusal is not None:
            await tell(client, context.channel, user, blocks.denied_message(ref.name, refusal))
            return
        asked = confirmed_request(body, context, ref, reason, override=True)
        # Break-glass people skip approvals too: a service that needs them is told so in the
        # thread and it is recorded (break glass), then the rollback starts with the override.
        needs_approval = bool(ref.entry and ref.entry.approvals)
        result = await (approvals.break_glass(asked) if needs_approval else runner.start(asked))
        await tell_result(client, context, ref, user, result)
