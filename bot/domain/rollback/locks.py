"""One rollback per service at a time, across bot replicas: Lease decisions, pure.

The lock is a coordination.k8s.io/v1 Lease next to the Deployment; these functions decide from
its JSON whether it is free and what it says about the rollback holding it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.rollback.models import BOT_ANNOTATION_PREFIX, RunInfo
from bot.domain.times import kube_time, parse_time

LEASE_PREFIX = "rollback-bot."


MAX_NAME = 253
DIGEST_HEX = 12


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


def lease_state(obj: dict[str, Any]) -> LeaseState:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    notes = metadata.get("annotations") or {}
    run = None
    started = parse_time(notes.get(f"{BOT_ANNOTATION_PREFIX}started-at"))
    if spec.get("holderIdentity") and started is not None:
        run = RunInfo(
            service=str(notes.get(f"{BOT_ANNOTATION_PREFIX}service", "")),
            actor=str(notes.get(f"{BOT_ANNOTATION_PREFIX}actor", "someone")),
            from_version=str(notes.get(f"{BOT_ANNOTATION_PREFIX}from-version", "?")),
            to_version=str(notes.get(f"{BOT_ANNOTATION_PREFIX}to-version", "?")),
            to_revision=_int(notes.get(f"{BOT_ANNOTATION_PREFIX}to-revision")),
            started_at=started,
        )
    return LeaseState(
        holder=spec.get("holderIdentity") or None,
        renewed_at=parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime")),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        run=run,
        resource_version=metadata.get("resourceVersion"),
    )


def _int(value: Any) -> int:
    """A number from Lease text written by anyone: 0 when it is not one."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else 0


def is_free(state: LeaseState, now: datetime, me: str) -> bool:
    """Free when nobody holds it, we hold it, or its holder stopped renewing it."""
    if state.holder is None or state.holder == me:
        return True
    if state.renewed_at is None:
        return True
    return now > state.renewed_at + timedelta(seconds=state.duration_seconds)


def run_annotations(run: RunInfo) -> dict[str, str]:
    return {
        f"{BOT_ANNOTATION_PREFIX}service": run.service,
        f"{BOT_ANNOTATION_PREFIX}actor": run.actor,
        f"{BOT_ANNOTATION_PREFIX}from-version": run.from_version,
        f"{BOT_ANNOTATION_PREFIX}to-version": run.to_version,
        f"{BOT_ANNOTATION_PREFIX}to-revision": str(run.to_revision),
        f"{BOT_ANNOTATION_PREFIX}started-at": kube_time(run.started_at),
    }
