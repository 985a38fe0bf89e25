"""The rollback lock's decisions from Lease JSON: its name, what it says, whether it is free
(by this replica's own observation and monotonic clock), and what losing it says."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.errors import Conflict
from bot.domain.rollback.locks import (
    LEASE_PREFIX,
    MAX_LEASE_SECONDS,
    MIN_LEASE_SECONDS,
    LeaseState,
    LockLost,
    Observation,
    is_free,
    lease_duration,
    lease_name,
    lease_state,
    observe,
    run_annotations,
)
from bot.domain.rollback.models import RunInfo

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
# What the API server accepts as metadata.name of a Lease (IsDNS1123Subdomain).
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

RUN = RunInfo(
    service="checkout",
    actor="U0ALICE",
    from_version="1.2",
    to_version="1.1",
    to_revision=2,
    started_at=datetime(2026, 11, 27, 3, 59, 30, tzinfo=UTC),
)


def lease(
    *,
    holder: str | None = "bot-7f9c-1",
    renew: str | None = "2026-11-27T03:59:50.123456Z",
    acquire: str | None = "2026-11-27T03:59:30.000000Z",
    duration: Any = 30,
    annotations: dict[str, str] | None = None,
    resource_version: str = "8812",
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if holder is not None:
        spec["holderIdentity"] = holder
    if renew is not None:
        spec["renewTime"] = renew
    if acquire is not None:
        spec["acquireTime"] = acquire
    if duration is not None:
        spec["leaseDurationSeconds"] = duration
    metadata: dict[str, Any] = {
        "name": "rollback-bot.checkout",
        "namespace": "shop",
        "resourceVersion": resource_version,
    }
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def state(
    holder: str | None = "bot-2",
    renewed: datetime | None = NOW,
    duration: int = 30,
    resource_version: str | None = "1",
) -> LeaseState:
    return LeaseState(
        holder=holder,
        renewed_at=renewed,
        duration_seconds=duration,
        run=None,
        resource_version=resource_version,
    )


# Monotonic seconds of this replica: when it first saw the Lease as it is, and now.
SEEN = 5000.0


# -- lease_name -----------------------------------------------------------------------------


def test_the_name_is_the_prefix_and_the_deployment() -> None:
    assert lease_name("checkout") == "rollback-bot.checkout"
    assert lease_name("api.v2-web") == "rollback-bot.api.v2-web"


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        ("Checkout", "rollback-bot.checkout"),
        ("check_out", "rollback-bot.check-out"),
        ("shop/cart", "rollback-bot.shop-cart"),
        ("cart-", "rollback-bot.cart"),
        ("cart.", "rollback-bot.cart"),
    ],
)
def test_characters_a_lease_name_cannot_hold_are_replaced(deployment: str, expected: str) -> None:
    assert lease_name(deployment) == expected
    assert DNS_SUBDOMAIN.match(lease_name(deployment))


def test_the_longest_deployment_name_gives_a_valid_name_of_at_most_253_characters() -> None:
    longest = "a" * 253
    name = lease_name(longest)
    assert len(name) == 253
    head, digest = name.rsplit("-", 1)
    assert head == LEASE_PREFIX + "a" * (253 - len(LEASE_PREFIX) - 13)
    assert re.fullmatch(r"[0-9a-f]{12}", digest)
    assert DNS_SUBDOMAIN.match(name)


def test_a_name_that_just_fits_is_kept_whole() -> None:
    fits = "a" * (253 - len(LEASE_PREFIX))
    assert lease_name(fits) == LEASE_PREFIX + fits


@pytest.mark.parametrize("cut_at", [".", "-"])
def test_a_cut_that_ends_on_a_separator_drops_it(cut_at: str) -> None:
    # The cut before the digest falls on a separator: the head may not end with it.
    room = 253 - len(LEASE_PREFIX) - 13
    deployment = "b" * (room - 1) + cut_at + "tail" * 10
    name = lease_name(deployment)
    assert name.startswith(LEASE_PREFIX + "b" * (room - 1) + "-")
    assert DNS_SUBDOMAIN.match(name)
    assert len(name) <= 253


def test_names_are_stable() -> None:
    assert lease_name("checkout") == lease_name("checkout")


def test_distinct_long_deployment_names_get_distinct_leases() -> None:
    common = "payments-reconciliation-" * 10  # 240 characters
    first, second = common + "eu-west", common + "us-east"
    assert len(first) <= 253 and len(second) <= 253  # both valid Deployment names
    assert lease_name(first) != lease_name(second)


# -- lease_state ----------------------------------------------------------------------------


def test_the_holder_the_renewal_and_the_run_are_read() -> None:
    got = lease_state(lease(annotations=run_annotations(RUN)))
    assert got.holder == "bot-7f9c-1"
    assert got.renewed_at == datetime(2026, 11, 27, 3, 59, 50, 123456, tzinfo=UTC)
    assert got.duration_seconds == 30
    assert got.resource_version == "8812"
    assert got.run == dataclasses.replace(RUN, holder="bot-7f9c-1")


def test_the_acquire_time_stands_in_for_a_missing_renew_time() -> None:
    got = lease_state(lease(renew=None))
    assert got.renewed_at == datetime(2026, 11, 27, 3, 59, 30, tzinfo=UTC)


def test_no_times_means_no_renewal() -> None:
    assert lease_state(lease(renew=None, acquire=None)).renewed_at is None


def test_a_released_lease_has_no_holder_and_no_run() -> None:
    # release_lock nulls the holder but leaves the annotations of the last run.
    got = lease_state(
        lease(holder=None, renew=None, acquire=None, annotations=run_annotations(RUN))
    )
    assert got.holder is None
    assert got.run is None
    assert got.renewed_at is None


def test_an_empty_holder_is_no_holder() -> None:
    got = lease_state(lease(holder="", annotations=run_annotations(RUN)))
    assert got.holder is None
    assert got.run is None


def test_a_lease_without_the_bots_annotations_has_a_holder_but_no_run() -> None:
    got = lease_state(lease(annotations={"owner": "someone-else"}))
    assert got.holder == "bot-7f9c-1"
    assert got.run is None


def test_missing_run_details_get_placeholders() -> None:
    got = lease_state(lease(annotations={"rollback-bot.io/started-at": "2026-11-27T03:59:30Z"}))
    assert got.run == RunInfo(
        service="",
        actor="someone",
        from_version="?",
        to_version="?",
        to_revision=0,
        started_at=datetime(2026, 11, 27, 3, 59, 30, tzinfo=UTC),
        holder="bot-7f9c-1",
    )


def test_an_unreadable_start_time_means_no_run() -> None:
    notes = {**run_annotations(RUN), "rollback-bot.io/started-at": "a while ago"}
    got = lease_state(lease(annotations=notes))
    assert got.holder == "bot-7f9c-1"
    assert got.run is None


def test_an_empty_revision_annotation_reads_as_zero() -> None:
    notes = {**run_annotations(RUN), "rollback-bot.io/to-revision": ""}
    run = lease_state(lease(annotations=notes)).run
    assert run is not None and run.to_revision == 0


def test_a_garbage_revision_annotation_does_not_break_reading_the_lease() -> None:
    notes = {**run_annotations(RUN), "rollback-bot.io/to-revision": "two"}
    got = lease_state(lease(annotations=notes))
    assert got.holder == "bot-7f9c-1"
    assert got.run is None or got.run.to_revision == 0


def test_an_empty_object_is_a_free_lease() -> None:
    got = lease_state({})
    assert got == LeaseState(
        holder=None, renewed_at=None, duration_seconds=0, run=None, resource_version=None
    )
    assert is_free(got, SEEN, SEEN, "bot-1")


def test_garbage_times_are_no_times() -> None:
    got = lease_state(lease(renew="yesterday", acquire="12345"))
    assert got.renewed_at is None
    assert got.acquired_at is None


def test_the_acquire_time_is_read() -> None:
    assert lease_state(lease()).acquired_at == datetime(2026, 11, 27, 3, 59, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (30, 30),
        ("30", 30),
        (" 45 ", 45),
        (10**9, 10**9),  # read as written; bounded where it is decided on
        ("9" * 5000, MAX_LEASE_SECONDS),  # more digits than int() accepts by default
        ("forever", 0),
        ("", 0),
        (None, 0),
        (True, 0),
        (30.5, 0),
        ({"seconds": 30}, 0),
        ("-5", 0),
        ("\u00b2", 0),  # a digit to str.isdigit, not to int()
    ],
)
def test_the_duration_is_read_defensively(raw: Any, expected: int) -> None:
    assert lease_state(lease(duration=raw)).duration_seconds == expected


@pytest.mark.parametrize("raw", ["\u00b2", "\u0663", "9" * 5000, "-1", "2.0"])
def test_a_revision_annotation_that_is_no_plain_number_reads_as_zero(raw: str) -> None:
    notes = {**run_annotations(RUN), "rollback-bot.io/to-revision": raw}
    run = lease_state(lease(annotations=notes)).run
    assert run is not None and run.to_revision == 0


@pytest.mark.parametrize(
    "broken",
    [
        {"metadata": "x", "spec": ["holderIdentity"]},
        {"metadata": {"annotations": "a=b"}, "spec": {"holderIdentity": 7}},
        {"spec": {"holderIdentity": {"name": "bot-2"}, "leaseDurationSeconds": []}},
    ],
)
def test_a_lease_of_the_wrong_shape_reads_as_free_not_as_an_exception(
    broken: dict[str, Any],
) -> None:
    got = lease_state(broken)
    assert got.holder is None and got.run is None and got.duration_seconds == 0


def test_a_resource_version_that_is_no_text_is_none() -> None:
    got = lease_state({"metadata": {"resourceVersion": 8812}, "spec": {"holderIdentity": "x"}})
    assert got.resource_version is None


# -- lease_duration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (30, 30),
        (MIN_LEASE_SECONDS, MIN_LEASE_SECONDS),
        (MAX_LEASE_SECONDS, MAX_LEASE_SECONDS),
        (0, MIN_LEASE_SECONDS),
        (-7, MIN_LEASE_SECONDS),
        (10**9, MAX_LEASE_SECONDS),
    ],
)
def test_the_duration_decided_on_is_bounded(duration: int, expected: int) -> None:
    assert lease_duration(state(duration=duration)) == expected


# -- observe --------------------------------------------------------------------------------


def test_a_lease_seen_for_the_first_time_is_observed_from_now() -> None:
    assert observe(None, state(), SEEN).since == SEEN


def test_an_unchanged_lease_keeps_the_time_it_was_first_seen() -> None:
    first = observe(None, state(), SEEN)
    assert observe(first, state(), SEEN + 100) == first


@pytest.mark.parametrize(
    "changed",
    [
        state(resource_version="2"),
        state(holder="bot-3"),
        state(renewed=NOW + timedelta(seconds=10)),
        state(holder=None),
    ],
)
def test_any_change_starts_the_observation_again(changed: LeaseState) -> None:
    first = observe(None, state(), SEEN)
    assert observe(first, changed, SEEN + 100).since == SEEN + 100


def test_without_a_resource_version_a_renewal_still_counts_as_a_change() -> None:
    first = observe(None, state(resource_version=None), SEEN)
    renewed = state(resource_version=None, renewed=NOW + timedelta(seconds=10))
    assert observe(first, renewed, SEEN + 100).since == SEEN + 100
    assert observe(first, state(resource_version=None), SEEN + 100).since == SEEN


# -- is_free --------------------------------------------------------------------------------


def test_free_when_nobody_holds_it() -> None:
    assert is_free(state(holder=None), SEEN, SEEN, "bot-1")


def test_free_when_i_hold_it_even_freshly_renewed() -> None:
    assert is_free(state(holder="bot-1", renewed=NOW), SEEN, SEEN, "bot-1")


def test_taken_while_we_see_it_unchanged_for_less_than_its_duration() -> None:
    assert not is_free(state(), SEEN, SEEN + 5, "bot-1")


def test_taken_up_to_the_end_of_its_duration() -> None:
    assert not is_free(state(), SEEN, SEEN + 30, "bot-1")


def test_free_once_we_saw_it_unchanged_for_longer_than_its_duration() -> None:
    assert is_free(state(), SEEN, SEEN + 30.001, "bot-1")
    assert is_free(state(), SEEN, SEEN + 7200, "bot-1")


def test_a_lease_first_seen_now_is_held_however_old_its_renewal_looks() -> None:
    # Its holder's clock runs hours behind ours: its renewTime says nothing to our clock.
    long_ago = state(renewed=NOW - timedelta(hours=2))
    assert not is_free(long_ago, SEEN, SEEN, "bot-1")
    # Nor does a renewTime in our future keep it once we saw it unchanged long enough.
    ahead = state(renewed=NOW + timedelta(hours=2))
    assert is_free(ahead, SEEN, SEEN + 31, "bot-1")


def test_held_without_any_renewal_time_is_judged_by_observation_too() -> None:
    assert not is_free(state(renewed=None), SEEN, SEEN + 5, "bot-1")
    assert is_free(state(renewed=None), SEEN, SEEN + 31, "bot-1")


def test_a_huge_duration_blocks_for_at_most_the_bound() -> None:
    stuck = state(duration=10**9)
    assert not is_free(stuck, SEEN, SEEN + MAX_LEASE_SECONDS, "bot-1")
    assert is_free(stuck, SEEN, SEEN + MAX_LEASE_SECONDS + 1, "bot-1")


def test_a_zero_duration_is_held_for_the_least_bound() -> None:
    assert not is_free(state(duration=0), SEEN, SEEN + MIN_LEASE_SECONDS, "bot-1")
    assert is_free(state(duration=0), SEEN, SEEN + MIN_LEASE_SECONDS + 0.5, "bot-1")


def test_a_lease_read_from_json_is_judged_by_what_we_observed_of_it() -> None:
    held = lease_state(lease(renew="2026-11-27T03:59:50Z", duration=30))
    seen = observe(None, held, SEEN)
    again = observe(seen, lease_state(lease(renew="2026-11-27T03:59:50Z", duration=30)), SEEN + 31)
    assert not is_free(held, seen.since, SEEN, "bot-1")
    assert is_free(held, again.since, SEEN + 31, "bot-1")
    assert is_free(held, seen.since, SEEN, "bot-7f9c-1")
    # Renewed meanwhile (a new resourceVersion): held again for a whole duration from now.
    renewed = lease_state(lease(renew="2026-11-27T04:00:20Z", resource_version="8813"))
    after = observe(seen, renewed, SEEN + 31)
    assert not is_free(renewed, after.since, SEEN + 31, "bot-1")


def test_an_observation_is_a_plain_value() -> None:
    assert Observation(record=("1", "bot-2", NOW), since=SEEN) == observe(None, state(), SEEN)


# -- LockLost -------------------------------------------------------------------------------

WHAT = "renewing the lock of deployment shop/checkout"


def test_losing_the_lock_names_the_new_holder_and_since_when() -> None:
    taken = lease_state(lease(holder="bot-9", acquire="2026-11-27T04:00:31.500000Z"))
    lost = LockLost(WHAT, taken)
    assert str(lost) == (
        "renewing the lock of deployment shop/checkout: the lock was lost: "
        "bot-9 holds it since 2026-11-27T04:00:31Z"
    )
    assert lost.holder == "bot-9"
    assert lost.since == datetime(2026, 11, 27, 4, 0, 31, 500000, tzinfo=UTC)
    # A Conflict: everything that reports cluster errors already says it in one sentence.
    assert isinstance(lost, Conflict)


def test_losing_the_lock_without_an_acquire_time_falls_back_to_the_renewal() -> None:
    lost = LockLost(WHAT, lease_state(lease(holder="bot-9", acquire=None)))
    assert str(lost).endswith("bot-9 holds it since 2026-11-27T03:59:50Z")


def test_losing_the_lock_without_any_time_still_names_the_holder() -> None:
    lost = LockLost(WHAT, lease_state(lease(holder="bot-9", acquire=None, renew=None)))
    assert str(lost).endswith("the lock was lost: bot-9 holds it now")


def test_losing_the_lock_to_a_release_says_nobody_holds_it() -> None:
    lost = LockLost(WHAT, lease_state(lease(holder=None, renew=None, acquire=None)))
    assert lost.holder is None
    assert str(lost).endswith(
        "the lock was lost: nobody holds it any more, someone else released it"
    )


def test_losing_the_lock_to_a_deletion_says_so() -> None:
    lost = LockLost(WHAT, None)
    assert lost.holder is None and lost.since is None
    assert str(lost).endswith("the lock was lost: its Lease was deleted")
