"""The run a Lease keeps for another replica to finish, and when a replica should pick it up:
handed over (at once), left by this replica's earlier self (at once), or silent too long."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.rollback.locks import (
    HANDED_OVER_BY,
    adoptable,
    is_free,
    lease_state,
    run_annotations,
)
from bot.domain.rollback.models import RunInfo, Thread

THREAD = Thread("C0INCIDENT", "1795752000.000100", message_ts="1795752000.000100")
RUN = RunInfo(
    service="checkout",
    actor="U0ALICE",
    from_version="2.14.0",
    to_version="2.13.0",
    to_revision=1,
    started_at=datetime(2026, 11, 27, 3, 59, 30, tzinfo=UTC),
    via="slack",
    reason="5xx since 2.14.0",
    rollback_id="0a1b2c3d4e5f",
    thread=THREAD,
    deployment="checkout",
    from_revision=2,
    target_replicaset="checkout-5d8f",
)
SEEN = 1000.0


def lease(holder: str | None, notes: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"leaseDurationSeconds": 30}
    if holder is not None:
        spec.update(holderIdentity=holder, renewTime="2026-11-27T03:59:50.000000Z")
    return {"metadata": {"resourceVersion": "7", "annotations": notes}, "spec": spec}


def test_the_whole_run_goes_into_the_lease_and_comes_back() -> None:
    got = lease_state(lease("bot-a", run_annotations(RUN))).run
    assert got == dataclasses.replace(RUN, holder="bot-a")


def test_a_handed_over_run_is_held_for_a_replica_to_pick_up_at_once() -> None:
    state = lease_state(lease(None, {**run_annotations(RUN), HANDED_OVER_BY: "bot-a"}))
    assert state.holder is None and state.handed_over_by == "bot-a"
    assert state.run == dataclasses.replace(RUN, holder="bot-a")
    assert adoptable(state, SEEN, SEEN, "bot-b")  # first seen just now: at once
    # Nobody starts a new rollback over it meanwhile, not until it went unpicked too long.
    assert not is_free(state, SEEN, SEEN + 30, "bot-b")
    assert is_free(state, SEEN, SEEN + 31, "bot-b")


def test_a_released_lease_keeps_nothing_to_pick_up() -> None:
    state = lease_state(lease(None, run_annotations(RUN)))  # no hand-over mark: a release
    assert state.run is None and not state.held
    assert not adoptable(state, SEEN, SEEN + 999, "bot-b")
    assert is_free(state, SEEN, SEEN, "bot-b")


def test_a_silent_holder_is_picked_up_only_after_its_duration_by_our_own_clock() -> None:
    state = lease_state(lease("bot-a", run_annotations(RUN)))
    assert not adoptable(state, SEEN, SEEN + 30, "bot-b")
    assert adoptable(state, SEEN, SEEN + 31, "bot-b")


def test_this_replicas_earlier_self_is_picked_up_at_once() -> None:
    # The same pod name after an OOM kill: the run in the Lease is nobody's any more.
    state = lease_state(lease("bot-a", run_annotations(RUN)))
    assert adoptable(state, SEEN, SEEN, "bot-a")


@pytest.mark.parametrize(
    "notes",
    [
        {"channel": "<!channel>"},
        {"channel": "c0lower"},
        {"thread-ts": "yesterday"},
        {"thread-ts": "1" * 40 + ".1"},
        {"channel": ""},
    ],
)
def test_a_run_whose_thread_is_not_slacks_is_not_picked_up(notes: dict[str, str]) -> None:
    hostile = {**run_annotations(RUN), **{f"rollback-bot.io/{k}": v for k, v in notes.items()}}
    held = lease_state(lease("bot-a", hostile))
    assert held.run is not None and held.run.thread is None
    assert not adoptable(held, SEEN, SEEN + 999, "bot-b")
    # Handed over without a thread to tell it in: nobody can finish it, so it is a release.
    handed = lease_state(lease(None, {**hostile, HANDED_OVER_BY: "bot-a"}))
    assert handed.run is None and not handed.held


def test_a_message_ts_that_is_not_one_is_dropped_but_the_thread_kept() -> None:
    notes = {**run_annotations(RUN), "rollback-bot.io/message-ts": "<https://evil|click>"}
    run = lease_state(lease("bot-a", notes)).run
    assert run is not None and run.thread == Thread(THREAD.channel, THREAD.thread_ts, None)


def test_a_run_without_an_id_is_not_picked_up() -> None:
    notes = {**run_annotations(RUN), "rollback-bot.io/rollback-id": "../../etc"}
    state = lease_state(lease("bot-a", notes))
    assert state.run is not None and state.run.rollback_id is None
    assert not adoptable(state, SEEN, SEEN + 999, "bot-b")


def test_lease_text_is_bounded() -> None:
    notes = {
        **run_annotations(RUN),
        "rollback-bot.io/actor": "x" * 100_000,
        "rollback-bot.io/reason": "y" * 100_000,
        "rollback-bot.io/from-revision": "9" * 50,
    }
    run = lease_state(lease("bot-a", notes)).run
    assert run is not None
    assert len(run.actor) <= 200 and run.reason is not None and len(run.reason) <= 3000
    assert run.from_revision is None
