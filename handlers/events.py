"""Alertmanager's own Slack posts (legacy attachments, `bot_message`) in channels the bot is in:
a reply in their thread with the rollback offer, when the post names one catalog service."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.usecases.alerts.offers import AlertOffers
from handlers.after_ack import AfterAck
from handlers.errors import answering_failures


def register(app: AsyncApp, offers: AlertOffers, after_ack: AfterAck) -> None:
    @app.event("message")
    async def on_message(
        event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if not event.get("attachments"):
            return  # people's messages: not ours to read
        async with after_ack, answering_failures(body, None, client):
            await offers.reply_to_message(event)
