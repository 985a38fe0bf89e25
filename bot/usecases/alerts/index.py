"""The alert message index: which Slack message shows which alert group, kept where every
replica sees it (a ConfigMap), changed one decision at a time.

Concurrency is optimistic: every change reads the document, decides (the pure decisions of
`bot.domain.alerts.index`), and writes it back with the resourceVersion it read; a conflict
(another replica wrote first) reads again and decides again, so two replicas never both win a
claim. Within one process, changes queue rather than conflict with each other.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from bot.domain.alerts.index import (
    KEEP_RESOLVED,
    KEEP_UNTOUCHED,
    MAX_DATA_BYTES,
    POSTING_TTL,
    TOUCH_INTERVAL,
    AlertMessageEntry,
    Claim,
    decide_claim,
    entry_key,
    prune,
)
from bot.domain.errors import Conflict
from bot.domain.retry import Backoff, retry
from bot.domain.times import utc_now
from bot.usecases.documents import Document

log = logging.getLogger(__name__)

T = TypeVar("T")

# Replicas that collided pause a few milliseconds, more each time, before deciding again.
CONFLICT_BACKOFF = Backoff(first=0.02, factor=2.0, cap=0.64)


class AlertIndex:
    def __init__(
        self,
        store: Document,
        *,
        posting_ttl: timedelta = POSTING_TTL,
        keep_resolved: timedelta = KEEP_RESOLVED,
        keep_untouched: timedelta = KEEP_UNTOUCHED,
        max_bytes: int = MAX_DATA_BYTES,
        attempts: int = 10,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self.posting_ttl = posting_ttl
        self._keep_resolved = keep_resolved
        self._keep_untouched = keep_untouched
        self._max_bytes = max_bytes
        self._attempts = attempts
        self._clock = clock
        self._mutating: asyncio.Lock | None = None  # made on first use, on the running loop

    @property
    def where(self) -> str:
        return self._store.where

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
        obj = await self._store.read(f"looking up alert group {_short(group_key)}")
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

    # -- plumbing -------------------------------------------------------------------------

    async def _mutate(
        self,
        what: str,
        key: str | None,
        change: Callable[[dict[str, str]], tuple[dict[str, str] | None, T]],
    ) -> T:
        """Read, decide, write back with the read resourceVersion; on a conflict do it all again.

        One change at a time within this process: concurrent deliveries here would only make
        each other's writes conflict. Other replicas' writes still come back as conflicts.
        """
        if self._mutating is None:
            self._mutating = asyncio.Lock()

        async def attempt(_number: int) -> T:
            obj = await self._store.read(what)
            data: dict[str, str] = dict((obj or {}).get("data") or {})
            new, result = change(data)
            if new is None:
                return result
            kept = prune(
                new,
                self._clock(),
                keep_resolved=self._keep_resolved,
                keep_untouched=self._keep_untouched,
                max_bytes=self._max_bytes,
                keep=frozenset({key}) if key else frozenset(),
            )
            version = (
                None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion", ""))
            )
            await self._store.write(what, version, kept)
            return result

        async with self._mutating:
            try:
                return await retry(
                    attempt, retry_on=Conflict, attempts=self._attempts, backoff=CONFLICT_BACKOFF
                )
            except Conflict:
                raise Conflict(f"{what}: {self.where} kept changing under us; try again") from None


def _short(group_key: str) -> str:
    """A groupKey for logs and errors: its data key (groupKeys can be long and hold labels)."""
    return entry_key(group_key)
