"""Alert storms, decided on the index's data: a channel's first groups get messages of their own,
the rest one digest; groups keep where they started; a storm ends a window after its last group."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.alerts.arrivals import (
    Arrival,
    decide_arrival,
    digest_lines,
    referenced_digests,
)
from bot.domain.alerts.index import (
    KEEP_UNTOUCHED,
    POSTING_TTL,
    TOUCH_INTERVAL,
    AlertMessageEntry,
    ClaimOutcome,
    entry_key,
)
from bot.domain.alerts.storms import (
    MAX_ALERT_NAMES,
    MAX_DIGEST_GROUPS,
    ChannelState,
    DigestGroup,
    DigestRecord,
    StormPolicy,
    channel_key,
    digest_key,
    prune_storms,
    service_summaries,
    summarize,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
CHANNEL = "C0SHOP"
POLICY = StormPolicy(messages=5, window=timedelta(seconds=60))


def firing(service: str, *names: str, at: datetime = NOW) -> DigestGroup:
    names = names or ("HighErrorRate",)
    return summarize(service, names, [True] * len(names), at - timedelta(minutes=2), None, at)


def resolved(service: str, at: datetime = NOW) -> DigestGroup:
    return summarize(
        service,
        ["HighErrorRate"],
        [False],
        at - timedelta(minutes=5),
        at - timedelta(seconds=5),
        at,
    )


class Channel:
    """The index's data as deliveries change it, one decision at a time."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.tokens = 0

    def arrive(
        self, group: str, summary: DigestGroup, at: datetime = NOW, channel: str = CHANNEL
    ) -> Arrival:
        self.tokens += 1
        new, arrival = decide_arrival(
            self.data, group, channel, summary, at, f"token{self.tokens}", policy=POLICY
        )
        if new is not None:
            self.data = new
        return arrival

    def record(self, key: str) -> DigestRecord:
        record = DigestRecord.decode(self.data[key])
        assert record is not None
        return record

    def posted(self, key: str, ts: str = "1.1") -> None:
        self.data[key] = replace(self.record(key), ts=ts, claim=None, claimed=None).encode()

    def own_message(self, group: str, ts: str) -> None:
        """What `record_posted` leaves for a group that got its own message."""
        entry = AlertMessageEntry.decode(self.data[entry_key(group)])
        assert entry is not None
        self.data[entry_key(group)] = replace(entry, ts=ts, status="firing", claim=None).encode()


def test_the_first_groups_get_messages_of_their_own_and_the_fifth_starts_a_digest() -> None:
    channel = Channel()
    own = [channel.arrive(f"group{i}", firing(f"svc{i}")) for i in range(4)]
    assert [a.claim.outcome for a in own] == [ClaimOutcome.POST] * 4
    assert all(a.digest is None for a in own)

    storm = channel.arrive("group4", firing("svc4"))
    assert storm.claim.outcome is ClaimOutcome.DIGEST
    assert storm.digest == digest_key(CHANNEL, NOW)
    assert storm.post_digest == "token5"  # the delivery that started it posts it
    record = channel.record(storm.digest)
    assert record.channel == CHANNEL and record.ts is None and record.claim == "token5"
    assert [g.service for g in digest_lines(channel.data, storm.digest)] == ["svc4"]

    later = channel.arrive("group5", firing("svc5"), NOW + timedelta(seconds=1))
    assert later.digest == storm.digest and later.changed
    assert later.post_digest is None  # being posted by the first, which is alive
    assert channel.record(storm.digest).groups == 2
    assert len(digest_lines(channel.data, storm.digest)) == 2


def test_groups_with_their_own_message_keep_it_during_the_storm() -> None:
    channel = Channel()
    channel.arrive("old", firing("checkout"))
    channel.own_message("old", "1.1")
    for i in range(4):
        channel.arrive(f"group{i}", firing(f"svc{i}"))
    again = channel.arrive("old", resolved("checkout"))
    assert (again.claim.outcome, again.claim.ts, again.digest) == (ClaimOutcome.UPDATE, "1.1", None)


def test_a_digests_group_changes_its_line_without_extending_the_storm() -> None:
    channel = Channel()
    for i in range(5):
        arrival = channel.arrive(f"group{i}", firing(f"svc{i}"))
    assert arrival.digest is not None
    key = arrival.digest
    channel.posted(key)
    later = NOW + timedelta(seconds=30)
    again = channel.arrive("group4", resolved("svc4", later), later)
    assert again.claim.outcome is ClaimOutcome.DIGEST and again.post_digest is None
    assert again.changed
    record = channel.record(key)
    [line] = digest_lines(channel.data, key)
    assert not line.firing and line.ended is not None
    assert record.last == NOW and record.groups == 1  # a resolution is not a new group


def test_a_repeat_that_changes_nothing_writes_nothing_for_a_while() -> None:
    channel = Channel()
    for i in range(5):
        arrival = channel.arrive(f"group{i}", firing(f"svc{i}"))
    assert arrival.digest is not None
    channel.posted(arrival.digest)
    before = dict(channel.data)
    soon = NOW + timedelta(seconds=30)
    repeat = channel.arrive("group4", firing("svc4"), soon)  # the same alerts, since the same
    assert repeat.digest == arrival.digest and not repeat.changed
    assert channel.data == before
    later = NOW + TOUCH_INTERVAL
    touched = channel.arrive("group4", firing("svc4"), later)
    assert not touched.changed and channel.data != before  # kept fresh, not re-rendered


def test_the_storm_ends_a_window_after_its_last_new_group() -> None:
    channel = Channel()
    for i in range(6):
        arrival = channel.arrive(f"group{i}", firing(f"svc{i}"))
    assert arrival.digest is not None
    joined = channel.arrive("late", firing("late"), NOW + timedelta(seconds=59))
    assert joined.digest == arrival.digest
    after = NOW + timedelta(seconds=59) + POLICY.window
    calm = channel.arrive("calm", firing("calm", at=after), after)
    assert calm.claim.outcome is ClaimOutcome.POST and calm.digest is None


def test_a_poster_that_died_leaves_the_digest_to_the_next_delivery() -> None:
    channel = Channel()
    for i in range(5):
        arrival = channel.arrive(f"group{i}", firing(f"svc{i}"))
    assert arrival.post_digest is not None
    soon = NOW + POSTING_TTL / 2
    assert channel.arrive("group0b", firing("x"), soon).post_digest is None
    late = NOW + POSTING_TTL + timedelta(seconds=1)
    retried = channel.arrive("group4", firing("svc4", at=late), late)
    assert retried.post_digest is not None and retried.digest == arrival.digest


def test_channels_storm_on_their_own() -> None:
    channel = Channel()
    for i in range(5):
        channel.arrive(f"group{i}", firing(f"svc{i}"))
    other = channel.arrive("elsewhere", firing("cart"), channel="C0OTHER")
    assert other.claim.outcome is ClaimOutcome.POST


def test_a_full_digest_goes_on_in_a_new_one() -> None:
    channel = Channel()
    for i in range(5):
        arrival = channel.arrive(f"group{i}", firing(f"svc{i}"))
    assert arrival.digest is not None
    full = channel.record(arrival.digest)
    channel.data[arrival.digest] = replace(full, groups=MAX_DIGEST_GROUPS).encode()
    later = NOW + timedelta(seconds=1)
    overflow = channel.arrive("one-more", firing("svc1", at=later), later)
    assert overflow.digest is not None and overflow.digest != arrival.digest
    assert overflow.post_digest is not None
    state = ChannelState.decode(channel.data[channel_key(CHANNEL)])
    assert state is not None and state.digest == overflow.digest


def test_summaries_add_up_a_services_groups_firing_first() -> None:
    lines = [
        firing("checkout", "HighErrorRate", "HighErrorRate"),
        firing("checkout", "HighLatency"),
        resolved("cart"),
        firing("search", at=NOW - timedelta(minutes=10)),
    ]
    summaries = service_summaries(lines)
    assert [s.service for s in summaries] == ["search", "checkout", "cart"]
    checkout = summaries[1]
    assert checkout.alerts == (("HighErrorRate", 2), ("HighLatency", 1))
    assert checkout.groups == 2 and checkout.firing and checkout.resolved_at is None
    cart = summaries[2]
    assert not cart.firing and cart.resolved_at == NOW - timedelta(seconds=5)


def test_a_summary_counts_the_firing_alerts_while_any_fires() -> None:
    group = summarize("x", ["A", "A", "B"], [True, False, True], None, None, NOW)
    assert group.alerts == (("A", 1), ("B", 1)) and group.firing
    done = summarize("x", ["A", "A", "B"], [False, False, False], None, NOW, NOW)
    assert done.alerts == (("A", 2), ("B", 1)) and not done.firing and done.ended == NOW


def test_pruning_drops_digests_no_group_shows_and_idle_channel_states() -> None:
    channel = Channel()
    for i in range(5):
        arrival = channel.arrive(f"group{i}", firing(f"svc{i}"))
    assert arrival.digest is not None
    referenced = referenced_digests(channel.data.values())
    assert referenced == {arrival.digest}
    soon = NOW + timedelta(seconds=1)
    kept = prune_storms(channel.data, soon, referenced=referenced, keep_untouched=KEEP_UNTOUCHED)
    assert arrival.digest in kept and channel_key(CHANNEL) in kept
    week = NOW + timedelta(days=7)
    kept = prune_storms(channel.data, week, referenced=referenced, keep_untouched=KEEP_UNTOUCHED)
    assert arrival.digest in kept  # its group is still in the index
    assert channel_key(CHANNEL) not in kept  # nothing left to count, and no storm on
    assert entry_key("group0") in kept  # the groups are the index's to prune
    gone = prune_storms(channel.data, week, referenced=frozenset(), keep_untouched=KEEP_UNTOUCHED)
    assert arrival.digest not in gone  # its groups were pruned: nothing shows it any more
    keep = frozenset({arrival.digest})
    assert arrival.digest in prune_storms(
        channel.data, week, referenced=frozenset(), keep_untouched=KEEP_UNTOUCHED, keep=keep
    )


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        json.dumps({"channel": 1}),
        json.dumps(
            {
                "channel": "C",
                "started": "2026-12-02T12:00:00Z",
                "last": "2026-12-02T12:00:00Z",
                "updated": "2026-12-02T12:00:00Z",
                "groups": True,
            }
        ),
        json.dumps(
            {
                "channel": "C",
                "started": "9999-12-31T23:59:59-23:59",
                "last": "2026-12-02T12:00:00Z",
                "updated": "2026-12-02T12:00:00Z",
                "groups": 0,
            }
        ),
    ],
)
def test_a_record_that_is_not_one_is_refused_and_pruned(raw: str) -> None:
    assert DigestRecord.decode(raw) is None
    key = "d." + "0" * 40
    data = {key: raw, "other": "kept"}
    kept = prune_storms(data, NOW, referenced={key}, keep_untouched=KEEP_UNTOUCHED)
    assert kept == {"other": "kept"}


def test_a_line_keeps_only_so_many_alert_names_of_a_group() -> None:
    many = summarize("x", [f"Alert{i}" for i in range(500)], [True] * 500, None, None, NOW)
    assert len(many.alerts) == MAX_ALERT_NAMES
    entry = AlertMessageEntry("g", CHANNEL, None, "firing", NOW, NOW, digest="d.1", line=many)
    assert AlertMessageEntry.decode(entry.encode()) == entry


def test_a_storm_policy_needs_room_for_a_group_and_the_digest() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        StormPolicy(messages=1)
    with pytest.raises(ValueError, match="positive"):
        StormPolicy(window=timedelta(0))
