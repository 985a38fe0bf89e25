"""The rollback lock's decisions from Lease JSON: its name, what it says, whether it is free."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.rollback.locks import (
    LEASE_PREFIX,
    LeaseState,
    is_free,
    lease_name,
    lease_state,
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
    duration: int | None = 30,
    annotations: dict[str, str] | None = None,
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
        "resourceVersion": "8812",
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
    holder: str | None = "bot-2", renewed: datetime | None = NOW, duration: int = 30
) -> LeaseState:
    return LeaseState(
        holder=holder, renewed_at=renewed, duration_seconds=duration, run=None, resource_version="1"
    )


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
    assert got.run == RUN


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
    assert is_free(got, NOW, "bot-1")


def test_garbage_times_are_no_times() -> None:
    got = lease_state(lease(renew="yesterday", acquire="12345"))
    assert got.renewed_at is None


# -- is_free --------------------------------------------------------------------------------


def test_free_when_nobody_holds_it() -> None:
    assert is_free(state(holder=None), NOW, "bot-1")


def test_free_when_i_hold_it_even_freshly_renewed() -> None:
    assert is_free(state(holder="bot-1", renewed=NOW), NOW, "bot-1")


def test_taken_while_its_holder_renews_it() -> None:
    assert not is_free(state(renewed=NOW - timedelta(seconds=5)), NOW, "bot-1")


def test_taken_up_to_the_end_of_its_duration() -> None:
    assert not is_free(state(renewed=NOW - timedelta(seconds=30)), NOW, "bot-1")


def test_free_once_its_holder_stopped_renewing_it() -> None:
    assert is_free(state(renewed=NOW - timedelta(seconds=30, microseconds=1)), NOW, "bot-1")
    assert is_free(state(renewed=NOW - timedelta(hours=2)), NOW, "bot-1")


def test_free_when_held_without_any_renewal_time() -> None:
    assert is_free(state(renewed=None), NOW, "bot-1")


def test_a_lease_read_from_json_is_judged_by_its_renewal() -> None:
    held = lease_state(lease(renew="2026-11-27T03:59:50Z", duration=30))
    assert not is_free(held, NOW, "bot-1")
    assert is_free(held, NOW + timedelta(seconds=21), "bot-1")
    assert is_free(held, NOW, "bot-7f9c-1")
