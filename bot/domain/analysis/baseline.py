"""Which baseline one interval of a new revision is compared with. Pure.

The baseline is the previous revision's pods (selected by their pod_template_hash) while they
still run beside the new ones: the same minutes, the same traffic, so a difference is the
version's. Once they are gone (the rollout finished, or the analysis looks at a deploy whose old
pods were scaled down long ago) it is the previous revision over the window before the deploy.

"While they still run" is read from the data, per interval: the old pods' request rate at that
interval is a number above 0 and, when a minimum volume is set, at least that minimum (without a
minimum and without a request rate at all, any usable value of theirs will do). Idle or
scaling-down pods (a trickle of requests, or 0/0 for every ratio) say nothing about the old
version that the window before the deploy, when they served everything, does not say better.
Neither baseline for an interval: none, and the check says so (`checks.judge`: no verdict).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.domain.analysis.checks import Sample, usable
from bot.domain.analysis.signals import Signal, Volume


class BaselineSource(StrEnum):
    ALONGSIDE = "alongside"  # the previous revision's pods, in the same interval
    BEFORE_DEPLOY = "before_deploy"  # the previous revision, in the window before the deploy
    NONE = "none"


@dataclass(frozen=True)
class Side:
    """One side's figures for one interval: each signal's value by the signal's name (absent:
    no answer) and its request rate."""

    values: Mapping[str, float] = field(default_factory=dict)
    volume: float | None = None


def served(side: Side, volume: Volume) -> bool:
    """Whether `side` served enough traffic in the interval to stand for its version. Without a
    minimum volume, a side with no request rate at all (a service whose metrics have no
    `http_requests_total`) served when any of its values is a number."""
    rate = usable(side.volume)
    if rate is not None:
        return rate > 0 and rate >= volume.minimum_per_second
    if volume.required:
        return False
    return any(usable(value) is not None for value in side.values.values())


def pick_baseline(
    alongside: Side, before_deploy: Side | None, volume: Volume
) -> tuple[BaselineSource, Side]:
    """The baseline of one interval: the old pods alongside when they served, else the window
    before the deploy when there is one, else nothing (an empty side)."""
    if served(alongside, volume):
        return BaselineSource.ALONGSIDE, alongside
    if before_deploy is not None:
        return BaselineSource.BEFORE_DEPLOY, before_deploy
    return BaselineSource.NONE, Side()


def samples(signals: Sequence[Signal], new: Side, baseline: Side) -> tuple[Sample, ...]:
    """Each signal's sample for `checks.judge`, in the order of `signals`."""
    return tuple(
        Sample(
            new=new.values.get(signal.name),
            baseline=baseline.values.get(signal.name),
            new_volume=new.volume,
            baseline_volume=baseline.volume,
        )
        for signal in signals
    )
