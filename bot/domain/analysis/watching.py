"""Automatic rollback's watch of a rollout, in the domain's words: which rollouts are watched,
what a watch message says, and what the watch's Lease keeps. Pure.

- A rollout is watched when the Deployment's current revision is a new version: its ReplicaSet
  is the newest of the Deployment's (`new_version`). A rollback (the bot's, or anyone's
  `kubectl rollout undo`) brings an older ReplicaSet back: that is no new version, and is not
  judged against the one it replaced.
- One replica analyses a rollout: the one holding the Deployment's watch Lease. The Lease keeps
  what another replica needs to go on or to leave it alone (`WatchClaim`): the revision, the
  watch message, whether the analysis ended, and who asked it to stop. Its text is written by
  anyone who may write Leases: parsed bounded, and refused to the default where it is not what
  the bot writes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bot.domain.analysis.config import Mode
from bot.domain.rollback.models import BOT_ANNOTATION_PREFIX, History, Revision, Thread

WATCH_LEASE_PREFIX = "rollback-bot-watch."
_NOTE = f"{BOT_ANNOTATION_PREFIX}watch-"
_SLACK_ID = re.compile(r"[A-Z0-9]{2,24}")
_SLACK_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")
_REVISION = re.compile(r"[1-9][0-9]{0,17}")


class Phase(StrEnum):
    """Where a watch stands. Every phase but WATCHING is an end."""

    WATCHING = "watching"
    HEALTHY = "healthy"
    NO_VERDICT = "no_verdict"
    ROLLED_BACK = "rolled_back"  # act: the rollback started
    WOULD_ROLL_BACK = "would_roll_back"  # dry-run: a breach, nothing patched
    NOT_ROLLED_BACK = "not_rolled_back"  # act: a breach, but a guard (or a person) forbade it
    STOPPED = "stopped"  # someone pressed "Stop watching"
    SUPERSEDED = "superseded"  # the Deployment moved on (another deploy, a rollback, deleted)

    @property
    def ended(self) -> bool:
        return self is not Phase.WATCHING

    @property
    def breach(self) -> bool:
        return self in (Phase.ROLLED_BACK, Phase.WOULD_ROLL_BACK, Phase.NOT_ROLLED_BACK)


@dataclass(frozen=True)
class WatchStatus:
    """What the watch message shows: which rollout, against what, for how long, and how it
    stands. `detail`: the verdict's reason, who stopped it, what superseded it (plain text from
    the bot, or from outside: escaped where shown)."""

    service: str
    namespace: str
    deployment: str
    context: str | None
    revision: int
    version: str
    baseline_revision: int | None
    baseline_version: str | None
    window_seconds: float
    mode: Mode
    phase: Phase = Phase.WATCHING
    detail: str | None = None
    on_call_group: str | None = None

    def ended(self, phase: Phase, detail: str | None) -> WatchStatus:
        return replace(self, phase=phase, detail=detail)


def new_version(history: History) -> Revision | None:
    """The current revision when it is a new version to watch, else None: its ReplicaSet is the
    newest the Deployment keeps (a rollback brings back an older one). A revision without a
    creation time cannot be placed, and is not watched."""
    current = history.current
    if current is None or current.created_at is None:
        return None
    newest = max(
        (r.created_at for r in history.revisions if r.created_at is not None),
        default=current.created_at,
    )
    return current if current.created_at >= newest else None


def still_in_window(went_out: datetime, now: datetime, window_seconds: float) -> bool:
    """Whether a rollout that went out at `went_out` is still in its analysis window (a replica
    starting late, or taking over, only picks up rollouts whose window has not passed)."""
    return (now - went_out).total_seconds() < window_seconds


@dataclass(frozen=True)
class WatchClaim:
    """What a watch Lease keeps of the analysis of one revision.

    `thread`: the watch message (posted once, edited by whichever replica ends the watch);
    `ended`: the phase it ended in, so no replica starts it again; `stop_by`: the Slack user
    who asked it to stop (the holder ends it at its next interval)."""

    revision: int
    thread: Thread | None = None
    ended: Phase | None = None
    stop_by: str | None = None


@dataclass(frozen=True)
class Claimed:
    """The answer to claiming a watch: `ours` (this replica analyses it), the claim the Lease
    holds for this revision (None: none, or another revision's), and who holds it."""

    ours: bool
    claim: WatchClaim | None
    holder: str | None


def claim_annotations(claim: WatchClaim) -> dict[str, str]:
    """The claim as the Lease's annotations."""
    notes = {"revision": str(claim.revision)}
    if claim.thread is not None:
        notes["channel"] = claim.thread.channel
        notes["ts"] = claim.thread.thread_ts
    if claim.ended is not None:
        notes["ended"] = str(claim.ended)
    if claim.stop_by is not None:
        notes["stop-by"] = claim.stop_by
    return {f"{_NOTE}{key}": value for key, value in notes.items()}


def is_claim_annotation(key: str) -> bool:
    return key.startswith(_NOTE)


def parse_claim(annotations: Mapping[str, object]) -> WatchClaim | None:
    """The claim a Lease's annotations hold; None without a revision that looks like one.
    Parts that are not what the bot writes are dropped (a thread that is no Slack channel and
    timestamp, a phase that is none, a stopper that is no Slack user id)."""

    def note(key: str, limit: int = 64) -> str | None:
        value = annotations.get(f"{_NOTE}{key}")
        return value if isinstance(value, str) and 0 < len(value) <= limit else None

    revision = note("revision", 18)
    if revision is None or not _REVISION.fullmatch(revision):
        return None
    channel, ts = note("channel"), note("ts")
    thread = (
        Thread(channel, ts)
        if channel and ts and _SLACK_ID.fullmatch(channel) and _SLACK_TS.fullmatch(ts)
        else None
    )
    ended_text = note("ended")
    ended = Phase(ended_text) if ended_text in set(Phase) - {Phase.WATCHING} else None
    stop_by = note("stop-by")
    return WatchClaim(
        revision=int(revision),
        thread=thread,
        ended=ended,
        stop_by=stop_by if stop_by and _SLACK_ID.fullmatch(stop_by) else None,
    )
