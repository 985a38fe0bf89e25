"""The alert message index: which Slack message shows which alert group, and each channel's alert
storm and digest, kept where every replica sees it (a ConfigMap).

Concurrency is optimistic: every change reads the document, decides (the pure decisions of
`bot.domain.alerts.index`), and writes it back with the resourceVersion it read; a conflict
(another replica wrote first) reads again and decides again, so two replicas never both win a
claim. Within one process, changes queue rather than conflict with each other, and the changes
queued while a write is on its way go out together in the next one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, Literal, TypeVar

from bot.domain.alerts.arrivals import (
    Arrival,
    decide_arrival,
    digest_lines,
    referenced_digests,
)
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
from bot.domain.alerts.storms import DigestGroup, DigestRecord, StormPolicy, prune_storms
from bot.domain.errors import Conflict
from bot.domain.retry import Backoff, retry
from bot.domain.times import utc_now
from bot.usecases.documents import Document

log = logging.getLogger(__name__)

T = TypeVar("T")

# Replicas that collided pause a few milliseconds, more each time, before deciding again.
CONFLICT_BACKOFF = Backoff(first=0.02, factor=2.0, cap=0.64)
# Changes written together at most: one write stays small enough to go out quickly.
MAX_BATCH = 200
# Pruning reads every entry: done this often, or at once when the document outgrows its size.
PRUNE_INTERVAL = timedelta(minutes=1)


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
        storms: StormPolicy | None = None,
    ) -> None:
        self._store = store
        self.posting_ttl = posting_ttl
        self._keep_resolved = keep_resolved
        self._keep_untouched = keep_untouched
        self._max_bytes = max_bytes
        self._attempts = attempts
        self._clock = clock
        self.storms = storms or StormPolicy()
        self._queue: list[_Pending[Any]] = []
        self._writer: asyncio.Task[None] | None = None
        # What this replica last wrote, and its resourceVersion: the next batch starts from it
        # instead of reading the document again. If another replica wrote since, the write is
        # a conflict, and the batch reads afresh and decides again.
        self._written: tuple[str, dict[str, str]] | None = None
        self._pruned: datetime | None = None

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

    # -- storms and their digests -----------------------------------------------------------

    async def arrive(
        self,
        group_key: str,
        channel: str,
        summary: DigestGroup,
        *,
        reopen_after: timedelta | None = None,
    ) -> Arrival:
        """One delivery of a group about one service: `claim`'s answer for a group with a
        message of its own, or its place in the channel's storm digest (`bot.domain.alerts.
        storms.decide_arrival`), with the group's line there brought up to date."""
        token = secrets.token_hex(8)
        keep = frozenset({entry_key(group_key)})

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, Arrival]:
            return decide_arrival(
                data,
                group_key,
                channel,
                summary,
                self._clock(),
                token,
                policy=self.storms,
                posting_ttl=self.posting_ttl,
                reopen_after=reopen_after,
            )

        return await self._mutate(f"taking alert group {_short(group_key)}", keep, change)

    async def digest(self, key: str) -> StoredDigest | None:
        """The digest as stored now, with its groups' lines, or None."""
        obj = await self._store.read(f"reading alert digest {key}")
        data = (obj or {}).get("data") or {}
        raw = data.get(key)
        record = DigestRecord.decode(raw) if isinstance(raw, str) else None
        if obj is None or record is None:
            return None
        return StoredDigest(record, tuple(digest_lines(data, key)))

    async def digest_posted(self, key: str, ts: str, token: str) -> bool:
        """Record the digest's message; False when the claim was lost meanwhile (another
        replica posted it after `posting_ttl`: this caller's message is a duplicate)."""

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, bool]:
            record = DigestRecord.decode(data[key]) if key in data else None
            if record is None or record.claim != token or record.ts is not None:
                return None, False
            posted = replace(record, ts=ts, claim=None, claimed=None, updated=self._clock())
            return {**data, key: posted.encode()}, True

        return await self._mutate(f"recording alert digest {key}", key, change)

    async def abandon_digest(self, key: str, token: str) -> None:
        """Give the claim to post the digest back (posting failed), so the next delivery of
        any of its groups posts it."""

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, None]:
            record = DigestRecord.decode(data[key]) if key in data else None
            if record is None or record.claim != token or record.ts is not None:
                return None, None
            return {**data, key: replace(record, claim=None, claimed=None).encode()}, None

        await self._mutate(f"releasing alert digest {key}", key, change)

    async def digest_list_posted(self, key: str, list_ts: str) -> None:
        """Record the thread reply that lists every service of an overflowing digest."""

        def change(data: dict[str, str]) -> tuple[dict[str, str] | None, None]:
            record = DigestRecord.decode(data[key]) if key in data else None
            if record is None or record.list_ts is not None:
                return None, None
            return {**data, key: replace(record, list_ts=list_ts).encode()}, None

        await self._mutate(f"recording alert digest {key}", key, change)

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
        keep: str | frozenset[str] | None,
        change: Callable[[dict[str, str]], tuple[dict[str, str] | None, T]],
    ) -> T:
        """Read, decide, write back with the read resourceVersion; on a conflict do it all again.

        Changes that arrive together are written together: while one write is on its way, the
        next changes queue, and the writer then applies them all, each deciding on what the ones
        before it left, in one read and one write (a storm's deliveries would otherwise wait a
        round trip each). Other replicas' writes still come back as conflicts."""
        loop = asyncio.get_running_loop()
        keys = frozenset({keep}) if isinstance(keep, str) else (keep or frozenset())
        pending = _Pending(what, keys, change, loop.create_future())
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_queued())
        result: T = await pending.done
        return result

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                results = await retry(
                    partial(self._write_batch, batch),
                    retry_on=Conflict,
                    attempts=self._attempts,
                    backoff=CONFLICT_BACKOFF,
                )
            except Conflict:
                for item in batch:
                    item.fail(
                        Conflict(f"{item.what}: {self.where} kept changing under us; try again")
                    )
            except Exception as exc:  # the store could not be read or written: each caller hears
                for item in batch:
                    item.fail(exc)
            else:
                for item, outcome in zip(batch, results, strict=True):
                    if isinstance(outcome, _Failed):
                        item.fail(outcome.error)
                    else:
                        item.succeed(outcome)

    async def _write_batch(self, batch: list[_Pending[Any]], _attempt: int) -> list[Any]:
        """One read (none when this replica wrote last), every change of the batch in order,
        one write (when any changed).

        Decisions made on what this replica last wrote stand only if it is still current: a
        write proves it (else a conflict), and a batch that writes nothing checks the document's
        resourceVersion and decides again on the newer document when another replica wrote."""
        known, self._written = self._written, None
        version: str | None
        if known is not None:
            version, data = known[0], dict(known[1])
        else:
            version, data = await self._read(batch[0].what)
        results, data, changed = _decide(batch, data)
        if not changed and known is not None:
            current, fresh = await self._read(batch[0].what)
            if current != version:
                version, data = current, fresh
                results, data, changed = _decide(batch, data)
        if not changed:
            if version:
                self._written = (version, data)
            return results
        kept = self._pruned_if_due(data, frozenset().union(*(item.keep for item in batch)))
        what = batch[0].what if len(batch) == 1 else f"{batch[0].what} and {len(batch) - 1} more"
        written = await self._store.write(what, version, kept)
        if written:  # never without one: a replace without a resourceVersion is unconditional
            self._written = (written, kept)
        return results

    async def _read(self, what: str) -> tuple[str | None, dict[str, str]]:
        """The document's resourceVersion (None: it does not exist) and data, as stored now."""
        obj = await self._store.read(what)
        if obj is None:
            return None, {}
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        return version, dict(obj.get("data") or {})

    def _pruned_if_due(self, data: dict[str, str], keep: frozenset[str]) -> dict[str, str]:
        """The data pruned (`prune`, `prune_storms`) when due, else as it is: a storm's writes
        come many a second and need not each read every entry again."""
        now = self._clock()
        due = self._pruned is None or now - self._pruned >= PRUNE_INTERVAL or now < self._pruned
        if not due and sum(len(k) + len(v.encode()) for k, v in data.items()) <= self._max_bytes:
            return data
        self._pruned = now
        kept = prune(
            data,
            now,
            keep_resolved=self._keep_resolved,
            keep_untouched=self._keep_untouched,
            max_bytes=self._max_bytes,
            keep=keep,
        )
        return prune_storms(
            kept,
            now,
            referenced=referenced_digests(v for k, v in kept.items() if k.startswith("g.")),
            window=self.storms.window,
            keep_untouched=self._keep_untouched,
            keep=keep,
        )


def _decide(
    batch: list[_Pending[Any]], data: dict[str, str]
) -> tuple[list[Any], dict[str, str], bool]:
    """Every change of the batch in order, each on what the ones before it left: their results,
    the data after them, and whether any changed it."""
    results: list[Any] = []
    changed = False
    for item in batch:
        if item.done.done():  # its caller gave up: what it asked for is not done for nobody
            results.append(None)
            continue
        try:
            new, result = item.change(data)
        except Exception as exc:  # one bad change fails its caller, not the batch
            results.append(_Failed(exc))
            continue
        if new is not None:
            data, changed = new, True
        results.append(result)
    return results, data, changed


@dataclass(frozen=True)
class StoredDigest:
    """A digest as the index holds it: its record and its groups' lines."""

    record: DigestRecord
    lines: tuple[DigestGroup, ...]


@dataclass
class _Failed:
    error: Exception


@dataclass
class _Pending(Generic[T]):
    """A change waiting for the writer, and its caller's answer."""

    what: str
    keep: frozenset[str]
    change: Callable[[dict[str, str]], tuple[dict[str, str] | None, T]]
    done: asyncio.Future[T]

    def succeed(self, result: T) -> None:
        if not self.done.done():
            self.done.set_result(result)

    def fail(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)


def _short(group_key: str) -> str:
    """A groupKey for logs and errors: its data key (groupKeys can be long and hold labels)."""
    return entry_key(group_key)
