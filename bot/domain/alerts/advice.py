"""Whether rolling back is likely to help with an alert: did a deploy shortly precede it? Pure.

The deploy is the current revision's creation time (its ReplicaSet's `creationTimestamp`); the
alert's start is the earliest `startsAt` of the group's alerts about the service. Prometheus sets
`startsAt` when the rule starts firing (after its `for:`), so a deploy that caused the alert
always comes some minutes before it; one after it cannot be the cause. A small tolerance absorbs
clock differences between Prometheus and the Kubernetes API server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.times import span

DEFAULT_WINDOW = timedelta(minutes=60)
DEFAULT_SKEW = timedelta(seconds=30)


class Verdict(StrEnum):
    LIKELY = "likely"  # deployed within the window before the alert started
    NOT_RECENT = "not_recent"  # deployed longer ago than the window: rollback may not help
    AFTER = "after"  # deployed after the alert started: not the cause
    UNKNOWN = "unknown"  # when the deployed version went out is not known


@dataclass(frozen=True)
class Advice:
    """The verdict and what it rests on; `text` is the sentence the alert message shows."""

    verdict: Verdict
    version: str
    deployed_at: datetime | None
    alert_started: datetime
    window: timedelta

    @property
    def likely(self) -> bool:
        return self.verdict is Verdict.LIKELY

    @property
    def lead(self) -> timedelta | None:
        """How long before the alert started the version went out (negative: after)."""
        if self.deployed_at is None:
            return None
        return self.alert_started - self.deployed_at

    @property
    def headline(self) -> str:
        """A few words for notifications: "likely caused by the deploy of 2.14.0"."""
        if self.verdict is Verdict.LIKELY:
            return f"likely caused by the deploy of {self.version}"
        if self.verdict is Verdict.AFTER:
            return f"{self.version} was deployed after the alert started"
        return "no recent deploy; rollback may not help"

    @property
    def text(self) -> str:
        """One sentence, plain text (the renderer escapes it)."""
        lead = self.lead
        version = self.version
        if self.verdict is Verdict.UNKNOWN or lead is None:
            return (
                f"No recent deploy known: when {version} went out is not recorded, "
                "so rollback may not help."
            )
        if self.verdict is Verdict.LIKELY:
            if lead <= timedelta(0):
                when = "at about the time the alert started"
            else:
                when = f"{span(lead)} before the alert started"
            return f"Likely caused by the deploy of {version}: it went out {when}."
        if self.verdict is Verdict.AFTER:
            return (
                f"Deployed after the alert started: {version} went out {span(-lead)} later, "
                "so it is not the cause and rollback may not help."
            )
        return (
            f"No recent deploy: {version} went out {span(lead)} before the alert started "
            f"(more than {span(self.window)}), so rollback may not help."
        )


def advise(
    alert_started: datetime,
    deployed_at: datetime | None,
    version: str,
    window: timedelta = DEFAULT_WINDOW,
    *,
    skew: timedelta = DEFAULT_SKEW,
) -> Advice:
    """The advice for an alert that started at `alert_started` about a service whose current
    version `version` went out at `deployed_at` (None: unknown). Pure.

    Likely: deployed at most `window` before the alert started (or up to `skew` after it).
    After: deployed more than `skew` after the alert started. Not recent: longer ago.
    """
    if deployed_at is None:
        verdict = Verdict.UNKNOWN
    else:
        lead = alert_started - deployed_at
        if lead < -skew:
            verdict = Verdict.AFTER
        elif lead <= window:
            verdict = Verdict.LIKELY
        else:
            verdict = Verdict.NOT_RECENT
    return Advice(verdict, version, deployed_at, alert_started, window)
