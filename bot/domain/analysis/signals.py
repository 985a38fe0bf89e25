"""What the analysis watches: a signal (a PromQL template whose higher values are worse), the
rule that says when its new value is clearly worse than the baseline, and the request volume
below which nothing is judged.

The rule needs both parts: new > `ratio` × baseline (clearly worse than before) AND new >
`absolute` (the floor: worse by an amount that matters, not noise around a tiny baseline). A
baseline of 0 is a real value (no errors before): the ratio part then holds for any new value
above 0 and the floor alone decides; that is also what keeps a rate whose baseline drops to 0
for an interval (a counter reset) from breaching on a trickle. A missing baseline is not 0: the
ratio part cannot be judged and the check gives no verdict (`checks.judge`); the use case may
supply the fallback baseline (the service in the window before the deploy) instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from bot.domain.analysis.queries import template_placeholders

Unit = Literal["ratio", "seconds"]
UNITS: tuple[Unit, ...] = ("ratio", "seconds")


@dataclass(frozen=True)
class Rule:
    """A breach: new > `ratio` × baseline and new > `absolute` (in the signal's unit)."""

    ratio: float
    absolute: float

    def __post_init__(self) -> None:
        # A ratio of 1 or less would call every wobble (or an improvement) a regression.
        if not math.isfinite(self.ratio) or self.ratio <= 1:
            raise ValueError(f"a rule's ratio must be above 1 (got {self.ratio})")
        if not math.isfinite(self.absolute) or self.absolute < 0:
            raise ValueError(f"a rule's absolute floor must be 0 or more (got {self.absolute})")

    def breached(self, new: float, baseline: float) -> bool:
        return new > self.ratio * baseline and new > self.absolute


@dataclass(frozen=True)
class Signal:
    """One thing compared between the new version and the baseline; higher is worse."""

    name: str
    query_template: str
    rule: Rule
    unit: Unit

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a signal needs a name")
        if self.unit not in UNITS:
            raise ValueError(f"a signal's unit is one of {', '.join(UNITS)} (got {self.unit!r})")
        template_placeholders(self.query_template)  # a bad template fails here, not mid-analysis


@dataclass(frozen=True)
class Volume:
    """The requests per second each side must serve for a verdict; 0 turns the check off."""

    query_template: str
    minimum_per_second: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.minimum_per_second) or self.minimum_per_second < 0:
            raise ValueError(
                f"the minimum request volume must be 0 or more (got {self.minimum_per_second})"
            )
        template_placeholders(self.query_template)

    @property
    def required(self) -> bool:
        return self.minimum_per_second > 0
