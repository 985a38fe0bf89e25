"""One rollback per service at a time, across bot replicas: Lease decisions, pure.

The lock is a coordination.k8s.io/v1 Lease next to the Deployment; these functions decide from
its JSON whether it is free and what it says about the rollback holding it.

Whether a Lease held by another replica has expired is judged as client-go's leader election
does: never by comparing its renewTime (the holder's clock) with ours, but by how long this
replica itself has seen it unchanged, by its own monotonic clock (`observe`, `is_free`). Clock
skew between nodes then decides nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.errors import Conflict
from bot.domain.rollback.models import BOT_ANNOTATION_PREFIX, RunInfo
from bot.domain.times import kube_time, parse_time

LEASE_PREFIX = "rollback-bot."


MAX_NAME = 253
DIGEST_HEX = 12

# The leaseDurationSeconds a decision believes, whatever the Lease says: a broken or hostile
# value (0, -1, 10^9) neither takes a lock at once nor blocks rollbacks forever.
MIN_LEASE_SECONDS = 1
MAX_LEASE_SECONDS = 300
MAX_DIGITS = 9  # more digits than this in Lease text is no sane number


def lease_name(deployment: str) -> str:
    """A Lease name per Deployment: a DNS subdomain of at most 253 characters. A name too long
    to fit keeps a digest of the whole Deployment name, so two Deployments never share a lock."""
    name = re.sub(r"[^a-z0-9.-]", "-", f"{LEASE_PREFIX}{deployment}".lower())
    if len(name) <= MAX_NAME:
        return name.rstrip(".-")
    digest = hashlib.sha256(deployment.encode("utf-8")).hexdigest()[:DIGEST_HEX]
    return f"{name[: MAX_NAME - DIGEST_HEX - 1].rstrip('.-')}-{digest}"


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    renewed_at: datetime | None
    duration_seconds: int
    run: RunInfo | None
    resource_version: str | None
    acquired_at: datetime | None = None


def lease_state(obj: dict[str, Any]) -> LeaseState:
    metadata = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    notes = _dict(metadata.get("annotations"))
    holder = _text(spec.get("holderIdentity"))
    run = None
    started = parse_time(notes.get(f"{BOT_ANNOTATION_PREFIX}started-at"))
    if holder is not None and started is not None:
        run = RunInfo(
            service=str(notes.get(f"{BOT_ANNOTATION_PREFIX}service", "")),
            actor=str(notes.get(f"{BOT_ANNOTATION_PREFIX}actor", "someone")),
            from_version=str(notes.get(f"{BOT_ANNOTATION_PREFIX}from-version", "?")),
            to_version=str(notes.get(f"{BOT_ANNOTATION_PREFIX}to-version", "?")),
            to_revision=_int(notes.get(f"{BOT_ANNOTATION_PREFIX}to-revision")),
            started_at=started,
        )
    return LeaseState(
        holder=holder,
        renewed_at=parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime")),
        duration_seconds=_int(spec.get("leaseDurationSeconds"), too_big=MAX_LEASE_SECONDS),
        run=run,
        resource_version=_text(metadata.get("resourceVersion")),
        acquired_at=parse_time(spec.get("acquireTime")),
    )


def _int(value: Any, *, too_big: int = 0) -> int:
    """A whole number from Lease JSON or text written by anyone, never an exception: 0 when it
    is not one, `too_big` when its text has more digits than any sane value."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return 0
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        return 0
    return int(text) if len(text) <= MAX_DIGITS else too_big


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def lease_duration(state: LeaseState) -> int:
    """The seconds a Lease is held without a change, bounded (MIN_/MAX_LEASE_SECONDS)."""
    return max(MIN_LEASE_SECONDS, min(MAX_LEASE_SECONDS, state.duration_seconds))


@dataclass(frozen=True)
class Observation:
    """What this replica last saw of a Lease, and when it first saw it so, by its own monotonic
    clock."""

    record: tuple[str | None, str | None, datetime | None]
    since: float


def observe(previous: Observation | None, state: LeaseState, now: float) -> Observation:
    """The observation after reading `state` at monotonic time `now`: the previous one while the
    Lease is unchanged (same resourceVersion, holder and renewal), else a new one from now."""
    record = (state.resource_version, state.holder, state.renewed_at)
    if previous is not None and previous.record == record:
        return previous
    return Observation(record=record, since=now)


def is_free(state: LeaseState, observed_since: float, now: float, me: str) -> bool:
    """Free when nobody holds it, we hold it, or we have seen it unchanged for longer than its
    (bounded) duration: `observed_since` and `now` are this replica's monotonic clock. The
    Lease's own times are never compared with our clock, so a Lease first seen now is held
    however old its renewTime looks."""
    if state.holder is None or state.holder == me:
        return True
    return now - observed_since > lease_duration(state)


class LockLost(Conflict):
    """A lock we held was taken, released or deleted by someone else meanwhile: our rollback no
    longer holds it and must not write to it."""

    def __init__(self, what: str, state: LeaseState | None) -> None:
        self.holder = state.holder if state is not None else None
        self.since = (state.acquired_at or state.renewed_at) if state is not None else None
        if state is None:
            lost = "its Lease was deleted"
        elif self.holder is None:
            lost = "nobody holds it any more, someone else released it"
        elif self.since is None:
            lost = f"{self.holder} holds it now"
        else:
            lost = f"{self.holder} holds it since {kube_time(self.since)}"
        super().__init__(f"{what}: the lock was lost: {lost}")


def run_annotations(run: RunInfo) -> dict[str, str]:
    return {
        f"{BOT_ANNOTATION_PREFIX}service": run.service,
        f"{BOT_ANNOTATION_PREFIX}actor": run.actor,
        f"{BOT_ANNOTATION_PREFIX}from-version": run.from_version,
        f"{BOT_ANNOTATION_PREFIX}to-version": run.to_version,
        f"{BOT_ANNOTATION_PREFIX}to-revision": str(run.to_revision),
        f"{BOT_ANNOTATION_PREFIX}started-at": kube_time(run.started_at),
    }
