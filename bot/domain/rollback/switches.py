"""A blue-green switch as it is shown and told: the read model of a blue-green service (which
colour is live, what each colour runs, the switch each idle colour would take), which endpoints
are a colour's pods, and how a switch ended. Pure; the decisions themselves are
`bot.domain.rollback.blue_green`'s.

The bot never reads pods: a colour's pods among a Service's endpoints are told by their names.
A Deployment's pods are named `<replicaset>-<suffix>` after its ReplicaSets, so an endpoint's
pod whose name, without its last `-suffix`, is one of the colour's ReplicaSets is that colour's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bot.domain.rollback.blue_green import (
    BlueGreenSpec,
    ColorState,
    EndpointList,
    ServiceRouting,
    SwitchDecision,
    SwitchPlan,
    SwitchProgress,
)
from bot.domain.rollback.models import RunInfo
from bot.domain.times import format_duration

BLUE_GREEN_KIND = "BlueGreen"  # the audit record's `kind` of a switch
LOCK_PREFIX = "service:"
GENERATED_PREFIX = 58  # names.SimpleNameGenerator: 63 less the random suffix
RANDOM_SUFFIX = 5


def switch_lock_key(service: str) -> str:
    """What a switch's Lease is named after: `service:<Service name>`, which `locks.lease_name`
    makes `rollback-bot-service.<name>`, a name no Deployment's rollback Lease can have."""
    return f"{LOCK_PREFIX}{service}"


def version_mark(version: str) -> str:
    """A short fixed-size mark of a version as shown, for a button to carry: the version itself
    comes from the cluster and may be anything, the mark is 16 hex characters."""
    return hashlib.sha256(version.encode("utf-8", "replace")).hexdigest()[:16]


def pods_of(endpoints: EndpointList, replicasets: Collection[str]) -> frozenset[str]:
    """The pods among `endpoints` that belong to one of `replicasets` (a colour's): a pod named
    `<replicaset>-<suffix>`, the suffix without a dash."""
    if not replicasets:
        return frozenset()
    # The API server names a pod `generateName` plus 5 random characters, the generateName
    # (`<replicaset>-`) cut to 58 characters first.
    prefixes = {f"{name}-"[:GENERATED_PREFIX] for name in replicasets}
    found = set()
    for endpoint in endpoints.endpoints:
        pod = endpoint.pod
        if pod is None:
            continue
        prefix, suffix = pod[:-RANDOM_SUFFIX], pod[-RANDOM_SUFFIX:]
        if len(pod) > RANDOM_SUFFIX and "-" not in suffix and prefix in prefixes:
            found.add(pod)
    return frozenset(found)


@dataclass(frozen=True)
class SwitchView:
    """A blue-green service read at `taken_at` for `asked_by`: its Service's routing, each
    colour's state (in the spec's order), the switch each colour would take now (`offers`: a
    plan or a refusal, for every colour but the live one), and the switch running on it, if
    any."""

    service: str
    namespace: str
    cluster: str
    spec: BlueGreenSpec
    routing: ServiceRouting
    colors: tuple[ColorState, ...]
    endpoints: EndpointList
    offers: tuple[tuple[str, SwitchDecision], ...]
    asked_by: str
    taken_at: datetime
    running: RunInfo | None = None

    def state(self, color: str) -> ColorState | None:
        return next((c for c in self.colors if c.color == color), None)

    @property
    def live(self) -> ColorState | None:
        live = self.routing.live_color
        return self.state(live) if live is not None else None

    def offer(self, color: str) -> SwitchDecision | None:
        return next((d for c, d in self.offers if c == color), None)

    def with_run(self, run: RunInfo | None) -> SwitchView:
        return replace(self, running=run)


class SwitchEnding(StrEnum):
    """How a started switch ended."""

    SWITCHED = "switched"  # the slices show only the target's pods
    NOT_READY = "not_ready"  # the target did not become ready in time: the Service unchanged
    NOT_CONVERGED = "not_converged"  # the Service points at the target; the slices did not follow
    REFUSED = "refused"  # read again before patching, the switch no longer holds
    FAILED = "failed"  # the target's rollout failed (its progress deadline exceeded)
    ERROR = "error"  # the cluster could not be used (unreachable, an error answered)
    STOPPED = "stopped"  # the bot stopped (or lost its lock) before the end


@dataclass(frozen=True)
class SwitchOutcome:
    """The end of a switch. `switch_seconds`: from the Service's patch to the slices showing
    only the target's pods (None unless switched); `total_seconds`: from the start, scaling up
    and waiting for readiness included."""

    ending: SwitchEnding
    service: str
    plan: SwitchPlan
    total_seconds: float
    error: str | None = None
    scaled_up: bool = False
    service_patched: bool = False
    switch_seconds: float | None = None
    target: ColorState | None = None
    endpoints: SwitchProgress | None = None
    # The Service's patch went out and its answer was lost: whether it took is not known.
    patch_unknown: bool = False

    @property
    def switch_time(self) -> str:
        """The switch's own time as people read it: "0.3s"; "under 0.1s" when it rounds to
        nothing (the formatter's resolution is a tenth of a second)."""
        seconds = self.switch_seconds or 0.0
        return format_duration(seconds) if seconds >= 0.05 else "under 0.1s"

    @property
    def succeeded(self) -> bool:
        return self.ending is SwitchEnding.SWITCHED

    @property
    def timed_out(self) -> bool:
        return self.ending in (SwitchEnding.NOT_READY, SwitchEnding.NOT_CONVERGED)

    @property
    def left(self) -> str:
        """What the cluster is left with, in a sentence (empty when switched)."""
        plan = self.plan
        if self.succeeded:
            return ""
        if self.patch_unknown:
            return (
                f"Whether the Service {plan.service} routes to {plan.to_color} or still to "
                f"{plan.from_color} is not known: check it before anything else."
            )
        if self.service_patched:
            return (
                f"The Service {plan.service} routes to {plan.to_color} ({plan.to_deployment}) now."
            )
        still = (
            f"The Service {plan.service} still routes to {plan.from_color} ({plan.from_deployment})"
        )
        if self.scaled_up and plan.scale_to is not None:
            return (
                f"{still}; {plan.to_color} ({plan.to_deployment}) stays scaled up to "
                f"{plan.scale_to} replicas: nothing else was changed."
            )
        return f"{still}: nothing was changed."

    def sentence(self) -> str:
        """One line for the record and the terminal."""
        plan = self.plan
        if self.succeeded:
            return (
                f"switched {plan.service} from {plan.from_color} to {plan.to_color} in "
                f"{self.switch_time} ({format_duration(self.total_seconds)} in all)"
            )
        return f"{self.error or self.ending.value}. {self.left}"
