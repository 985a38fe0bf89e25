"""The confirmation modal's submit: re-authorize, re-read the cluster, start one rollback."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import RollbackBotError
from bot.domain.rollback.models import RunInfo
from bot.usecases.rollback.runner import RollbackRequest
from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.payloads import BadPayload, ConfirmContext
from bot.adapters.slack.reporter import ThreadReporter
from handlers.actions import refresh_message
from handlers.deps import Deps
from bot.usecases.rollback.views import service_view

log = logging.getLogger(__name__)


def submitted_reason(view: dict[str, Any]) -> str | None:
    values = ((view.get("state") or {}).get("values") or {}).get(action_ids.REASON_BLOCK) or {}
    value = (values.get(action_ids.REASON_INPUT) or {}).get("value")
    return value.strip() or None if isinstance(value, str) else None


def slack_name(user: dict[str, Any]) -> str | None:
    """ "@alice" from an interaction's user object, for records people read outside Slack."""
    name = user.get("username") or user.get("name")
    return f"@{name}" if name else None


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(action_ids.CONFIRM_VIEW)
    async def on_confirm(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        user = body["user"]["id"]
        try:
            context = ConfirmContext.decode(view.get("private_metadata") or "")
            ref = deps.catalog.resolve(context.button.service)
        except (BadPayload, RollbackBotError) as exc:
            await ack(response_action="errors", errors={action_ids.REASON_BLOCK: str(exc)[:150]})
            return
        reason = submitted_reason(view)
        if ref.entry is not None and ref.entry.reason_required and not reason:
            await ack(
                response_action="errors",
                errors={action_ids.REASON_BLOCK: f"A reason is required to roll back {ref.name}."},
            )
            return
        await ack()

        async def tell(message: blocks.Message) -> None:
            await client.chat_postEphemeral(
                channel=context.channel, user=user, text=message.text, blocks=message.blocks
            )

        try:
            if not await deps.may_roll_back(ref, user):
                await tell(blocks.notice(f"You may not roll back *{ref.name}*.", ":no_entry:"))
                await deps.record_denied(ref, user, "confirmation")
                return
            button = context.button
            thread = context.thread_ts or context.message_ts

            async def lock_original(run: RunInfo) -> None:
                view_now = await service_view(deps, ref, user)
                locked = blocks.locked_message(view_now, run)
                await client.chat_update(
                    channel=context.channel,
                    ts=context.message_ts,
                    text=locked.text,
                    blocks=locked.blocks,
                )

            async def after() -> None:
                await refresh_message(
                    deps, client, context.channel, context.message_ts, ref.name, user
                )

            from_command = button.source == "command"
            reporter = ThreadReporter(
                client,
                channel=context.channel,
                thread_ts=thread,
                namespace=ref.namespace,
                deployment=ref.deployment,
                on_started=lock_original if from_command else None,
                on_finished=after if from_command else None,
            )
            result = await deps.runner.start(
                RollbackRequest(
                    service=ref.name,
                    target=deps.target(ref),
                    target_replicaset=button.target_replicaset,
                    target_revision=button.target_revision,
                    target_version=button.target_version,
                    snapshot=button.snapshot,
                    actor=user,
                    actor_name=slack_name(body["user"]),
                    via="Slack",
                    reason=reason,
                    channel=context.channel,
                    thread_ts=thread,
                ),
                reporter,
            )
            # "started": the rollback's own task tells the thread and locks the message.
            if result.outcome == "running" and result.run is not None:
                await tell(blocks.already_running_message(result.run))
            elif result.outcome == "stale":
                await tell(blocks.stale_message(ref.name, result.message))
                if from_command:
                    await after()
            elif result.outcome != "started":
                await tell(blocks.notice(f"Not rolled back: {result.message}", ":warning:"))
        except RollbackBotError as exc:
            await tell(blocks.notice(f"Not rolled back: {exc}", ":x:"))
        except Exception:
            log.exception("rollback confirmation failed")
            await tell(blocks.notice("Something went wrong on my side; it is logged.", ":x:"))
