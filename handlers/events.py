"""Alertmanager's own Slack posts (legacy attachments, `bot_message`) in channels the bot is in:
a reply in their thread with the rollback offer, when the post names one catalog service."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.usecases.alerts.offers import AlertOffers
from bot.domain.errors import RollbackBotError

log = logging.getLogger(__name__)


def register(app: AsyncApp, offers: AlertOffers) -> None:
    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        if not event.get("attachments"):
            return  # people's messages: not ours to read
        try:
            await offers.reply_to_message(event)
        except RollbackBotError as exc:
            log.warning("could not answer the alert message %s: %s", event.get("ts"), exc)
        except Exception:
            log.exception("could not answer the alert message %s", event.get("ts"))
