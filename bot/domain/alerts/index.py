"""Which Slack message shows which alert group: the index's entries and its decisions. Pure.

One message per Alertmanager group (groupKey), across bot restarts and replicas: the first
delivery to win a claim posts the message; every other delivery of that group (repeats, retries,
resolution, another replica) gets the channel and ts to update. A "posting" placeholder expires
after `posting_ttl`, so a replica that died between claiming and posting does not block the group
forever. Where the entries are kept (a ConfigMap) and how a change is written is the use case's
(`bot.usecases.alerts.index`); what to write is decided here.

Layout: one data key per group, `g.` + the first 40 hex digits of the groupKey's SHA-256
(groupKeys hold braces, quotes and spaces, which ConfigMap keys may not), each value the JSON
`{"groupKey", "channel", "ts", "status", "firstSeen", "updated"}` (plus `claim`, the claimer's
token, while `status` is "posting"; plus, for a group shown in a storm digest instead of a message
of its own, `digest`, the digest's key, and `line`, what the digest shows of it:
`bot.domain.alerts.storms`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from bot.domain.alerts.storms import DigestGroup
from bot.domain.rollback.models import JsonDict
from bot.domain.times import kube_time, parse_time

POSTING_TTL = timedelta(seconds=60)
KEEP_RESOLVED = timedelta(days=2)
KEEP_UNTOUCHED = timedelta(days=14)
TOUCH_INTERVAL = timedelta(minutes=10)
MAX_DATA_BYTES = 900 * 1024  # the API server refuses a ConfigMap over 1 MiB
KEY_PREFIX = "g."

EntryStatus = Literal["posting", "firing", "resolved"]
_STATUSES = ("posting", "firing", "resolved")


def entry_key(group_key: str) -> str:
    """The ConfigMap data key of a groupKey: `g.` + 40 hex digits of its SHA-256. Pure."""
    # surrogatepass: a groupKey from outside may hold a lone surrogate; it still has a key.
    return KEY_PREFIX + hashlib.sha256(group_key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


@dataclass(frozen=True)
class AlertMessageEntry:
    """One group's message: where it is (channel, ts; ts None while being posted), its state."""

    group_key: str
    channel: str
    ts: str | None
    status: EntryStatus
    first_seen: datetime
    updated: datetime
    claim: str | None = None
    digest: str | None = None  # shown in this storm digest (its data key), not a message of its own
    line: DigestGroup | None = None  # what the digest shows of it

    def encode(self) -> str:
        body: JsonDict = {
            "groupKey": self.group_key,
            "channel": self.channel,
            "ts": self.ts,
            "status": self.status,
            "firstSeen": kube_time(self.first_seen),
            "updated": kube_time(self.updated),
        }
        if self.claim is not None:
            body["claim"] = self.claim
        if self.digest is not None:
            body["digest"] = self.digest
        if self.line is not None:
            body["line"] = self.line.encode()
        # ASCII: a groupKey or alert name from outside may hold a lone surrogate, which no UTF-8
        # write could carry (and one such entry would fail every change written with it).
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> AlertMessageEntry | None:
        """The entry, or None for a value that is not one (it is then pruned). Pure."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        group_key, channel, ts, status = (
            data.get("groupKey"),
            data.get("channel"),
            data.get("ts"),
            data.get("status"),
        )
        first_seen, updated = parse_time(data.get("firstSeen")), parse_time(data.get("updated"))
        claim, digest = data.get("claim"), data.get("digest")
        line = DigestGroup.decode(data["line"]) if "line" in data else None
        if (
            not isinstance(group_key, str)
            or not isinstance(channel, str)
            or not (ts is None or isinstance(ts, str))
            or status not in _STATUSES
            or first_seen is None
            or updated is None
            or not (claim is None or isinstance(claim, str))
            or not (digest is None or isinstance(digest, str))
            or ("line" in data and line is None)
        ):
            return None
        return cls(group_key, channel, ts, status, first_seen, updated, claim, digest, line)


class ClaimOutcome(StrEnum):
    POST = "post"  # this caller won: post the message, then record_posted (or abandon)
    UPDATE = "update"  # a message exists: update channel/ts
    BUSY = "busy"  # another replica is posting it right now: wait_posted, or answer 5xx
    DIGEST = "digest"  # the group is shown in a storm digest (`entry.digest`), not on its own


@dataclass(frozen=True)
class Claim:
    """What `claim` decided for one delivery of a group."""

    outcome: ClaimOutcome
    entry: AlertMessageEntry

    @property
    def must_post(self) -> bool:
        return self.outcome is ClaimOutcome.POST

    @property
    def channel(self) -> str:
        return self.entry.channel

    @property
    def ts(self) -> str | None:
        return self.entry.ts

    @property
    def token(self) -> str | None:
        """The claim's token when it won: give it to `record_posted` and `abandon`."""
        return self.entry.claim if self.must_post else None


def decide_claim(
    current: AlertMessageEntry | None,
    group_key: str,
    channel: str,
    now: datetime,
    token: str,
    *,
    posting_ttl: timedelta = POSTING_TTL,
    reopen_after: timedelta | None = None,
) -> tuple[AlertMessageEntry | None, Claim]:
    """The entry to write (None: nothing changes) and the claim, given what is stored. Pure."""
    fresh = AlertMessageEntry(group_key, channel, None, "posting", now, now, token)
    if current is None or current.group_key != group_key:
        return fresh, Claim(ClaimOutcome.POST, fresh)
    if current.digest is not None:
        return None, Claim(ClaimOutcome.DIGEST, current)
    if current.status == "posting" or current.ts is None:
        if now - current.updated > posting_ttl:
            taken = replace(
                current, channel=channel, ts=None, status="posting", updated=now, claim=token
            )
            return taken, Claim(ClaimOutcome.POST, taken)
        return None, Claim(ClaimOutcome.BUSY, current)
    if (
        current.status == "resolved"
        and reopen_after is not None
        and now - current.updated >= reopen_after
    ):
        return fresh, Claim(ClaimOutcome.POST, fresh)
    return None, Claim(ClaimOutcome.UPDATE, current)


def prune(
    data: Mapping[str, str],
    now: datetime,
    *,
    keep_resolved: timedelta = KEEP_RESOLVED,
    keep_untouched: timedelta = KEEP_UNTOUCHED,
    max_bytes: int = MAX_DATA_BYTES,
    keep: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """The data without unreadable entries, resolved ones older than `keep_resolved`, any not
    updated for `keep_untouched`, and then the oldest (resolved first) until it fits
    `max_bytes`. Keys in `keep` stay. Keys that are not ours are left alone. Pure."""
    kept: dict[str, str] = {}
    entries: dict[str, AlertMessageEntry] = {}
    for key, raw in data.items():
        if not key.startswith(KEY_PREFIX):
            kept[key] = raw
            continue
        entry = AlertMessageEntry.decode(raw)
        if key not in keep:
            if entry is None:
                continue
            age = now - entry.updated
            if (entry.status == "resolved" and age > keep_resolved) or age > keep_untouched:
                continue
        kept[key] = raw
        if entry is not None:
            entries[key] = entry

    def size() -> int:
        return sum(len(k.encode()) + len(v.encode()) for k, v in kept.items())

    total = size()
    if total > max_bytes:
        victims = sorted(
            (k for k in entries if k not in keep),
            key=lambda k: (entries[k].status != "resolved", entries[k].updated),
        )
        for key in victims:
            total -= len(key.encode()) + len(kept.pop(key).encode())
            if total <= max_bytes:
                break
    return kept
