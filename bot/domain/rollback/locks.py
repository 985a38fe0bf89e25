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
from bot.domain.rollback.models import BOT_ANNOTATION_PREFIX, RunInfo, Thread, WorkloadKind
from bot.domain.times import kube_time, parse_time

LEASE_PREFIX = "rollback-bot."
# Every rollback Lease carries it, so a replica finds them all with one list per namespace.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "rollback-bot"
HANDED_OVER_BY = f"{BOT_ANNOTATION_PREFIX}handed-over-by"


MAX_NAME = 253
DIGEST_HEX = 12

# The leaseDurationSeconds a decision believes, whatever the Lease says: a broken or hostile
# value (0, -1, 10^9) neither takes a lock at once nor blocks rollbacks forever.
MIN_LEASE_SECONDS = 1
MAX_LEASE_SECONDS = 300
MAX_DIGITS = 9  # more digits than this in Lease text is no sane number
# Lease text is written by anyone who may write Leases: bounded, and the parts that address
# Slack must look like what Slack hands out, or the run has no thread to be told in.
MAX_TEXT = 200
MAX_REASON = 3000
SLACK_ID = re.compile(r"[A-Z0-9]{2,24}")
SLACK_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")
ROLLBACK_ID = re.compile(r"[0-9a-f]{1,32}")


def lease_name(deployment: str, prefix: str = LEASE_PREFIX) -> str:
    """A Lease name per Deployment: a DNS subdomain of at most 253 characters. A name too long
    to fit keeps a digest of the whole Deployment name, so two Deployments never share a lock.
    Another kind's key ("statefulset:orders-db", `models.lock_key`) gets a prefix of its own
    ("rollback-bot-statefulset.orders-db"), which no Deployment's Lease name can start with."""
    kind, colon, rest = deployment.partition(":")
    if colon:
        prefix, deployment = f"{prefix.rstrip('.')}-{kind}.", rest
    name = re.sub(r"[^a-z0-9.-]", "-", f"{prefix}{deployment}".lower())
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
    # A stopping replica released the Lease keeping its run, for another one to finish.
    handed_over_by: str | None = None

    @property
    def held(self) -> bool:
        """Someone holds it, or a run handed over waits in it for a replica to pick it up."""
        return self.holder is not None or self.handed_over_by is not None


def lease_state(obj: dict[str, Any]) -> LeaseState:
    metadata = _dict(obj.get("metadata"))
    spec = _dict(obj.get("spec"))
    notes = _dict(metadata.get("annotations"))
    holder = _text(spec.get("holderIdentity"))
    handed_over_by = None if holder is not None else _capped(notes.get(HANDED_OVER_BY))
    run = None
    started = parse_time(notes.get(f"{BOT_ANNOTATION_PREFIX}started-at"))
    if (holder is not None or handed_over_by is not None) and started is not None:
        run = _run(notes, started, holder or handed_over_by)
    if holder is None and (run is None or run.thread is None):
        handed_over_by, run = None, None  # a hand-over nobody could finish is a release
    return LeaseState(
        holder=holder,
        renewed_at=parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime")),
        duration_seconds=_int(spec.get("leaseDurationSeconds"), too_big=MAX_LEASE_SECONDS),
        run=run,
        resource_version=_text(metadata.get("resourceVersion")),
        acquired_at=parse_time(spec.get("acquireTime")),
        handed_over_by=handed_over_by,
    )


def _run(notes: dict[str, Any], started: datetime, holder: str | None) -> RunInfo:
    def note(key: str, default: str | None = None, limit: int = MAX_TEXT) -> str | None:
        return _capped(notes.get(f"{BOT_ANNOTATION_PREFIX}{key}"), limit) or default

    thread = None
    channel, thread_ts = note("channel"), note("thread-ts")
    if _matches(SLACK_ID, channel) and _matches(SLACK_TS, thread_ts):
        assert channel is not None and thread_ts is not None
        message_ts = note("message-ts")
        thread = Thread(channel, thread_ts, message_ts if _matches(SLACK_TS, message_ts) else None)
    rollback_id = note("rollback-id")
    from_revision = _int(notes.get(f"{BOT_ANNOTATION_PREFIX}from-revision"))
    return RunInfo(
        service=note("service", "") or "",
        actor=note("actor", "someone") or "someone",
        from_version=note("from-version", "?") or "?",
        to_version=note("to-version", "?") or "?",
        to_revision=_int(notes.get(f"{BOT_ANNOTATION_PREFIX}to-revision")),
        started_at=started,
        via=note("via", "") or "",
        reason=note("reason", limit=MAX_REASON),
        rollback_id=rollback_id if _matches(ROLLBACK_ID, rollback_id) else None,
        thread=thread,
        deployment=note("deployment"),
        from_revision=from_revision or None,
        target_replicaset=note("target-replicaset"),
        holder=holder,
        kind=_kind(note("kind")),
        abort=note("abort") == "true",
    )


def _kind(value: str | None) -> WorkloadKind:
    """The run's workload kind; a Lease written before kinds were noted locks a Deployment."""
    try:
        return WorkloadKind(value) if value else WorkloadKind.DEPLOYMENT
    except ValueError:
        return WorkloadKind.DEPLOYMENT


def _matches(pattern: re.Pattern[str], value: str | None) -> bool:
    return value is not None and pattern.fullmatch(value) is not None


def _capped(value: Any, limit: int = MAX_TEXT) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


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
    """Free when nobody holds it, or we have seen it unchanged for longer than its (bounded)
    duration: `observed_since` and `now` are this replica's monotonic clock. The Lease's own
    times are never compared with our clock, so a Lease first seen now is held however old its
    renewTime looks. A run handed over is not free either: it waits for a replica to pick it
    up (`adoptable`)."""
    if not state.held or state.holder == me:
        return True
    return now - observed_since > lease_duration(state)


def adoptable(state: LeaseState, observed_since: float, now: float, me: str) -> bool:
    """Whether this replica should pick up the run a Lease carries and finish its story: one
    handed over by a stopping replica (at once), one left by this replica's earlier self (the
    same name after a restart: at once), or one whose holder we saw silent for its duration.
    Only a run with a thread to tell it in and an id to record it under is picked up."""
    run = state.run
    if run is None or run.thread is None or run.rollback_id is None:
        return False
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
    """The run as the Lease keeps it, for "already running" and for a replica picking it up."""
    notes = {
        "service": run.service,
        "actor": run.actor,
        "from-version": run.from_version,
        "to-version": run.to_version,
        "to-revision": str(run.to_revision),
        "started-at": kube_time(run.started_at),
        "via": run.via,
        "reason": run.reason,
        "rollback-id": run.rollback_id,
        "deployment": run.deployment,
        "kind": run.kind.value if run.kind is not WorkloadKind.DEPLOYMENT else None,
        "abort": "true" if run.abort else None,
        "from-revision": str(run.from_revision) if run.from_revision is not None else None,
        "target-replicaset": run.target_replicaset,
    }
    if run.thread is not None:
        notes["channel"] = run.thread.channel
        notes["thread-ts"] = run.thread.thread_ts
        notes["message-ts"] = run.thread.message_ts
    return {f"{BOT_ANNOTATION_PREFIX}{k}": v for k, v in notes.items() if v is not None}


def is_run_annotation(key: str) -> bool:
    """The annotations a release drops (and a hand-over keeps): everything the bot wrote."""
    return key.startswith(BOT_ANNOTATION_PREFIX)
