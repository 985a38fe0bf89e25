"""Alerts turned into rollback offers: one Slack message per alert group and service, posted
once and then updated in place (repeats, more alerts, resolution), across restarts and replicas
thanks to the message index kept in the cluster; during a channel's alert storm, a line in its
one digest instead (`bot.usecases.alerts.digests`)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from bot.config.catalog import Catalog, ServiceRef
from bot.domain.alerts.advice import advise
from bot.domain.alerts.index import ClaimOutcome
from bot.domain.alerts.mapping import message_key, route_alerts, slack_alert, targets_from_catalog
from bot.domain.alerts.storms import summarize
from bot.domain.alerts.views import AlertGroupView
from bot.domain.alerts.webhook import Alert, WebhookMessage, earliest_start, latest_end
from bot.domain.errors import RollbackBotError
from bot.domain.retry import retry
from bot.domain.times import slack_ts_time, utc_now
from bot.usecases.alerts.digests import RECORD_ATTEMPTS, RECORD_BACKOFF, Digests
from bot.usecases.alerts.index import AlertIndex
from bot.usecases.alerts.ports import AlertMessages, ServiceViewer

if TYPE_CHECKING:  # the CLI, which counts nothing, does not load prometheus_client
    from bot.observability.metrics import Metrics

log = logging.getLogger(__name__)

BUSY_WAIT_SECONDS = 5.0


class AlertBusy(Exception):
    """Another replica is posting this group's message: Alertmanager should retry (503)."""


@dataclass(frozen=True)
class Handled:
    posted: int = 0
    updated: int = 0
    unmapped: int = 0
    no_channel: int = 0
    digested: int = 0  # went into (or changed in) a storm digest


class AlertOffers:
    def __init__(
        self,
        catalog: Catalog,
        index: AlertIndex,
        messages: AlertMessages,
        views: ServiceViewer,
        digests: Digests,
        *,
        default_channel: str | None,
        window: timedelta,
        patterns: tuple[re.Pattern[str], ...] = (),
        now: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._catalog = catalog
        self._targets = targets_from_catalog(catalog.services)  # the catalog never changes
        self._index = index
        self._messages = messages
        self._views = views
        self._digests = digests
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
        routing = route_alerts(group.alerts, self._targets)
        for alert, why in routing.unmapped:
            log.info("alert %s ignored: %s", alert.name, why.reason)
        self._count("ignored", len(routing.unmapped))
        posted = updated = no_channel = digested = 0
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
            done = await self._offer(group, ref, alerts, channel)
            posted += done == "posted"
            updated += done == "updated"
            if done == "digested":
                digested += 1
                self._count("digested", len(alerts))
        return Handled(posted, updated, len(routing.unmapped), no_channel, digested)

    async def _view(
        self, group: WebhookMessage, ref: ServiceRef, alerts: tuple[Alert, ...]
    ) -> AlertGroupView:
        try:
            service_view = await self._views.view(ref, "alertmanager")
        except RollbackBotError as exc:
            return AlertGroupView(ref.name, group, alerts, self._now(), problem=str(exc))
        started = earliest_start(alerts)
        advice = None
        if started is not None:
            history = service_view.history
            advice = advise(started, history.went_out, history.deployment.version, self._window)
        return AlertGroupView(
            ref.name, group, alerts, self._now(), service_view=service_view, advice=advice
        )

    async def _offer(
        self, group: WebhookMessage, ref: ServiceRef, alerts: tuple[Alert, ...], channel: str
    ) -> Literal["posted", "updated", "digested"]:
        """Post the group's message, update it, or put the group in its channel's digest."""
        key = message_key(group.group_key, ref.name)
        summary = summarize(
            ref.name,
            [alert.name for alert in alerts],
            [alert.firing for alert in alerts],
            earliest_start(alerts),
            latest_end(alerts),
            self._now(),
        )
        arrival = await self._index.arrive(key, channel, summary)
        claim = arrival.claim
        if claim.outcome is ClaimOutcome.DIGEST:
            await self._digests.joined(arrival)
            return "digested"
        view = await self._view(group, ref, alerts)
        status: Literal["firing", "resolved"] = "firing" if view.firing else "resolved"
        if claim.outcome is ClaimOutcome.BUSY:
            entry = await self._index.wait_posted(key, BUSY_WAIT_SECONDS)
            if entry is None or entry.ts is None:
                raise AlertBusy(f"the message of {ref.name}'s alert group is being posted")
            was, where, ts = entry.status, entry.channel, entry.ts
        elif claim.must_post:
            token = claim.token
            assert token is not None
            try:
                # Posted within the claim's life, or given up (and given back): never posted
                # after another delivery took the claim over.
                posted = await asyncio.wait_for(
                    self._messages.post(channel, view), self._index.posting_ttl.total_seconds() / 2
                )
            except Exception:
                await self._index.abandon(key, token)
                raise
            recorded = await retry(
                lambda _n: self._index.record_posted(
                    key, posted, token=token, status=status, channel=channel
                ),
                retry_on=RollbackBotError,
                attempts=RECORD_ATTEMPTS,
                backoff=RECORD_BACKOFF,
            )
            if not recorded:
                log.warning("the message of %s's alert group was posted twice", ref.name)
            return "posted"
        else:
            assert claim.ts is not None
            was, where, ts = claim.entry.status, claim.channel, claim.ts
        await self._messages.update(where, ts, view)
        await self._index.set_status(key, status)
        if was == "firing" and status == "resolved":
            await self._messages.note_resolved(where, ts, view)
        return "updated"

    # -- Alertmanager's own Slack messages ---------------------------------------------------

    async def reply_to_message(self, event: Mapping[str, Any]) -> bool:
        """Reply in the thread of an Alertmanager Slack post naming one service; once."""
        if event.get("thread_ts") and event.get("thread_ts") != event.get("ts"):
            return False
        found = slack_alert(event, self._targets, self._patterns)
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
            view = await self._views.view(ref, "alertmanager")
            posted_at = slack_ts_time(ts) or self._now()
            history = view.history
            advice = advise(posted_at, history.went_out, history.deployment.version, self._window)
            replied = await self._messages.reply(channel, ts, view, found.title, advice)
        except Exception:
            assert claim.token is not None
            await self._index.abandon(key, claim.token)
            raise
        await self._index.record_posted(key, replied, token=claim.token)
        return True
