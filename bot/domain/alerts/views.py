"""What an alert message shows: one alert group's alerts about one service, and that service now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.alerts.advice import Advice
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
