"""The confirmation modal's submit: re-authorize, then start one rollback (which re-reads the
cluster and refuses a stale click)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.payloads import BadPayload, ConfirmContext
from bot.adapters.slack.render import escape
from bot.config.catalog import Catalog, ServiceRef
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.models import Thread
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.approvals import Approvals
from bot.usecases.rollback.requests import RollbackRequest, StartResult
from bot.usecases.rollback.runner import RolloutRunner
from handlers.errors import answering_failures
from handlers.identity import from_elsewhere
from handlers.replies import tell

ERROR_TEXT = 150  # what Slack shows under an input block


def submitted_reason(view: dict[str, Any]) -> str | None:
    values = ((view.get("state") or {}).get("values") or {}).get(action_ids.REASON_BLOCK) or {}
    value = (values.get(action_ids.REASON_INPUT) or {}).get("value")
    return value.strip() or None if isinstance(value, str) else None


def submitted_break_glass(view: dict[str, Any]) -> bool:
    values = ((view.get("state") or {}).get("values") or {}).get(action_ids.BREAK_GLASS_BLOCK)
    chosen = ((values or {}).get(action_ids.BREAK_GLASS_INPUT) or {}).get("selected_options")
    return isinstance(chosen, list) and any(
        isinstance(o, dict) and o.get("value") == "break-glass" for o in chosen
    )


def slack_name(user: dict[str, Any]) -> str | None:
    """ "@alice" from an interaction's user object, for records people read outside Slack."""
    name = user.get("username") or user.get("name")
    return f"@{name}" if name else None


def register(
    app: AsyncApp, catalog: Catalog, access: Access, runner: RolloutRunner, approvals: Approvals
) -> None:
    @app.view(action_ids.CONFIRM_VIEW)
    async def on_confirm(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        try:
            context, ref = confirmation_of(view, catalog)
        except (BadPayload, RollbackBotError) as exc:
            errors = {action_ids.REASON_BLOCK: str(exc)[:ERROR_TEXT]}
            await ack(response_action="errors", errors=errors)
            return
        reason = submitted_reason(view)
        if ref.reason_required and not reason:
            errors = {action_ids.REASON_BLOCK: f"A reason is required to roll back {ref.name}."}
            await ack(response_action="errors", errors=errors)
            return
        break_glass = submitted_break_glass(view)
        if break_glass and not reason:
            errors = {action_ids.REASON_BLOCK: "Breaking glass needs a reason."}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        async with answering_failures(body, None, client):
            await roll_back(body, context, ref, reason, client, break_glass=break_glass)

    async def roll_back(
        body: dict[str, Any],
        context: ConfirmContext,
        ref: ServiceRef,
        reason: str | None,
        client: AsyncWebClient,
        *,
        break_glass: bool = False,
    ) -> None:
        user = body["user"]["id"]
        # The last check before acting: group membership asked of Slack now, not from the cache.
        refusal = await access.authorize(
            ref, user, "confirmation", external=from_elsewhere(body), fresh=True
        )
        if refusal is not None:
            await tell(client, context.channel, user, blocks.denied_message(ref.name, refusal))
            return
        button = context.button
        asked = confirmed_request(body, context, ref, reason)
        # An abort only returns traffic to the version already serving as stable: it waits
        # for no approver (README "Argo Rollouts").
        needed = ref.entry.approvals if ref.entry and not button.abort else 0
        if needed and break_glass:
            refusal = await access.authorize_break_glass(
                ref, user, "break glass", external=from_elsewhere(body)
            )
            if refusal is not None:
                await tell(client, context.channel, user, blocks.denied_message(ref.name, refusal))
                return
            result = await approvals.break_glass(asked)
        elif needed:
            assert ref.entry is not None
            await approvals.ask(
                asked,
                from_version=button.from_version,
                needed=needed,
                minutes=ref.entry.approval_minutes,
            )
            return  # the request, in the thread, says the rest
        else:
            result = await runner.start(asked)
        await tell_result(client, context, ref, user, result)


def confirmation_of(view: dict[str, Any], catalog: Catalog) -> tuple[ConfirmContext, ServiceRef]:
    """The click a submitted modal confirms, and its service; BadPayload or the catalog's
    error when the modal was not made by this bot or names an unknown service."""
    context = ConfirmContext.decode(view.get("private_metadata") or "")
    return context, catalog.resolve(context.button.service)


def confirmed_request(
    body: dict[str, Any],
    context: ConfirmContext,
    ref: ServiceRef,
    reason: str | None,
    *,
    override: bool = False,
) -> RollbackRequest:
    """The rollback a submitted confirmation asks for, told in the clicked message's thread."""
    button = context.button
    return RollbackRequest(
        service=ref.name,
        target=ref.target,
        target_replicaset=button.target_replicaset,
        target_revision=button.target_revision,
        target_version=button.target_version,
        snapshot=button.snapshot,
        actor=body["user"]["id"],
        actor_name=slack_name(body["user"]),
        via="Slack",
        reason=reason,
        thread=Thread(
            channel=context.channel,
            thread_ts=context.thread_ts or context.message_ts,
            # Only a versions message is kept in step; an alert's message is the alert's.
            message_ts=context.message_ts if button.source == "command" else None,
        ),
        history_limit=ref.history_limit,
        gitops=ref.entry.gitops if ref.entry else "warn",
        override=override,
        abort=button.abort,
    )


async def tell_result(
    client: AsyncWebClient,
    context: ConfirmContext,
    ref: ServiceRef,
    user: str,
    result: StartResult,
) -> None:
    """What the person who confirmed is told when the rollback did not start. "started": the
    rollback's own task tells the thread and keeps the message in step."""
    button = context.button
    if result.outcome == "running" and result.run is not None:
        await tell(client, context.channel, user, blocks.already_running_message(result.run))
    elif result.outcome == "stale":
        # The runner refreshed a versions message in place; an alert's stays the alert's.
        notice = blocks.stale_message(
            ref.name, result.message, refreshed=button.source == "command"
        )
        where = context.thread_ts or context.message_ts
        await tell(client, context.channel, user, notice, thread_ts=where)
    elif result.outcome != "started":
        notice = blocks.notice(
            f"Not rolled back: {escape(result.message)}",
            ":warning:",
            plain=f"Not rolled back: {result.message}",
        )
        await tell(client, context.channel, user, notice)
