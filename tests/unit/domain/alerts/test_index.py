"""The groupKey → message index's pure parts: keys, entries, claim decisions, pruning."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from bot.domain.alerts.index import (
    KEY_PREFIX,
    POSTING_TTL,
    AlertMessageEntry,
    ClaimOutcome,
    EntryStatus,
    decide_claim,
    entry_key,
    prune,
)

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
GROUP = '{}/{severity="critical"}:{alertname="HighErrorRate", service="checkout"}'
CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def entry(
    group: str = GROUP,
    *,
    ts: str | None = "1764216000.000100",
    status: EntryStatus = "firing",
    age: timedelta = timedelta(0),
    claim: str | None = None,
) -> AlertMessageEntry:
    return AlertMessageEntry(
        group,
        "C0SHOP",
        ts,
        status,
        NOW - age - timedelta(hours=1),
        NOW - age,
        claim,
    )


def test_keys_are_configmap_safe_stable_and_distinct() -> None:
    key = entry_key(GROUP)
    assert CONFIGMAP_KEY.match(key) and len(key) <= 253
    assert key.startswith(KEY_PREFIX)
    assert key == entry_key(GROUP)
    assert key != entry_key(GROUP + " ")
    assert CONFIGMAP_KEY.match(entry_key('ünïcødé {} " \n / \\'))


def test_entries_round_trip_as_the_documented_json() -> None:
    original = entry(claim=None)
    raw = original.encode()
    assert set(json.loads(raw)) == {"groupKey", "channel", "ts", "status", "firstSeen", "updated"}
    assert json.loads(raw)["updated"] == "2026-11-27T04:00:00Z"
    assert AlertMessageEntry.decode(raw) == original
    posting = entry(ts=None, status="posting", claim="abc")
    assert json.loads(posting.encode())["claim"] == "abc"
    assert AlertMessageEntry.decode(posting.encode()) == posting


def test_garbage_does_not_decode() -> None:
    for raw in (
        "",
        "{",
        "[]",
        '{"groupKey": "g"}',
        json.dumps({**json.loads(entry().encode()), "status": "weird"}),
        json.dumps({**json.loads(entry().encode()), "updated": "yesterday"}),
        json.dumps({**json.loads(entry().encode()), "ts": 5}),
    ):
        assert AlertMessageEntry.decode(raw) is None, raw


def test_the_first_claim_wins_and_leaves_a_placeholder() -> None:
    new, claim = decide_claim(None, GROUP, "C0SHOP", NOW, "tok1")
    assert claim.outcome is ClaimOutcome.POST and claim.must_post
    assert claim.token == "tok1"
    assert new is not None
    assert (new.status, new.ts, new.claim, new.channel) == ("posting", None, "tok1", "C0SHOP")


def test_a_claim_while_another_posts_is_busy() -> None:
    placeholder = entry(ts=None, status="posting", claim="tok1", age=POSTING_TTL)
    new, claim = decide_claim(placeholder, GROUP, "C0SHOP", NOW, "tok2")
    assert new is None
    assert claim.outcome is ClaimOutcome.BUSY and claim.token is None


def test_an_expired_placeholder_is_taken_over() -> None:
    stale = entry(ts=None, status="posting", claim="tok1", age=POSTING_TTL + timedelta(seconds=1))
    new, claim = decide_claim(stale, GROUP, "C0OTHER", NOW, "tok2")
    assert claim.must_post and claim.token == "tok2"
    assert new is not None and new.claim == "tok2" and new.updated == NOW
    assert new.first_seen == stale.first_seen
    assert new.channel == "C0OTHER"


def test_a_posted_message_is_updated() -> None:
    posted = entry()
    new, claim = decide_claim(posted, GROUP, "C0ELSEWHERE", NOW, "tok")
    assert new is None
    assert claim.outcome is ClaimOutcome.UPDATE
    assert (claim.channel, claim.ts) == ("C0SHOP", "1764216000.000100")


def test_a_resolved_group_is_updated_unless_reopening_is_asked_for() -> None:
    resolved = entry(status="resolved", age=timedelta(hours=3))
    assert decide_claim(resolved, GROUP, "C", NOW, "t")[1].outcome is ClaimOutcome.UPDATE
    reopen = timedelta(hours=1)
    new, claim = decide_claim(resolved, GROUP, "C", NOW, "t", reopen_after=reopen)
    assert claim.must_post and new is not None and new.first_seen == NOW
    recent = entry(status="resolved", age=timedelta(minutes=5))
    assert decide_claim(recent, GROUP, "C", NOW, "t", reopen_after=reopen)[1].outcome is (
        ClaimOutcome.UPDATE
    )


def test_a_hash_collision_never_updates_another_groups_message() -> None:
    other = entry(group="another group")
    _, claim = decide_claim(other, GROUP, "C", NOW, "t")
    assert claim.must_post


def test_pruning_drops_old_resolved_untouched_and_unreadable_entries() -> None:
    data = {
        entry_key("fresh"): entry("fresh").encode(),
        entry_key("resolved-new"): entry("resolved-new", status="resolved").encode(),
        entry_key("resolved-old"): entry(
            "resolved-old", status="resolved", age=timedelta(days=3)
        ).encode(),
        entry_key("forgotten"): entry("forgotten", age=timedelta(days=15)).encode(),
        entry_key("broken"): "{not json",
        "someone-elses-key": "left alone",
    }
    kept = prune(data, NOW)
    assert set(kept) == {
        entry_key("fresh"),
        entry_key("resolved-new"),
        "someone-elses-key",
    }
    assert set(prune(data, NOW, keep=frozenset({entry_key("broken")}))) == {
        *kept,
        entry_key("broken"),
    }


def test_pruning_keeps_the_data_under_the_size_limit_oldest_resolved_first() -> None:
    data = {}
    for i in range(100):
        status: EntryStatus = "resolved" if i % 2 else "firing"
        data[entry_key(f"g{i}")] = entry(f"g{i}", status=status, age=timedelta(minutes=i)).encode()
    one = len(entry_key("g0")) + len(data[entry_key("g0")])
    kept = prune(data, NOW, max_bytes=one * 60)
    assert sum(len(k) + len(v) for k, v in kept.items()) <= one * 60
    gone = {json.loads(data[k])["groupKey"] for k in set(data) - set(kept)}
    # about 40 went (entries differ by a few bytes): resolved ones, oldest first (g99, g97, …)
    assert 40 <= len(gone) <= 42
    assert gone == {f"g{i}" for i in range(99, 0, -2)[: len(gone)]}
    newest_only = prune(data, NOW, max_bytes=one * 10, keep=frozenset({entry_key("g98")}))
    assert entry_key("g98") in newest_only
    assert entry_key("g0") in newest_only


def test_a_full_index_fits_a_configmap() -> None:
    long_key = "{}/{" + ", ".join(f'l{i}="{"v" * 40}"' for i in range(20)) + "}"
    data = {entry_key(f"{long_key}{i}"): entry(f"{long_key}{i}").encode() for i in range(2000)}
    kept = prune(data, NOW)
    assert sum(len(k) + len(v) for k, v in kept.items()) <= 900 * 1024 < 1024 * 1024
    assert len(kept) < len(data)
