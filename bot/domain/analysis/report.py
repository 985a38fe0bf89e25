"""What one analysis of a revision answers: the verdict, each signal's evidence, where the
baseline came from, and the figures over time for a chart. Plain values, ready to show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.analysis.evidence import Evidence
from bot.domain.analysis.signals import Signal
from bot.domain.analysis.verdict import Tally, VerdictKind

# (seconds since the deploy, value); NaN where there was no usable figure.
Points = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class SignalReport:
    """One signal: its evidence at the deciding interval, and its figures interval by interval.

    `threshold`: the value the new version had to stay under at that interval (the rule's
    ratio times the baseline, or its floor when higher); None without a baseline."""

    signal: Signal
    evidence: Evidence
    threshold: float | None
    baseline_query: str | None  # the previous revision's pods, alongside
    before_deploy_query: str | None  # the previous revision, in the window before the deploy
    new_points: Points = ()
    baseline_points: Points = ()


@dataclass(frozen=True)
class Baseline:
    """What the new revision was compared with, and for how many intervals each way."""

    revision: int | None
    pod_template_hash: str | None
    alongside: int = 0  # intervals compared with the previous revision's pods running beside
    before_deploy: int = 0  # intervals compared with the window before the deploy
    missing: int = 0  # intervals with neither

    @property
    def description(self) -> str:
        if self.revision is None or self.pod_template_hash is None:
            return "none: no earlier revision to compare with"
        who = f"revision {self.revision} (pod-template-hash {self.pod_template_hash})"
        parts = []
        if self.alongside:
            parts.append(f"its pods running alongside for {_intervals(self.alongside)}")
        if self.before_deploy:
            parts.append(f"the window before the deploy for {_intervals(self.before_deploy)}")
        if self.missing:
            parts.append(f"no figures for {_intervals(self.missing)}")
        return f"{who}: {', '.join(parts)}" if parts else who


def _intervals(count: int) -> str:
    return f"{count} interval{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Report:
    """One analysis of `revision` of a service, from its deploy to `analysed_seconds` after it.

    `unavailable`: why the metrics could not be had (the verdict is then NO_VERDICT);
    `at_seconds`: when, after the deploy, the verdict was decided (None: not decided yet, or
    no interval could be judged); `first_breach_at`: the first breaching interval's end, after
    the deploy (automatic rollback's detection time starts there)."""

    service: str
    namespace: str
    deployment: str
    revision: int
    version: str
    pod_template_hash: str
    deployed_at: datetime
    prometheus_url: str
    window_seconds: float
    interval_seconds: float
    consecutive: int
    analysed_seconds: float
    verdict: VerdictKind
    reason: str
    baseline: Baseline
    signals: tuple[SignalReport, ...]
    tally: Tally
    notices: tuple[str, ...] = ()
    at_seconds: float | None = None
    unavailable: str | None = None
    first_breach_at: float | None = None
