"""What one delivery of an alert group about one service does to the index: post, update, wait,
or start, join or update a storm digest (`bot.domain.alerts.storms`), decided in one write of the
index's document. Pure.

A delivery reads and writes only its group's entry, its channel's state and its digest's record,
however large the storm, so the deliveries written together in one batch cost little each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.alerts.index import (
    KEY_PREFIX,
    POSTING_TTL,
    TOUCH_INTERVAL,
    AlertMessageEntry,
    Claim,
    ClaimOutcome,
    decide_claim,
    entry_key,
)
from bot.domain.alerts.storms import (
    ChannelState,
    DigestGroup,
    DigestRecord,
    StormPolicy,
    channel_key,
    digest_key,
)


@dataclass(frozen=True)
class Arrival:
    """What one delivery of a group about one service should do.

    `claim` is the index's answer for a group with a message of its own (post, update, busy);
    with `ClaimOutcome.DIGEST` the group is in the digest `digest`: `changed` when what the
    digest shows of it changed (it must be edited), and `post_digest` is this caller's token when
    it must post the digest's message (then `digest_posted`, or `abandon_digest` when posting
    failed)."""

    claim: Claim
    digest: str | None = None
    post_digest: str | None = None
    changed: bool = False


def decide_arrival(
    data: Mapping[str, str],
    group_key: str,
    channel: str,
    line: DigestGroup,
    now: datetime,
    token: str,
    *,
    policy: StormPolicy,
    posting_ttl: timedelta = POSTING_TTL,
    reopen_after: timedelta | None = None,
) -> tuple[dict[str, str] | None, Arrival]:
    """The document to write (None: unchanged) and what this delivery does.

    A group already in a digest updates its line there. A group with a message of its own
    keeps it. A new group gets a message of its own while its channel has had fewer than
    `policy.messages - 1` within the window, else it starts or joins the channel's storm."""
    key = entry_key(group_key)
    current = AlertMessageEntry.decode(data[key]) if key in data else None
    if current is not None and current.group_key != group_key:
        current = None
    if current is not None and current.digest is not None:
        record = _record(data, current.digest)
        if record is not None:
            return _in_digest(
                data, key, current, current.digest, record, line, now, token, posting_ttl
            )
        current = None  # its digest was pruned away: the group starts afresh
    entry, claim = decide_claim(
        current, group_key, channel, now, token, posting_ttl=posting_ttl, reopen_after=reopen_after
    )
    new_message = claim.must_post and (current is None or current.status == "resolved")
    if not new_message:
        return (None if entry is None else {**data, key: entry.encode()}), Arrival(claim)
    assert entry is not None
    ckey = channel_key(channel)
    state = (ChannelState.decode(data[ckey]) if ckey in data else None) or ChannelState(channel)
    state = state.within(now, policy.window)
    storm = _record(data, state.digest)
    stormy = storm is not None and storm.active(now, policy.window)
    if stormy and storm is not None and state.digest is not None and not storm.full:
        dkey, record = state.digest, storm.joined(now)
    elif stormy or len(state.recent) >= policy.messages - 1:
        # A storm starts, or goes on in a new digest once the full one holds enough groups.
        dkey, record = digest_key(channel, now), DigestRecord(channel, now, now, now, groups=1)
        state = replace(state, digest=dkey)
    else:
        state = replace(state, recent=(*state.recent, now))
        return {**data, key: entry.encode(), ckey: state.encode()}, Arrival(claim)
    record, post = record.claim_posting(token, now, posting_ttl)
    member = AlertMessageEntry(
        group_key, channel, None, line.status, now, now, digest=dkey, line=line
    )
    written = {**data, key: member.encode(), ckey: state.encode(), dkey: record.encode()}
    return written, Arrival(Claim(ClaimOutcome.DIGEST, member), dkey, post, changed=True)


def _record(data: Mapping[str, str], key: str | None) -> DigestRecord | None:
    return DigestRecord.decode(data[key]) if key is not None and key in data else None


def _in_digest(
    data: Mapping[str, str],
    key: str,
    current: AlertMessageEntry,
    dkey: str,
    record: DigestRecord,
    line: DigestGroup,
    now: datetime,
    token: str,
    posting_ttl: timedelta,
) -> tuple[dict[str, str] | None, Arrival]:
    """A repeat, more alerts or the resolution of a group the digest shows."""
    claimed, post = record.claim_posting(token, now, posting_ttl)
    same = current.line is not None and current.line.shows_as(line)
    written: dict[str, str] | None = None
    if not same or now - current.updated >= TOUCH_INTERVAL:
        # A repeat that changes nothing is written only every few minutes (to stay unpruned).
        member = replace(current, status=line.status, updated=now, line=line)
        written = {**data, key: member.encode()}
    if post is not None:
        written = {**(written or data), dkey: claimed.encode()}
    claim = Claim(ClaimOutcome.DIGEST, current)
    return written, Arrival(claim, dkey, post, changed=not same)


def digest_lines(data: Mapping[str, str], key: str) -> list[DigestGroup]:
    """What the digest `key` shows: the lines of the index entries in it. Pure."""
    lines = []
    for name, raw in data.items():
        if not name.startswith(KEY_PREFIX) or f'"{key}"' not in raw:
            continue  # not an entry, or not one of this digest's (its key is in its JSON)
        entry = AlertMessageEntry.decode(raw)
        if entry is not None and entry.digest == key and entry.line is not None:
            lines.append(entry.line)
    return lines


def referenced_digests(entries: Iterable[str]) -> frozenset[str]:
    """The digests that the index entries (their raw values) name. Pure."""
    found = set()
    for raw in entries:
        if '"digest"' not in raw:
            continue
        entry = AlertMessageEntry.decode(raw)
        if entry is not None and entry.digest is not None:
            found.add(entry.digest)
    return frozenset(found)
