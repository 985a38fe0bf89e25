"""Alert storms: when a channel would get more alert messages than people can read, the new
groups go into one digest message instead. What is stored and what to decide. Pure.

A channel gets at most `StormPolicy.messages` top-level alert messages within
`StormPolicy.window`, the digest included: the first `messages - 1` new groups get their own
message as always; the next one starts a storm, and it and every new group after it join the
storm's digest, until nothing new has arrived for the window. Groups that had their own message
keep it (their repeats and resolution update it as before); a digest's groups update the digest.

Kept in the same document as the alert index (`bot.domain.alerts.index`), so one write decides a
group's fate and the channel's storm together, across replicas (the decision:
`bot.domain.alerts.arrivals`):
- `c.` + 40 hex digits of the channel's SHA-256: the channel's state (`ChannelState`): when its
  recent own messages went out, and the digest of the storm in progress;
- `d.` + 40 hex digits: one digest (`DigestRecord`): its channel, message ts (None while it is
  being posted, with the poster's claim), how many groups joined it;
- each of its groups' own index entry holds the group's line (`DigestGroup`): enough to render
  the digest without the groups' webhooks. A delivery so changes a few small values, whatever the
  size of the storm.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.domain.rollback.models import JsonDict
from bot.domain.times import kube_time, parse_time

STORM_MESSAGES = 5
STORM_WINDOW = timedelta(seconds=60)
CHANNEL_PREFIX = "c."
DIGEST_PREFIX = "d."
# Past this many groups a storm goes on in a new digest: one message stays readable, and its render
# reads a bounded number of entries.
MAX_DIGEST_GROUPS = 1000
MAX_ALERT_NAMES = 10  # per group: a digest line names a few, the rest are counted
MAX_NAME = 100


@dataclass(frozen=True)
class StormPolicy:
    """At most `messages` top-level alert messages a channel gets within `window`, the digest
    included."""

    messages: int = STORM_MESSAGES
    window: timedelta = STORM_WINDOW

    def __post_init__(self) -> None:
        if self.messages < 2:
            raise ValueError("a storm policy allows at least 2 messages: one group and a digest")
        if self.window <= timedelta(0):
            raise ValueError("a storm window is positive")


def channel_key(channel: str) -> str:
    return (
        CHANNEL_PREFIX + hashlib.sha256(channel.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    )


def digest_key(channel: str, started: datetime) -> str:
    seed = f"{channel}\n{started.isoformat()}"
    return DIGEST_PREFIX + hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _dumps(body: JsonDict) -> str:
    # ASCII: a name from outside may hold a lone surrogate, which no UTF-8 write could carry.
    return json.dumps(body, separators=(",", ":"))


def _loads(raw: str) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _time_or_none(value: Any) -> tuple[bool, datetime | None]:
    """(valid, time) for a field that may be null."""
    if value is None:
        return True, None
    parsed = parse_time(value)
    return parsed is not None, parsed


@dataclass(frozen=True)
class ChannelState:
    """A channel's recent top-level alert messages and the storm in progress, if any."""

    channel: str
    recent: tuple[datetime, ...] = ()
    digest: str | None = None  # the key of the storm's digest

    def encode(self) -> str:
        return _dumps(
            {
                "channel": self.channel,
                "recent": [kube_time(t) for t in self.recent],
                "digest": self.digest,
            }
        )

    @classmethod
    def decode(cls, raw: str) -> ChannelState | None:
        data = _loads(raw)
        if data is None:
            return None
        channel, recent, digest = data.get("channel"), data.get("recent"), data.get("digest")
        if not isinstance(channel, str) or not isinstance(recent, list):
            return None
        if digest is not None and not isinstance(digest, str):
            return None
        times = tuple(parse_time(t) for t in recent[:1000])
        if any(t is None for t in times):
            return None
        return cls(channel, tuple(t for t in times if t is not None), digest)

    def within(self, now: datetime, window: timedelta) -> ChannelState:
        """Only the messages that still count: those of the last `window`."""
        return replace(self, recent=tuple(t for t in self.recent if now - t < window))


@dataclass(frozen=True)
class DigestGroup:
    """What a digest shows of one alert group about one service."""

    service: str
    alerts: tuple[tuple[str, int], ...]  # alert name → how many of its alerts (firing ones
    firing: bool  # while the group fires, all once it resolved)
    since: datetime | None
    ended: datetime | None
    updated: datetime

    @property
    def status(self) -> Literal["firing", "resolved"]:
        return "firing" if self.firing else "resolved"

    def shows_as(self, other: DigestGroup) -> bool:
        """Whether the digest would show both the same (`updated` aside)."""
        return replace(self, updated=other.updated) == other

    def encode(self) -> JsonDict:
        return {
            "service": self.service,
            "alerts": [[name, count] for name, count in self.alerts],
            "firing": self.firing,
            "since": kube_time(self.since) if self.since else None,
            "ended": kube_time(self.ended) if self.ended else None,
            "updated": kube_time(self.updated),
        }

    @classmethod
    def decode(cls, data: Any) -> DigestGroup | None:
        if not isinstance(data, dict):
            return None
        service, alerts, firing = data.get("service"), data.get("alerts"), data.get("firing")
        ok_since, since = _time_or_none(data.get("since"))
        ok_ended, ended = _time_or_none(data.get("ended"))
        updated = parse_time(data.get("updated"))
        if (
            not isinstance(service, str)
            or not isinstance(alerts, list)
            or not isinstance(firing, bool)
            or not (ok_since and ok_ended)
            or updated is None
        ):
            return None
        pairs: list[tuple[str, int]] = []
        for item in alerts[:MAX_ALERT_NAMES]:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not isinstance(item[0], str)
                or not isinstance(item[1], int)
                or isinstance(item[1], bool)
            ):
                return None
            pairs.append((item[0][:MAX_NAME], max(0, item[1])))
        return cls(service, tuple(pairs), firing, since, ended, updated)


def summarize(
    service: str,
    names: Sequence[str],
    firing: Sequence[bool],
    since: datetime | None,
    ended: datetime | None,
    now: datetime,
) -> DigestGroup:
    """A group's digest entry from its alerts' names and states: counts of the firing ones
    while any fires, of all of them once every one resolved."""
    any_firing = any(firing)
    counts: dict[str, int] = {}
    for name, fires in zip(names, firing, strict=True):
        if fires or not any_firing:
            key = (name or "alert")[:MAX_NAME]
            counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_ALERT_NAMES]
    return DigestGroup(
        service, tuple(ordered), any_firing, since, None if any_firing else ended, now
    )


@dataclass(frozen=True)
class DigestRecord:
    """One storm's digest message in one channel (its groups' lines are in their entries)."""

    channel: str
    started: datetime
    last: datetime  # when its newest group joined: the storm is over a window after
    updated: datetime
    ts: str | None = None
    claim: str | None = None  # the poster's token while ts is None
    claimed: datetime | None = None
    list_ts: str | None = None  # the thread reply listing every service, once they overflow
    groups: int = 0  # how many groups joined it

    def encode(self) -> str:
        return _dumps(
            {
                "channel": self.channel,
                "started": kube_time(self.started),
                "last": kube_time(self.last),
                "updated": kube_time(self.updated),
                "ts": self.ts,
                "claim": self.claim,
                "claimed": kube_time(self.claimed) if self.claimed else None,
                "listTs": self.list_ts,
                "groups": self.groups,
            }
        )

    @classmethod
    def decode(cls, raw: str) -> DigestRecord | None:
        data = _loads(raw)
        if data is None:
            return None
        channel, ts, claim, list_ts, groups = (
            data.get("channel"),
            data.get("ts"),
            data.get("claim"),
            data.get("listTs"),
            data.get("groups"),
        )
        started, last, updated = (
            parse_time(data.get("started")),
            parse_time(data.get("last")),
            parse_time(data.get("updated")),
        )
        ok_claimed, claimed = _time_or_none(data.get("claimed"))
        if (
            not isinstance(channel, str)
            or started is None
            or last is None
            or updated is None
            or not ok_claimed
            or not all(v is None or isinstance(v, str) for v in (ts, claim, list_ts))
            or not isinstance(groups, int)
            or isinstance(groups, bool)
            or groups < 0
        ):
            return None
        return cls(channel, started, last, updated, ts, claim, claimed, list_ts, groups)

    def active(self, now: datetime, window: timedelta) -> bool:
        """Whether the storm goes on: a new group joined within the window."""
        return now - self.last < window

    @property
    def full(self) -> bool:
        return self.groups >= MAX_DIGEST_GROUPS

    def joined(self, now: datetime) -> DigestRecord:
        """A new group joined."""
        return replace(self, groups=self.groups + 1, last=now, updated=now)

    def claim_posting(
        self, token: str, now: datetime, posting_ttl: timedelta
    ) -> tuple[DigestRecord, str | None]:
        """The record with this caller's claim to post the message, and the token, when the
        message is not posted and nobody (alive) is posting it; else unchanged and None."""
        if self.ts is not None:
            return self, None
        if (
            self.claim is not None
            and self.claimed is not None
            and now - self.claimed <= posting_ttl
        ):
            return self, None
        return replace(self, claim=token, claimed=now), token


@dataclass(frozen=True)
class ServiceSummary:
    """A digest's line for one service: its groups' alerts added up."""

    service: str
    alerts: tuple[tuple[str, int], ...]
    groups: int
    firing: bool
    since: datetime | None  # the earliest start of its firing groups (of all, once resolved)
    resolved_at: datetime | None  # the last end, once every group resolved


def service_summaries(lines: Iterable[DigestGroup]) -> tuple[ServiceSummary, ...]:
    """One summary per service of a digest's group lines, in the order people should look at
    them: firing before resolved, then the longest firing first, then by name. Pure."""
    by_service: dict[str, list[DigestGroup]] = {}
    for group in lines:
        by_service.setdefault(group.service, []).append(group)
    summaries = []
    for service, groups in by_service.items():
        firing = [g for g in groups if g.firing]
        counted = firing or groups
        counts: dict[str, int] = {}
        for group in counted:
            for name, count in group.alerts:
                counts[name] = counts.get(name, 0) + count
        starts = [g.since for g in counted if g.since is not None]
        ends = [g.ended for g in groups if g.ended is not None]
        summaries.append(
            ServiceSummary(
                service,
                tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
                len(groups),
                bool(firing),
                min(starts) if starts else None,
                None if firing else (max(ends) if ends else None),
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    return tuple(
        sorted(summaries, key=lambda s: (not s.firing, s.since or far, s.service.casefold()))
    )


def prune_storms(
    data: Mapping[str, str],
    now: datetime,
    *,
    referenced: Collection[str],
    window: timedelta = STORM_WINDOW,
    keep_untouched: timedelta,
    keep: frozenset[str] = frozenset(),
) -> dict[str, str]:
    """The data without unreadable storm records, digests no group shows in any more (or
    untouched for `keep_untouched`), and channel states with nothing left to count. Keys in
    `keep`, and keys that are not storm records, stay. `referenced`: the digests that index
    entries name. Pure."""
    kept: dict[str, str] = {}
    for key, raw in data.items():
        if key in keep or not key.startswith((CHANNEL_PREFIX, DIGEST_PREFIX)):
            kept[key] = raw
            continue
        if key.startswith(DIGEST_PREFIX):
            record = DigestRecord.decode(raw)
            if record is None or key not in referenced or now - record.updated > keep_untouched:
                continue
        kept[key] = raw
    for key in [k for k in kept if k.startswith(CHANNEL_PREFIX) and k not in keep]:
        state = ChannelState.decode(kept[key])
        if state is None:
            del kept[key]
            continue
        storm = DigestRecord.decode(kept[state.digest]) if state.digest in kept else None
        stormy = storm is not None and storm.active(now, window)
        if not state.within(now, window).recent and not stormy:
            del kept[key]
    return kept
