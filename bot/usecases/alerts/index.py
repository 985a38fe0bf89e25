"""Which Slack message shows which alert group: the entries, the claim decisions and the index
protocol (pure and in-memory parts; `bot.adapters.kube.configmaps` keeps them in a ConfigMap).

One message per Alertmanager group (groupKey), across bot restarts and replicas: the first
replica to `claim` a group posts its message and `record_posted`s the ts; every other delivery of
that group (repeats, retries, resolution, another replica) gets the channel and ts to update.
A "posting" placeholder expires after `posting_ttl`, so a replica that died between claiming and
posting does not block the group forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from bot.domain.errors import Conflict
from bot.domain.rollback.models import JsonDict

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_NAME = "rollback-bot-alert-messages"
POSTING_TTL = timedelta(seconds=60)
KEEP_RESOLVED = timedelta(days=2)
KEEP_UNTOUCHED = timedelta(days=14)
TOUCH_INTERVAL = timedelta(minutes=10)
MAX_DATA_BYTES = 900 * 1024  # the API server refuses a ConfigMap over 1 MiB
KEY_PREFIX = "g."
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LABELS = {"app.kubernetes.io/name": "rollback-bot", "app.kubernetes.io/component": "alert-messages"}

EntryStatus = Literal["posting", "firing", "resolved"]
_STATUSES = ("posting", "firing", "resolved")


def entry_key(group_key: str) -> str:
    """The ConfigMap data key of a groupKey: `g.` + 40 hex digits of its SHA-256. Pure."""
    return KEY_PREFIX + hashlib.sha256(group_key.encode("utf-8")).hexdigest()[:40]


def _time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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

    def encode(self) -> str:
        body: JsonDict = {
            "groupKey": self.group_key,
            "channel": self.channel,
            "ts": self.ts,
            "status": self.status,
            "firstSeen": _time(self.first_seen),
            "updated": _time(self.updated),
        }
        if self.claim is not None:
            body["claim"] = self.claim
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

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
        first_seen, updated = _parse_time(data.get("firstSeen")), _parse_time(data.get("updated"))
        claim = data.get("claim")
        if (
            not isinstance(group_key, str)
            or not isinstance(channel, str)
            or not (ts is None or isinstance(ts, str))
            or status not in _STATUSES
            or first_seen is None
            or updated is None
            or not (claim is None or isinstance(claim, str))
        ):
            return None
        return cls(group_key, channel, ts, status, first_seen, updated, claim)


class ClaimOutcome(StrEnum):
    POST = "post"  # this caller won: post the message, then record_posted (or abandon)
    UPDATE = "update"  # a message exists: update channel/ts
    BUSY = "busy"  # another replica is posting it right now: wait_posted, or answer 5xx


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


# -- the decisions, pure ------------------------------------------------------------------


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


# -- the store ----------------------------------------------------------------------------


class AlertMessageIndex(Protocol):
    """What handlers use: `AlertMessageStore` (the ConfigMap) or `MemoryAlertMessageIndex`."""

    async def claim(
        self, group_key: str, channel: str, *, reopen_after: timedelta | None = None
    ) -> Claim: ...

    async def record_posted(
        self,
        group_key: str,
        ts: str,
        *,
        token: str | None = None,
        status: Literal["firing", "resolved"] = "firing",
        channel: str | None = None,
    ) -> bool: ...

    async def set_status(
        self, group_key: str, status: Literal["firing", "resolved"]
    ) -> AlertMessageEntry | None: ...

    async def abandon(self, group_key: str, token: str) -> None: ...

    async def lookup(self, group_key: str) -> AlertMessageEntry | None: ...

    async def wait_posted(
        self, group_key: str, within: float, *, poll: float = 0.25
    ) -> AlertMessageEntry | None: ...

    async def close(self) -> None: ...


def service_account_namespace(path: Path = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
    """The namespace the bot's Pod runs in (its service account's), or None outside a cluster."""
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class _Index(ABC):
    """The index's logic over any store of one ConfigMap-like object with a resourceVersion."""

    def __init__(
        self,
        *,
        posting_ttl: timedelta = POSTING_TTL,
        keep_resolved: timedelta = KEEP_RESOLVED,
        keep_untouched: timedelta = KEEP_UNTOUCHED,
        max_bytes: int = MAX_DATA_BYTES,
        attempts: int = 10,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.posting_ttl = posting_ttl
        self._keep_resolved = keep_resolved
        self._keep_untouched = keep_untouched
        self._max_bytes = max_bytes
        self._attempts = attempts
        self._mutating: asyncio.Lock | None = None  # made on first use, on the running loop
        self._clock = clock

    @property
    def where(self) -> str:
        return "the alert message index"

    async def close(self) -> None:
        return None

    # -- the index ------------------------------------------------------------------------

    async def claim(
        self, group_key: str, channel: str, *, reopen_after: timedelta | None = None
    ) -> Claim:
        """Atomically: POST (this caller won and must post, then `record_posted` with
        `claim.token`), UPDATE (`claim.channel`/`claim.ts` exist), or BUSY (another replica
        claimed it less than `posting_ttl` ago and has not recorded its ts yet).

        `reopen_after`: a group resolved at least that long ago gets a new message (POST)
        instead of an update; None (default) always updates the old one.
        """
        token = secrets.token_hex(8)
        key = entry_key(group_key)

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, Claim]:
            current = AlertMessageEntry.decode(data[key]) if key in data else None
            new, claim = decide_claim(
                current,
                group_key,
                channel,
                self._clock(),
                token,
                posting_ttl=self.posting_ttl,
                reopen_after=reopen_after,
            )
            if new is None:
                return None, claim
            return {**data, key: new.encode()}, claim

        claim = await self._mutate(f"claiming alert group {_short(group_key)}", key, change)
        log.debug("alert group %s: %s", _short(group_key), claim.outcome.value)
        return claim

    async def record_posted(
        self,
        group_key: str,
        ts: str,
        *,
        token: str | None = None,
        status: Literal["firing", "resolved"] = "firing",
        channel: str | None = None,
    ) -> bool:
        """Record the posted message's ts (and final channel). With the claim's `token`, only
        while that claim still holds: False means another replica took the group over after
        `posting_ttl` (this caller's message is then a duplicate it may delete)."""
        key = entry_key(group_key)

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, bool]:
            now = self._clock()
            current = AlertMessageEntry.decode(data[key]) if key in data else None
            if current is not None and current.group_key != group_key:
                current = None
            if token is not None and current is not None and current.claim != token:
                return None, False
            if current is None and channel is None:
                return None, False  # nothing claimed, and no channel to record it under
            entry = AlertMessageEntry(
                group_key,
                channel or (current.channel if current else ""),
                ts,
                status,
                current.first_seen if current else now,
                now,
            )
            return {**data, key: entry.encode()}, True

        return await self._mutate(f"recording alert group {_short(group_key)}", key, change)

    async def set_status(
        self, group_key: str, status: Literal["firing", "resolved"]
    ) -> AlertMessageEntry | None:
        """Note the group's status after updating its message; writes only on a change, or to
        refresh `updated` every few minutes. None when the group has no posted message."""
        key = entry_key(group_key)

        def change(
            data: dict[str, str],
        ) -> tuple[dict[str, str] | None, AlertMessageEntry | None]:
            now = self._clock()
            current = AlertMessageEntry.decode(data[key]) if key in data else None
            if current is None or current.group_key != group_key or current.ts is None:
                return None, None
            if current.status == status and now - current.updated < TOUCH_INTERVAL:
                return None, current
            entry = replace(current, status=status, updated=now)
            return {**data, key: entry.encode()}, entry

        return await self._mutate(f"updating alert group {_short(group_key)}", key, change)

    async def abandon(self, group_key: str, token: str) -> None:
        """Give a won claim back (posting failed) so the next delivery can post at once."""
        key = entry_key(group_key)

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, None]:
            current = AlertMessageEntry.decode(data[key]) if key in data else None
            if current is None or current.claim != token or current.status != "posting":
                return None, None
            return {k: v for k, v in data.items() if k != key}, None

        await self._mutate(f"releasing alert group {_short(group_key)}", key, change)

    async def lookup(self, group_key: str) -> AlertMessageEntry | None:
        """The group's entry as stored now, or None."""
        obj = await self._read(f"looking up alert group {_short(group_key)}")
        raw = ((obj or {}).get("data") or {}).get(entry_key(group_key))
        entry = AlertMessageEntry.decode(raw) if isinstance(raw, str) else None
        return entry if entry is not None and entry.group_key == group_key else None

    async def wait_posted(
        self, group_key: str, within: float, *, poll: float = 0.25
    ) -> AlertMessageEntry | None:
        """After a BUSY claim: the entry once its ts is recorded, or None after `within` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            entry = await self.lookup(group_key)
            if entry is not None and entry.ts is not None:
                return entry
            if entry is None or loop.time() >= deadline:
                return None
            await asyncio.sleep(poll)

    async def entries(self) -> tuple[AlertMessageEntry, ...]:
        """Every readable entry, oldest first (for status pages and tests)."""
        obj = await self._read(f"listing alert groups in {self.where}")
        data = (obj or {}).get("data") or {}
        found = [
            e
            for k, v in data.items()
            if k.startswith(KEY_PREFIX) and (e := AlertMessageEntry.decode(v)) is not None
        ]
        return tuple(sorted(found, key=lambda e: e.first_seen))

    async def prune(self) -> int:
        """Prune now (every write also does); returns how many entries went."""

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, int]:
            kept = self._pruned(data, frozenset())
            removed = len(data) - len(kept)
            return (kept if removed else None), removed

        return await self._mutate(f"pruning {self.where}", None, change)

    # -- plumbing -------------------------------------------------------------------------

    def _pruned(self, data: Mapping[str, str], keep: frozenset[str]) -> dict[str, str]:
        return prune(
            data,
            self._clock(),
            keep_resolved=self._keep_resolved,
            keep_untouched=self._keep_untouched,
            max_bytes=self._max_bytes,
            keep=keep,
        )

    async def _mutate(
        self,
        what: str,
        key: str | None,
        change: Callable[[dict[str, str]], tuple[dict[str, str] | None, T]],
    ) -> T:
        """Read, decide, write back with the read resourceVersion; on 409 do it all again.

        One change at a time within this process: concurrent deliveries here would only make
        each other's writes conflict. Other replicas' writes still come back as 409s.
        """
        if self._mutating is None:
            self._mutating = asyncio.Lock()
        async with self._mutating:
            return await self._mutate_once(what, key, change)

    async def _mutate_once(
        self,
        what: str,
        key: str | None,
        change: Callable[[dict[str, str]], tuple[dict[str, str] | None, T]],
    ) -> T:
        for attempt in range(self._attempts):
            obj = await self._read(what)
            data: dict[str, str] = dict((obj or {}).get("data") or {})
            new, result = change(data)
            if new is None:
                return result
            new = self._pruned(new, frozenset({key}) if key else frozenset())
            try:
                version = (
                    None
                    if obj is None
                    else str((obj.get("metadata") or {}).get("resourceVersion", ""))
                )
                await self._write(what, version, new)
                return result
            except Conflict:
                # Another replica wrote first: read its write and decide again.
                await asyncio.sleep(random.uniform(0, 0.02 * 2 ** min(attempt, 5)))  # noqa: S311
        raise Conflict(f"{what}: {self.where} kept changing under us; try again")

    @abstractmethod
    async def _read(self, what: str) -> JsonDict | None:
        """The object (`metadata.resourceVersion`, `data`), or None when it does not exist."""

    @abstractmethod
    async def _write(self, what: str, version: str | None, data: dict[str, str]) -> None:
        """Create it (`version` None) or replace it if still at `version`; else `Conflict`."""


class MemoryAlertMessageIndex(_Index):
    """The same index in this process's memory: for tests of handlers, and a single replica
    without a cluster. Lost on restart."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._data: dict[str, str] | None = None
        self._version = 0

    async def _read(self, what: str) -> JsonDict | None:
        if self._data is None:
            return None
        return {"metadata": {"resourceVersion": str(self._version)}, "data": dict(self._data)}

    async def _write(self, what: str, version: str | None, data: dict[str, str]) -> None:
        current = None if self._data is None else str(self._version)
        if version != current:
            raise Conflict(f"{what}: conflict (the index changed)")
        self._data = dict(data)
        self._version += 1


def _short(group_key: str) -> str:
    """A groupKey for logs and errors: its data key (groupKeys can be long and hold labels)."""
    return entry_key(group_key)
