"""Alerts turned into rollback offers: one Slack message per alert group and service, posted
once and then updated in place (repeats, more alerts, resolution), across restarts and replicas
thanks to the message index kept in the cluster."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.alerts.advice import advise
from bot.domain.alerts.webhook import Alert, WebhookMessage, earliest_start
from bot.domain.alerts.mapping import message_key, route_alerts, slack_alert, targets_from_catalog
from bot.adapters.slack.alert_blocks import AlertGroupView, alert_message, alert_reply, resolved_note, went_out
from bot.config.catalog import Catalog, ServiceRef
from bot.usecases.alerts.index import AlertMessageIndex, ClaimOutcome
from bot.observability.metrics import Metrics
from bot.domain.errors import RollbackBotError
from bot.adapters.slack.blocks import Message, ServiceView

log = logging.getLogger(__name__)

BUSY_WAIT_SECONDS = 5.0

ViewOf = Callable[[ServiceRef, str], Awaitable[ServiceView]]


class AlertBusy(Exception):
    """Another replica is posting this group's message: Alertmanager should retry (503)."""


@dataclass(frozen=True)
class Handled:
    posted: int = 0
    updated: int = 0
    unmapped: int = 0
    no_channel: int = 0


class AlertOffers:
    def __init__(
        self,
        catalog: Catalog,
        index: AlertMessageIndex,
        client: AsyncWebClient,
        view_of: ViewOf,
        *,
        default_channel: str | None,
        window: timedelta,
        patterns: tuple[re.Pattern[str], ...] = (),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._catalog = catalog
        self._index = index
        self._client = client
        self._view_of = view_of
        self._default_channel = default_channel
        self._window = window
        self._patterns = patterns
        self._now = now

    def _count(self, result: str, n: int = 1) -> None:
        if self._metrics is not None and n:
            self._metrics.alerts.labels(result).inc(n)

    # -- the webhook ---------------------------------------------------------------------

    async def handle(self, group: WebhookMessage) -> Handled:
        """Post or update one message per service the group's alerts are about."""
        self._count("received", len(group.alerts))
        routing = route_alerts(group.alerts, targets_from_catalog(self._catalog.services))
        for alert, why in routing.unmapped:
            log.info("alert %s ignored: %s", alert.name, why.reason)
        self._count("ignored", len(routing.unmapped))
        posted = updated = no_channel = 0
        for service, alerts in routing.by_service.items():
            ref = self._catalog.resolve(service)
            channel = (ref.entry.channel if ref.entry else None) or self._default_channel
            if channel is None:
                log.warning(
                    "alert about %s not posted: the service has no channel and "
                    "ROLLBACK_BOT_DEFAULT_CHANNEL is not set",
                    service,
                )
                no_channel += 1
                continue
            self._count("mapped", len(alerts))
            if await self._offer(group, ref, alerts, channel):
                posted += 1
            else:
                updated += 1
        return Handled(posted, updated, len(routing.unmapped), no_channel)

    async def _view(
        self, group: WebhookMessage, ref: ServiceRef, alerts: tuple[Alert, ...]
    ) -> AlertGroupView:
        try:
            service_view = await self._view_of(ref, "alertmanager")
        except RollbackBotError as exc:
            return AlertGroupView(ref.name, group, alerts, self._now(), problem=str(exc))
        started = earliest_start(alerts)
        advice = None
        if started is not None:
            advice = advise(
                started, went_out(service_view.history), service_view.history.deployment.version,
                self._window,
            )  # fmt: skip
        return AlertGroupView(
            ref.name, group, alerts, self._now(), service_view=service_view, advice=advice
        )

    async def _offer(
        self, group: WebhookMessage, ref: ServiceRef, alerts: tuple[Alert, ...], channel: str
    ) -> bool:
        """True when it posted a new message, False when it updated the existing one."""
        key = message_key(group.group_key, ref.name)
        view = await self._view(group, ref, alerts)
        message = alert_message(view)
        status: Literal["firing", "resolved"] = "firing" if view.firing else "resolved"
        claim = await self._index.claim(key, channel)
        if claim.outcome is ClaimOutcome.BUSY:
            entry = await self._index.wait_posted(key, BUSY_WAIT_SECONDS)
            if entry is None or entry.ts is None:
                raise AlertBusy(f"the message of {ref.name}'s alert group is being posted")
            was, where, ts = entry.status, entry.channel, entry.ts
        elif claim.must_post:
            try:
                response = await self._client.chat_postMessage(
                    channel=channel, text=message.text, blocks=message.blocks
                )
            except Exception:
                assert claim.token is not None
                await self._index.abandon(key, claim.token)
                raise
            await self._index.record_posted(
                key, str(response["ts"]), token=claim.token, status=status, channel=channel
            )
            return True
        else:
            assert claim.ts is not None
            was, where, ts = claim.entry.status, claim.channel, claim.ts
        await self._update(where, ts, message)
        await self._index.set_status(key, status)
        if was == "firing" and status == "resolved":
            note = resolved_note(view)
            await self._client.chat_postMessage(
                channel=where, thread_ts=ts, text=note.text, blocks=note.blocks
            )
        return False

    async def _update(self, channel: str, ts: str, message: Message) -> None:
        await self._client.chat_update(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks
        )

    # -- Alertmanager's own Slack messages ---------------------------------------------------

    async def reply_to_message(self, event: Mapping[str, Any]) -> bool:
        """Reply in the thread of an Alertmanager Slack post naming one service; once."""
        if event.get("thread_ts") and event.get("thread_ts") != event.get("ts"):
            return False
        found = slack_alert(event, targets_from_catalog(self._catalog.services), self._patterns)
        if found is None:
            return False
        if found.service is None or found.status != "firing":
            self._count("ignored")
            return False
        self._count("mapped")
        channel, ts = str(event.get("channel")), str(event.get("ts"))
        key = f"slack-post:{channel}:{ts}"
        claim = await self._index.claim(key, channel)
        if not claim.must_post:
            return False  # another delivery or replica already answered it
        try:
            ref = self._catalog.resolve(found.service)
            view = await self._view_of(ref, "alertmanager")
            posted_at = datetime.fromtimestamp(float(ts), UTC)
            advice = advise(
                posted_at, went_out(view.history), view.history.deployment.version, self._window
            )
            reply = alert_reply(view, found.title, advice)
            response = await self._client.chat_postMessage(
                channel=channel, thread_ts=ts, text=reply.text, blocks=reply.blocks
            )
        except Exception:
            assert claim.token is not None
            await self._index.abandon(key, claim.token)
            raise
        await self._index.record_posted(key, str(response["ts"]), token=claim.token)
        return True
