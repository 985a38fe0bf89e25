"""The analysis of one deploy as an immutable state machine: intervals of checks in, a verdict
out. Pure: the use case keeps the clock and the queries, and feeds `observe` every interval.

An interval is as bad as its worst check: BREACH when any signal breached, else PASS when any
signal was judged, else LOW_VOLUME when any side lacked traffic, else NO_DATA.

- BREACH is confirmed by `consecutive` breaching intervals in a row. Any other interval breaks
  the run, and so does a gap of more than two intervals between observations: the intervals in
  between were not seen, and what was not seen never counts towards a rollback. So flapping
  (breach, pass, breach…) never confirms, nor does one spike when `consecutive` ≥ 2.
- When the window has passed: HEALTHY if at least one interval was judged (BREACH or PASS) and
  no breach was confirmed, else NO_VERDICT saying why (no data, or not enough traffic). A run of
  breaches still going when the window ends is followed to its end first (at most
  `consecutive` − 1 more intervals): a regression that starts in the window's last minute is
  not called healthy.
- No data and low volume are said once per signal (`notices`), not every interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum

from bot.domain.analysis.checks import Check, Outcome
from bot.domain.times import format_duration, span

# Worst first: the interval takes the first of these that any of its checks has.
_SEVERITY = (Outcome.BREACH, Outcome.PASS, Outcome.LOW_VOLUME, Outcome.NO_DATA)
# A gap longer than this many intervals between two observations breaks a run of breaches.
_MAX_GAP_INTERVALS = 2.0


class VerdictKind(StrEnum):
    BREACH = "breach"
    HEALTHY = "healthy"
    NO_VERDICT = "no_verdict"


def interval_outcome(checks: tuple[Check, ...]) -> Outcome:
    """What one interval says as a whole (NO_DATA for an interval without checks)."""
    found = {check.outcome for check in checks}
    return next((outcome for outcome in _SEVERITY if outcome in found), Outcome.NO_DATA)


@dataclass(frozen=True)
class Tally:
    """How many intervals said what."""

    breach: int = 0
    passed: int = 0
    low_volume: int = 0
    no_data: int = 0

    @property
    def judged(self) -> int:
        return self.breach + self.passed

    @property
    def total(self) -> int:
        return self.judged + self.low_volume + self.no_data

    def counted(self, outcome: Outcome) -> Tally:
        name = {
            Outcome.BREACH: "breach",
            Outcome.PASS: "passed",
            Outcome.LOW_VOLUME: "low_volume",
            Outcome.NO_DATA: "no_data",
        }[outcome]
        return replace(self, **{name: getattr(self, name) + 1})


@dataclass(frozen=True)
class Verdict:
    """How the analysis ended, at `at_seconds` from its start, and the checks that show it.

    `checks`: the confirming interval's (BREACH), the last judged interval's (HEALTHY) or the
    last interval's (NO_VERDICT). `first_breach_at`: the first breaching interval of the whole
    analysis (the detection-time metric starts there), also when no breach was confirmed;
    `run_started_at`: the first interval of the confirming run (BREACH only). `why`, for
    NO_VERDICT: LOW_VOLUME or NO_DATA, whichever held more intervals.
    """

    kind: VerdictKind
    at_seconds: float
    reason: str
    checks: tuple[Check, ...]
    tally: Tally
    first_breach_at: float | None = None
    run_started_at: float | None = None
    why: Outcome | None = None


@dataclass(frozen=True)
class Analysis:
    """One deploy's analysis so far. Start with `start`, then `observe` every interval."""

    window_seconds: float
    interval_seconds: float
    consecutive: int
    last_at: float | None = None
    run: int = 0  # breaching intervals in a row, up to now
    run_started_at: float | None = None
    first_breach_at: float | None = None
    tally: Tally = field(default_factory=Tally)
    last_checks: tuple[Check, ...] = ()
    last_judged: tuple[Check, ...] = ()
    announced: frozenset[tuple[str, Outcome]] = frozenset()
    notices: tuple[str, ...] = ()  # what this observation found to say, once per signal
    verdict: Verdict | None = None

    @classmethod
    def start(cls, window_seconds: float, interval_seconds: float, consecutive: int) -> Analysis:
        if not math.isfinite(interval_seconds) or interval_seconds <= 0:
            raise ValueError(f"the interval must be above 0 (got {interval_seconds})")
        if not math.isfinite(window_seconds) or window_seconds < interval_seconds:
            raise ValueError(
                f"the window ({window_seconds}s) must be at least the interval "
                f"({interval_seconds}s)"
            )
        if consecutive < 1:
            raise ValueError(f"consecutive must be 1 or more (got {consecutive})")
        return cls(window_seconds, interval_seconds, consecutive)

    def observe(
        self, at_seconds: float, checks: tuple[Check, ...]
    ) -> tuple[Analysis, Verdict | None]:
        """This interval's checks, `at_seconds` after the start: the next state, and the
        verdict when this interval decides it (the state then keeps it; observe no more)."""
        if self.verdict is not None:
            raise ValueError("the analysis has its verdict: observe no more")
        if not math.isfinite(at_seconds) or at_seconds < 0:
            raise ValueError(f"an observation's time must be 0 or more (got {at_seconds})")
        if self.last_at is not None and at_seconds <= self.last_at:
            raise ValueError(
                f"observations go forward in time ({at_seconds}s is not after {self.last_at}s)"
            )
        outcome = interval_outcome(checks)
        run, run_started_at = self.run, self.run_started_at
        gap = None if self.last_at is None else at_seconds - self.last_at
        if gap is not None and gap > _MAX_GAP_INTERVALS * self.interval_seconds:
            run, run_started_at = 0, None
        if outcome is Outcome.BREACH:
            run += 1
            run_started_at = at_seconds if run == 1 else run_started_at
        else:
            run, run_started_at = 0, None
        notices, announced = self._news(checks)
        state = replace(
            self,
            last_at=at_seconds,
            run=run,
            run_started_at=run_started_at,
            first_breach_at=(
                at_seconds
                if outcome is Outcome.BREACH and self.first_breach_at is None
                else self.first_breach_at
            ),
            tally=self.tally.counted(outcome),
            last_checks=checks,
            last_judged=checks if outcome in (Outcome.BREACH, Outcome.PASS) else self.last_judged,
            announced=announced,
            notices=notices,
        )
        verdict = state._decide(at_seconds)
        return (replace(state, verdict=verdict) if verdict else state), verdict

    def _news(
        self, checks: tuple[Check, ...]
    ) -> tuple[tuple[str, ...], frozenset[tuple[str, Outcome]]]:
        notices: list[str] = []
        announced = set(self.announced)
        for check in checks:
            key = (check.signal.name, check.outcome)
            if check.outcome in (Outcome.NO_DATA, Outcome.LOW_VOLUME) and key not in announced:
                announced.add(key)
                notices.append(check.reason)
        return tuple(notices), frozenset(announced)

    def _decide(self, at_seconds: float) -> Verdict | None:
        tally = self.tally
        if self.run >= self.consecutive:
            started = self.run_started_at if self.run_started_at is not None else at_seconds
            reason = (
                f"breach confirmed: {self.run} intervals in a row breached, from "
                f"{format_duration(started)} to {format_duration(at_seconds)} into the analysis"
                if self.run > 1
                else f"breach confirmed: the interval {format_duration(at_seconds)} into the "
                "analysis breached"
            )
            return Verdict(
                VerdictKind.BREACH,
                at_seconds,
                reason,
                self.last_checks,
                tally,
                first_breach_at=self.first_breach_at,
                run_started_at=self.run_started_at,
            )
        if at_seconds < self.window_seconds or self.run > 0:
            return None
        window = span(timedelta(seconds=self.window_seconds))
        if tally.judged:
            unconfirmed = (
                f"; {tally.breach} breaching interval{'s' if tally.breach > 1 else ''} did not "
                f"repeat {self.consecutive} times in a row"
                if tally.breach
                else ""
            )
            return Verdict(
                VerdictKind.HEALTHY,
                at_seconds,
                f"healthy: no breach confirmed in {window}, {tally.judged} of {tally.total} "
                f"intervals judged{unconfirmed}",
                self.last_judged,
                tally,
                first_breach_at=self.first_breach_at,
            )
        why = Outcome.LOW_VOLUME if tally.low_volume >= tally.no_data else Outcome.NO_DATA
        said = "not enough traffic to judge" if why is Outcome.LOW_VOLUME else "no data"
        return Verdict(
            VerdictKind.NO_VERDICT,
            at_seconds,
            f"no verdict: {said} in {window} (not enough traffic in {tally.low_volume} "
            f"of {tally.total} intervals, no data in {tally.no_data})",
            self.last_checks,
            tally,
            why=why,
        )
