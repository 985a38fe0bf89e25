"""Repeated Slack deliveries: keys remembered for a while (an injected clock), and which key."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.dedupe import SEEN_MAX, SeenKeys, delivery_key


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_key_is_new_once_then_repeated() -> None:
    seen = SeenKeys(ttl=60.0, clock=Clock())
    assert seen.first_time("event:Ev1")
    assert not seen.first_time("event:Ev1")
    assert not seen.first_time("event:Ev1")
    assert seen.first_time("event:Ev2")


def test_a_key_is_remembered_for_the_ttl_then_forgotten() -> None:
    clock = Clock(1000.0)
    seen = SeenKeys(ttl=60.0, clock=clock)
    assert seen.first_time("trigger:T1")
    clock.now = 1059.0
    assert not seen.first_time("trigger:T1")
    clock.now = 1060.0  # exactly the TTL later: still a repeat
    assert not seen.first_time("trigger:T1")
    clock.now = 1060.5
    assert seen.first_time("trigger:T1")
    # Seen again just now: remembered anew from this moment.
    clock.now = 1100.0
    assert not seen.first_time("trigger:T1")


def test_a_repeat_does_not_extend_the_memory_of_the_first_sight() -> None:
    clock = Clock(0.0)
    seen = SeenKeys(ttl=10.0, clock=clock)
    assert seen.first_time("k")
    clock.now = 9.0
    assert not seen.first_time("k")
    clock.now = 10.5
    assert seen.first_time("k")


def test_only_expired_keys_are_forgotten() -> None:
    clock = Clock(0.0)
    seen = SeenKeys(ttl=10.0, clock=clock)
    assert seen.first_time("old")
    clock.now = 6.0
    assert seen.first_time("young")
    clock.now = 12.0
    assert seen.first_time("old")  # 12s old: forgotten
    assert not seen.first_time("young")  # 6s old: remembered


def test_at_most_the_latest_seen_max_keys_are_remembered() -> None:
    seen = SeenKeys(ttl=3600.0, clock=Clock())
    for n in range(SEEN_MAX):
        assert seen.first_time(f"k{n}")
    assert not seen.first_time("k0")  # SEEN_MAX keys: the oldest is still there
    assert seen.first_time("one more")
    assert seen.first_time("k0")  # SEEN_MAX newer keys since: the oldest went
    assert not seen.first_time(f"k{SEEN_MAX - 1}")  # the newest ones stay
    assert not seen.first_time("one more")


def test_the_default_ttl_is_ten_minutes() -> None:
    clock = Clock(0.0)
    seen = SeenKeys(clock=clock)
    assert seen.first_time("k")
    clock.now = 599.0
    assert not seen.first_time("k")
    clock.now = 601.0
    assert seen.first_time("k")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"event_id": "Ev08MFMKH6", "event": {"type": "message"}}, "event:Ev08MFMKH6"),
        ({"trigger_id": "1337.42.abcd", "command": "/rollback"}, "trigger:1337.42.abcd"),
        ({"event_id": "Ev1", "trigger_id": "T1"}, "event:Ev1"),
        ({"event_id": "", "trigger_id": "T1"}, "trigger:T1"),
        ({"event_id": None, "trigger_id": None}, None),
        ({"type": "view_closed"}, None),
        ({}, None),
    ],
)
def test_delivery_key(body: dict[str, Any], key: str | None) -> None:
    assert delivery_key(body) == key
