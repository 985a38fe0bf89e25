"""Buttons: "Roll back to X" opens the confirmation; "Refresh" re-reads the cluster."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import RollbackBotError
from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.payloads import BadPayload, ConfirmContext, RollbackButton
from handlers.commands import say_privately
from handlers.deps import Deps
from bot.usecases.rollback.views import service_view

log = logging.getLogger(__name__)


async def refresh_message(
    deps: Deps, client: AsyncWebClient, channel: str, ts: str, service: str, user: str
) -> None:
    """Re-render a versions message in place from the cluster as it is now."""
    ref = deps.catalog.resolve(service)
    view = await service_view(deps, ref, user)
    message = blocks.versions_message(view)
    await client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)


async def deny(deps: Deps, respond: AsyncRespond, service: str, user: str, what: str) -> None:
    ref = deps.catalog.resolve(service)
    await say_privately(
        respond,
        blocks.notice(
            f"You may not roll back *{blocks.escape(ref.name)}*: only the users and groups its "
            "catalog entry names may. Nothing was changed; this attempt is recorded.",
            ":no_entry:",
        ),
    )
    await deps.record_denied(ref, user, what)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(action_ids.ROLLBACK_BUTTON_PATTERN)
    async def on_rollback_click(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        user = body["user"]["id"]
        try:
            button = RollbackButton.decode(body["actions"][0]["value"])
            ref = deps.catalog.resolve(button.service)
            if not await deps.may_roll_back(ref, user):
                await deny(deps, respond, button.service, user, "click")
                return
            running = deps.runner.running(deps.target(ref))
            if running is not None:
                await say_privately(respond, blocks.already_running_message(running))
                return
            message = body.get("message") or {}
            context = ConfirmContext(
                button=button,
                channel=body["channel"]["id"],
                message_ts=message.get("ts") or body["container"]["message_ts"],
                thread_ts=message.get("thread_ts"),
            )
            reason_required = bool(ref.entry and ref.entry.reason_required)
            await client.views_open(
                trigger_id=body["trigger_id"],
                view=blocks.confirm_modal(context, reason_required),
            )
        except BadPayload as exc:
            await say_privately(respond, blocks.notice(str(exc), ":warning:"))
        except RollbackBotError as exc:
            await say_privately(respond, blocks.notice(str(exc), ":x:"))
        except Exception:
            log.exception("rollback click failed")
            await say_privately(
                respond, blocks.notice("Something went wrong on my side; it is logged.", ":x:")
            )
