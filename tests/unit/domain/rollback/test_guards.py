from __future__ import annotations

import dataclasses

from bot.adapters.kube.parsing import parse_history
from bot.domain.rollback.guards import AccessPolicy, Snapshot, may_roll_back, staleness
from bot.domain.rollback.models import History
from tests.builders import deployment, replicaset, template


def test_open_policy_allows_anyone() -> None:
    assert may_roll_back(AccessPolicy(), "U1", ())


def test_named_users_and_group_members_are_allowed_and_no_one_else() -> None:
    policy = AccessPolicy(users=frozenset({"U1"}), groups=frozenset({"S9"}))
    assert may_roll_back(policy, "U1", ())
    assert may_roll_back(policy, "U2", ("S1", "S9"))
    assert not may_roll_back(policy, "U2", ("S1",))


def history(revision: int = 3, generation: int = 5) -> History:
    rss = [
        replicaset(
            template(f"1.{n}"), revision=n, pod_hash=f"h{n}", created=f"2026-11-2{n}T00:00:00Z"
        )
        for n in (1, 2, 3)
    ]
    return parse_history(deployment(template("1.3"), revision=revision, generation=generation), rss)


SNAP = Snapshot(revision=3, generation=5, target_replicaset="checkout-h2", target_revision=2)


def test_unchanged_is_fresh() -> None:
    assert staleness(SNAP, history()) is None


def test_a_new_revision_is_stale_and_says_what_happened() -> None:
    reason = staleness(dataclasses.replace(SNAP, revision=2), history())
    assert reason is not None
    assert "moved from revision 2 to revision 3 (1.3)" in reason


def test_a_spec_change_is_stale() -> None:
    assert staleness(SNAP, history(generation=6)) == (
        "the deployment's spec changed since this message was taken"
    )


def test_a_vanished_or_renumbered_target_is_stale() -> None:
    gone = dataclasses.replace(SNAP, target_replicaset="checkout-zz")
    assert staleness(gone, history()) == "revision 2 is no longer kept in the history"
    renumbered = dataclasses.replace(SNAP, target_revision=7)
    assert staleness(renumbered, history()) == "revision 7 is now revision 2"


def test_a_policy_that_is_not_for_anyone_allows_only_those_named() -> None:
    nobody = AccessPolicy(anyone=False)
    assert not nobody.open
    assert not may_roll_back(nobody, "U1", ("S1",))
    named = AccessPolicy(users=frozenset({"U1"}), groups=frozenset({"S9"}), anyone=False)
    assert may_roll_back(named, "U1", ())
    assert may_roll_back(named, "U2", ("S9",))


def test_a_user_of_another_workspace_needs_to_be_named() -> None:
    assert not may_roll_back(AccessPolicy(), "U1", (), external=True)
    group_only = AccessPolicy(groups=frozenset({"S9"}))
    assert not may_roll_back(group_only, "U1", ("S9",), external=True)
    assert may_roll_back(AccessPolicy(users=frozenset({"U1"})), "U1", (), external=True)
