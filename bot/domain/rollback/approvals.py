"""The two-person rule: a confirmed rollback of a service that needs approvals waits, as a
request, for approvers other than the one who asked. Pure: the request, its JSON (kept in the
cluster so any replica can take an Approve click), and the decisions on a click or the clock.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.models import Target, Thread, WorkloadKind
from bot.domain.times import kube_time, parse_time

REQUEST_ID = re.compile(r"[0-9a-f]{12}")
MAX_TEXT = 200
MAX_REASON = 3000
# A finished request stays this long (the thread's buttons may still be clicked), then goes.
KEEP_FINISHED = timedelta(days=1)


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # the last approval landed: the rollback was started (or refused)
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class ApprovalRequest:
    """A confirmed rollback waiting for `needed` approvals, until `expires_at`."""

    id: str
    service: str
    target: Target
    requester: str  # the Slack user id
    requester_name: str | None
    from_version: str
    to_version: str
    target_replicaset: str
    target_revision: int
    snapshot: Snapshot | None
    reason: str | None
    thread: Thread
    created_at: datetime
    expires_at: datetime
    needed: int
    approvers: tuple[str, ...] = ()  # who approved, in order
    state: State = State.PENDING
    decided_by: str | None = None  # who rejected it
    decided_at: datetime | None = None
    request_ts: str | None = None  # the request's own message in the thread
    outcome: str | None = None  # what starting the rollback said
    changes: tuple[str, ...] = field(default=())  # what the rollback changes, as shown

    @property
    def missing(self) -> int:
        return max(0, self.needed - len(self.approvers))


@dataclass(frozen=True)
class Decision:
    """What a click on Approve or Reject does: `request` is the new state (None: refused, and
    `refusal` says why); `complete`: the last approval landed, start the rollback now."""

    request: ApprovalRequest | None
    refusal: str | None = None
    complete: bool = False


def approve(request: ApprovalRequest, user: str, now: datetime) -> Decision:
    if refusal := _closed(request, now):
        return Decision(None, refusal)
    if user == request.requester:
        return Decision(None, "you asked for this rollback: someone else must approve it")
    if user in request.approvers:
        return Decision(None, "you approved it already: each approver counts once")
    approved = replace(request, approvers=(*request.approvers, user))
    if approved.missing:
        return Decision(approved)
    return Decision(replace(approved, state=State.APPROVED, decided_at=now), complete=True)


def reject(request: ApprovalRequest, user: str, now: datetime) -> Decision:
    if refusal := _closed(request, now):
        return Decision(None, refusal)
    rejected = replace(request, state=State.REJECTED, decided_by=user, decided_at=now)
    return Decision(rejected)


def expire(request: ApprovalRequest, now: datetime) -> ApprovalRequest | None:
    """The request, expired, when it is pending past its time; else None (nothing to do)."""
    if request.state is State.PENDING and now >= request.expires_at:
        return replace(request, state=State.EXPIRED, decided_at=request.expires_at)
    return None


def _closed(request: ApprovalRequest, now: datetime) -> str | None:
    if request.state is State.APPROVED:
        return "it was approved already: its message says what came of it"
    if request.state is State.REJECTED:
        return "it was rejected"
    if request.state is State.EXPIRED or now >= request.expires_at:
        return "it expired: ask again with /rollback if it is still needed"
    return None


def keep(request: ApprovalRequest, now: datetime) -> bool:
    """Whether a request stays in the store: pending ones, and finished ones for a day."""
    if request.state is State.PENDING:
        return now < request.expires_at + KEEP_FINISHED
    return request.decided_at is None or now < request.decided_at + KEEP_FINISHED


# -- JSON, as the cluster keeps it: written by the bot, read back as hostile text ---------------


def to_json(request: ApprovalRequest) -> str:
    snapshot = request.snapshot
    data: dict[str, Any] = {
        "id": request.id,
        "service": request.service,
        "namespace": request.target.namespace,
        "deployment": request.target.name,
        "context": request.target.context,
        "kind": request.target.kind.value,
        "requester": request.requester,
        "requesterName": request.requester_name,
        "fromVersion": request.from_version,
        "toVersion": request.to_version,
        "targetReplicaSet": request.target_replicaset,
        "targetRevision": request.target_revision,
        "snapshot": None
        if snapshot is None
        else {
            "revision": snapshot.revision,
            "generation": snapshot.generation,
            "targetReplicaSet": snapshot.target_replicaset,
            "targetRevision": snapshot.target_revision,
        },
        "reason": request.reason,
        "channel": request.thread.channel,
        "threadTs": request.thread.thread_ts,
        "messageTs": request.thread.message_ts,
        "createdAt": kube_time(request.created_at),
        "expiresAt": kube_time(request.expires_at),
        "needed": request.needed,
        "approvers": list(request.approvers),
        "state": str(request.state),
        "decidedBy": request.decided_by,
        "decidedAt": kube_time(request.decided_at) if request.decided_at else None,
        "requestTs": request.request_ts,
        "outcome": request.outcome,
        "changes": list(request.changes),
    }
    return json.dumps(data, separators=(",", ":"))


def from_json(text: str) -> ApprovalRequest | None:
    """A request from the store, or None when the text is not one (never an exception)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError):
        return None


def _parse(data: dict[str, Any]) -> ApprovalRequest | None:
    request_id = _text(data["id"])
    created, expires = parse_time(data.get("createdAt")), parse_time(data.get("expiresAt"))
    if not REQUEST_ID.fullmatch(request_id) or created is None or expires is None:
        return None
    raw = data.get("snapshot")
    snapshot = None
    if isinstance(raw, dict):
        revision = raw.get("revision")
        snapshot = Snapshot(
            revision=revision if isinstance(revision, int) else None,
            generation=_int(raw["generation"]),
            target_replicaset=_text(raw["targetReplicaSet"]),
            target_revision=_int(raw["targetRevision"]),
        )
    context = data.get("context")
    approvers = data.get("approvers") or []
    changes = data.get("changes") or []
    message_ts, request_ts = data.get("messageTs"), data.get("requestTs")
    decided_by, reason = data.get("decidedBy"), data.get("reason")
    return ApprovalRequest(
        id=request_id,
        service=_text(data["service"]),
        target=Target(
            _text(data["namespace"]),
            _text(data["deployment"]),
            _text(context) if context is not None else None,
            _kind(data.get("kind")),
        ),
        requester=_text(data["requester"]),
        requester_name=_text(data["requesterName"]) if data.get("requesterName") else None,
        from_version=_text(data["fromVersion"]),
        to_version=_text(data["toVersion"]),
        target_replicaset=_text(data["targetReplicaSet"]),
        target_revision=_int(data["targetRevision"]),
        snapshot=snapshot,
        reason=_text(reason, MAX_REASON) if reason else None,
        thread=Thread(
            _text(data["channel"]),
            _text(data["threadTs"]),
            _text(message_ts) if message_ts else None,
        ),
        created_at=created,
        expires_at=expires,
        needed=_int(data["needed"]),
        approvers=tuple(_text(a) for a in approvers if isinstance(a, str))[:20],
        state=State(data["state"]),
        decided_by=_text(decided_by) if decided_by else None,
        decided_at=parse_time(data.get("decidedAt")),
        request_ts=_text(request_ts) if request_ts else None,
        outcome=_text(data["outcome"], MAX_REASON) if data.get("outcome") else None,
        changes=tuple(_text(c, 500) for c in changes if isinstance(c, str))[:50],
    )


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value[:limit]


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not a whole number")
    return value


def _kind(value: Any) -> WorkloadKind:
    """A request written before kinds were kept is about a Deployment; an unknown kind is refused
    like any malformed request (the caller turns the ValueError into "not a request")."""
    return WorkloadKind(value) if value is not None else WorkloadKind.DEPLOYMENT
