"""The two-person rule's decisions: who may approve, when it is complete, rejected or expired,
and the request's JSON read back from the cluster as hostile text."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.rollback.approvals import (
    ApprovalRequest,
    State,
    approve,
    expire,
    from_json,
    keep,
    reject,
    to_json,
)
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.models import Target, Thread

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
REQUEST = ApprovalRequest(
    id="0a1b2c3d4e5f",
    service="checkout",
    target=Target("shop", "checkout"),
    requester="U0ALICE",
    requester_name="@alice",
    from_version="2.14.0",
    to_version="2.13.0",
    target_replicaset="checkout-5d8f",
    target_revision=2,
    snapshot=Snapshot(
        revision=3, generation=4, target_replicaset="checkout-5d8f", target_revision=2
    ),
    reason="5xx since 2.14.0",
    thread=Thread("C0INCIDENT", "1795752000.000100", "1795752000.000100"),
    created_at=NOW,
    expires_at=NOW + timedelta(minutes=15),
    needed=2,
)


def test_the_requester_cannot_approve_their_own_request() -> None:
    decision = approve(REQUEST, "U0ALICE", NOW)
    assert decision.request is None
    assert decision.refusal is not None and "someone else must approve" in decision.refusal


def test_each_approver_counts_once_and_the_last_one_completes_it() -> None:
    first = approve(REQUEST, "U0BOB", NOW)
    assert first.request is not None and not first.complete
    assert first.request.missing == 1
    again = approve(first.request, "U0BOB", NOW)
    assert again.request is None and again.refusal is not None and "once" in again.refusal
    second = approve(first.request, "U0CAROL", NOW)
    assert second.complete and second.request is not None
    assert second.request.state is State.APPROVED
    assert second.request.approvers == ("U0BOB", "U0CAROL")
    late = approve(second.request, "U0DAVE", NOW)
    assert late.request is None and late.refusal is not None and "approved already" in late.refusal


def test_a_rejected_request_takes_no_more_approvals() -> None:
    rejected = reject(REQUEST, "U0BOB", NOW)
    assert rejected.request is not None and rejected.request.state is State.REJECTED
    assert rejected.request.decided_by == "U0BOB"
    assert approve(rejected.request, "U0CAROL", NOW).refusal == "it was rejected"


def test_a_request_expires_at_its_time_and_not_before() -> None:
    assert expire(REQUEST, REQUEST.expires_at - timedelta(seconds=1)) is None
    expired = expire(REQUEST, REQUEST.expires_at)
    assert expired is not None and expired.state is State.EXPIRED
    assert expire(expired, REQUEST.expires_at + timedelta(hours=1)) is None  # once
    # A click after its time is refused even before the sweep marks it.
    late = approve(REQUEST, "U0BOB", REQUEST.expires_at + timedelta(seconds=1))
    assert late.refusal is not None and "expired" in late.refusal


def test_finished_requests_are_kept_a_day_then_dropped() -> None:
    done = dataclasses.replace(REQUEST, state=State.REJECTED, decided_at=NOW)
    assert keep(done, NOW + timedelta(hours=23))
    assert not keep(done, NOW + timedelta(hours=25))
    assert keep(REQUEST, NOW + timedelta(hours=2))


def test_the_request_goes_into_json_and_comes_back_whole() -> None:
    approved = dataclasses.replace(REQUEST, approvers=("U0BOB",), request_ts="1795752001.000200")
    assert from_json(to_json(approved)) == approved


@pytest.mark.parametrize(
    "hostile",
    [
        "",
        "not json",
        "[]",
        "{}",
        json.dumps({**json.loads(to_json(REQUEST)), "id": "../../etc"}),
        json.dumps({**json.loads(to_json(REQUEST)), "needed": "2"}),
        json.dumps({**json.loads(to_json(REQUEST)), "state": "approved!"}),
        json.dumps({**json.loads(to_json(REQUEST)), "createdAt": "yesterday"}),
        json.dumps({**json.loads(to_json(REQUEST)), "snapshot": {"generation": True}}),
    ],
)
def test_text_that_is_not_a_request_reads_as_none(hostile: str) -> None:
    assert from_json(hostile) is None


def test_long_text_from_the_store_is_bounded() -> None:
    data = json.loads(to_json(REQUEST))
    data["reason"] = "x" * 100_000
    data["approvers"] = [f"U{i:08d}" for i in range(1000)]
    request = from_json(json.dumps(data))
    assert request is not None
    assert request.reason is not None and len(request.reason) <= 3000
    assert len(request.approvers) <= 20
