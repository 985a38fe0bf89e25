"""What an alert message shows: one alert group's alerts about one service, and that service now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.alerts.advice import Advice
from bot.domain.alerts.storms import ServiceSummary
from bot.domain.alerts.webhook import (
    Alert,
    WebhookMessage,
    earliest_start,
    group_alert_name,
    latest_end,
)
from bot.domain.rollback.views import ServiceView


@dataclass(frozen=True)
class AlertGroupView:
    """What the alert message shows: one group's alerts about one service, and that service now.

    `alerts` are the group's alerts mapped to `service` (all of them when the route groups by the
    service's labels). `service_view` is None when the cluster could not be read; `problem` then
    says why in one sentence. `taken_at` is when this was rendered ("updated …").
    """

    service: str
    group: WebhookMessage
    alerts: tuple[Alert, ...]
    taken_at: datetime
    service_view: ServiceView | None = None
    advice: Advice | None = None
    problem: str | None = None

    @property
    def firing(self) -> bool:
        return any(a.firing for a in self.alerts)

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"

    @property
    def alert_name(self) -> str:
        return group_alert_name(self.alerts, self.group.common_labels, self.group.group_labels)

    @property
    def started_at(self) -> datetime | None:
        return earliest_start(self.alerts)

    @property
    def ended_at(self) -> datetime | None:
        return latest_end(self.alerts)

    @property
    def duration(self) -> float | None:
        """Seconds from the first start to the last end, once every alert has resolved."""
        start, end = self.started_at, self.ended_at
        if start is None or end is None:
            return None
        return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True)
class DigestServiceView:
    """A digest's line for one service: its alerts added up, and the service now (None with
    `problem` when the cluster could not be read), with the deploy that likely caused it."""

    summary: ServiceSummary
    service_view: ServiceView | None = None
    advice: Advice | None = None
    problem: str | None = None

    @property
    def service(self) -> str:
        return self.summary.service


@dataclass(frozen=True)
class DigestView:
    """What a storm's digest shows: every service its groups are about, firing ones first.

    `started`/`last`: when the storm began and when its newest group joined (it is over
    `window` after that). `groups`: how many alert groups it holds. `taken_at`: when rendered."""

    started: datetime
    last: datetime
    window: timedelta
    groups: int
    services: tuple[DigestServiceView, ...]
    taken_at: datetime

    @property
    def firing(self) -> int:
        """How many of its services still have a firing group."""
        return sum(1 for s in self.services if s.summary.firing)
