"""Automatic rollback's watch in the domain's words: which rollout is a new version to watch,
whether it is still in its window, and the claim a watch Lease keeps (written by the bot, read
back bounded, hostile text refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.domain.analysis.watching import (
    Phase,
    WatchClaim,
    WatchStatus,
    claim_annotations,
    is_claim_annotation,
    new_version,
    parse_claim,
    still_in_window,
)
from bot.domain.rollback.models import BOT_ANNOTATION_PREFIX, History, Thread
from tests.builders import deployment, replicaset, template

NOTE = f"{BOT_ANNOTATION_PREFIX}watch-"
OLD_CREATED = "2026-11-20T10:00:00Z"
NEW_CREATED = "2026-11-27T04:00:00Z"
THREAD = Thread("C0CHECKOUT", "1764216000.000100")


def two_versions(*, current: int, new_created: str | None = NEW_CREATED) -> History:
    """1.0 (revision 1, an old ReplicaSet) then 1.1 (revision 2, a new one); `current` names
    the revision that runs. A rollback to 1.0 gives its ReplicaSet the next revision (3), as
    the Deployment controller does."""
    old_number = 3 if current == 3 else 1
    sets = [
        replicaset(template("1.0"), revision=old_number, pod_hash="old111", created=OLD_CREATED),
        replicaset(template("1.1"), revision=2, pod_hash="new222", created=new_created or ""),
    ]
    if new_created is None:
        del sets[1]["metadata"]["creationTimestamp"]
    running = "1.0" if current in (1, 3) else "1.1"
    return parse_history(deployment(template(running), revision=current), sets)


def notes(**values: object) -> dict[str, object]:
    """Watch annotations, keyed as the Lease holds them (`stop_by` for "stop-by")."""
    return {f"{NOTE}{key.replace('_', '-')}": value for key, value in values.items()}


# -- which rollouts are watched ----------------------------------------------------------------


def test_a_new_replicaset_is_a_new_version_to_watch() -> None:
    history = two_versions(current=2)
    watched = new_version(history)
    assert watched is not None
    assert (watched.number, watched.version, watched.replicaset) == (2, "1.1", "checkout-new222")


def test_a_rollback_to_an_older_replicaset_is_no_new_version() -> None:
    history = two_versions(current=3)
    current = history.current
    assert current is not None and (current.number, current.version) == (3, "1.0")
    assert new_version(history) is None


def test_a_rollback_by_the_bot_stays_no_new_version_however_recent_it_is() -> None:
    # The bot's rollback annotates the ReplicaSet it brings back: it went out just now, but
    # its ReplicaSet is still the older one.
    sets = [
        replicaset(
            template("1.0"),
            revision=3,
            pod_hash="old111",
            created=OLD_CREATED,
            annotations={f"{BOT_ANNOTATION_PREFIX}rolled-back-at": "2026-11-27T05:00:00Z"},
        ),
        replicaset(template("1.1"), revision=2, pod_hash="new222", created=NEW_CREATED),
    ]
    history = parse_history(deployment(template("1.0"), revision=3), sets)
    current = history.current
    assert current is not None
    assert history.went_out_of(current) == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert new_version(history) is None


def test_a_revision_without_a_creation_time_cannot_be_placed_and_is_not_watched() -> None:
    history = two_versions(current=2, new_created=None)
    current = history.current
    assert current is not None and current.number == 2 and current.created_at is None
    assert new_version(history) is None


def test_an_older_replicaset_without_a_creation_time_does_not_hide_a_new_version() -> None:
    sets = [
        replicaset(template("1.0"), revision=1, pod_hash="old111", created=OLD_CREATED),
        replicaset(template("1.1"), revision=2, pod_hash="new222", created=NEW_CREATED),
    ]
    del sets[0]["metadata"]["creationTimestamp"]
    watched = new_version(parse_history(deployment(template("1.1"), revision=2), sets))
    assert watched is not None and watched.number == 2


def test_a_deployment_whose_template_matches_no_replicaset_has_nothing_to_watch() -> None:
    sets = [replicaset(template("1.0"), revision=1, pod_hash="old111", created=OLD_CREATED)]
    history = parse_history(deployment(template("1.1"), revision=2), sets)
    assert history.current is None
    assert new_version(history) is None


def test_still_in_window_until_the_window_has_passed() -> None:
    went_out = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    assert still_in_window(went_out, went_out, 600)
    assert still_in_window(went_out, went_out + timedelta(seconds=599.9), 600)
    assert not still_in_window(went_out, went_out + timedelta(seconds=600), 600)
    assert not still_in_window(went_out, went_out + timedelta(days=1), 600)


def test_phases_end_and_breach() -> None:
    assert not Phase.WATCHING.ended
    assert all(phase.ended for phase in Phase if phase is not Phase.WATCHING)
    assert {phase for phase in Phase if phase.breach} == {
        Phase.ROLLED_BACK,
        Phase.WOULD_ROLL_BACK,
        Phase.NOT_ROLLED_BACK,
    }


def test_a_status_ended_keeps_the_rollout_and_says_how() -> None:
    status = WatchStatus(
        service="checkout",
        namespace="shop",
        deployment="checkout",
        context=None,
        revision=2,
        version="1.1",
        baseline_revision=1,
        baseline_version="1.0",
        window_seconds=600,
        mode="act",
    )
    ended = status.ended(Phase.HEALTHY, "looks healthy after 10m")
    assert (ended.phase, ended.detail) == (Phase.HEALTHY, "looks healthy after 10m")
    assert (ended.revision, ended.version, ended.mode) == (2, "1.1", "act")
    assert status.phase is Phase.WATCHING and status.detail is None


# -- the claim a Lease keeps -------------------------------------------------------------------


@pytest.mark.parametrize(
    "claim",
    [
        WatchClaim(4),
        WatchClaim(4, THREAD),
        WatchClaim(4, THREAD, Phase.HEALTHY),
        WatchClaim(4, THREAD, None, "U0ALICE"),
        WatchClaim(999_999_999_999_999_999, THREAD, Phase.STOPPED, "W0BOB"),
    ],
    ids=["bare", "thread", "ended", "stop asked", "everything"],
)
def test_a_claim_round_trips_through_the_annotations(claim: WatchClaim) -> None:
    annotations = claim_annotations(claim)
    assert all(is_claim_annotation(key) for key in annotations)
    assert all(isinstance(value, str) for value in annotations.values())
    assert parse_claim(annotations) == claim


def test_the_annotations_are_the_bots_and_other_annotations_are_ignored() -> None:
    annotations = claim_annotations(WatchClaim(4, THREAD, Phase.ROLLED_BACK, "U0ALICE"))
    assert annotations == {
        f"{NOTE}revision": "4",
        f"{NOTE}channel": "C0CHECKOUT",
        f"{NOTE}ts": "1764216000.000100",
        f"{NOTE}ended": "rolled_back",
        f"{NOTE}stop-by": "U0ALICE",
    }
    assert not is_claim_annotation(f"{BOT_ANNOTATION_PREFIX}actor")
    assert not is_claim_annotation("watch-revision")
    mixed = {**annotations, "example.com/owner": "team", f"{BOT_ANNOTATION_PREFIX}actor": "x"}
    assert parse_claim(mixed) == WatchClaim(4, THREAD, Phase.ROLLED_BACK, "U0ALICE")


def test_no_revision_is_no_claim() -> None:
    assert parse_claim({}) is None
    assert parse_claim(notes(channel="C0CHECKOUT", ts="1764216000.000100")) is None


@pytest.mark.parametrize(
    "revision",
    ["0", "-1", "10" + "0" * 29, "1e3", "0x10", " 4", "4 ", "+4", "04", "4.0", "", "٤", "１"],
)
def test_a_revision_that_is_not_one_the_bot_writes_is_no_claim(revision: str) -> None:
    assert parse_claim(notes(revision=revision)) is None


def test_a_revision_just_under_the_bound_is_kept_and_one_over_it_refused() -> None:
    assert parse_claim(notes(revision="9" * 18)) == WatchClaim(int("9" * 18))
    assert parse_claim(notes(revision="1" + "0" * 18)) is None


@pytest.mark.parametrize(
    ("channel", "ts"),
    [
        ("<!channel>", "1764216000.000100"),
        ("#checkout", "1764216000.000100"),
        ("c0checkout", "1764216000.000100"),
        ("C", "1764216000.000100"),
        ("C" + "0" * 24, "1764216000.000100"),
        ("C" + "0" * 70, "1764216000.000100"),
        ("C0CHECKOUT", "now"),
        ("C0CHECKOUT", "1764216000"),
        ("C0CHECKOUT", "1764216000.000100.1"),
        ("C0CHECKOUT", "-1.5"),
        ("C0CHECKOUT", "1764216000.0001000000"),
        ("C0CHECKOUT", "1" * 70 + ".1"),
        ("C0CHECKOUT", ""),
        ("", "1764216000.000100"),
    ],
)
def test_a_thread_that_is_no_slack_channel_and_timestamp_is_dropped(channel: str, ts: str) -> None:
    claim = parse_claim(notes(revision="4", channel=channel, ts=ts, stop_by="U0ALICE"))
    assert claim == WatchClaim(4, None, None, "U0ALICE")


def test_half_a_thread_is_no_thread() -> None:
    assert parse_claim(notes(revision="4", channel="C0CHECKOUT")) == WatchClaim(4)
    assert parse_claim(notes(revision="4", ts="1764216000.000100")) == WatchClaim(4)


@pytest.mark.parametrize(
    "ended", ["watching", "WATCHING", "Healthy", "healthy ", "done", "rolled-back", "", "x" * 80]
)
def test_an_end_that_is_no_ended_phase_is_dropped(ended: str) -> None:
    claim = parse_claim(
        notes(revision="4", channel="C0CHECKOUT", ts="1764216000.000100", ended=ended)
    )
    assert claim == WatchClaim(4, THREAD, None)


@pytest.mark.parametrize("phase", [phase for phase in Phase if phase.ended])
def test_every_ended_phase_is_read_back(phase: Phase) -> None:
    claim = parse_claim(notes(revision="4", ended=phase.value))
    assert claim is not None and claim.ended is phase


@pytest.mark.parametrize(
    "stop_by",
    ["<@U0ALICE>", "u0alice", "U0ALICE\n", "U", "U" + "0" * 24, "U" + "0" * 80, "<!here>", ""],
)
def test_a_stopper_that_is_no_slack_user_id_is_dropped(stop_by: str) -> None:
    assert parse_claim(notes(revision="4", stop_by=stop_by)) == WatchClaim(4)


@pytest.mark.parametrize(
    "hostile",
    [
        {"revision": 4},
        {"revision": ["4"]},
        {"revision": None},
        {"revision": b"4"},
        {"revision": True},
    ],
)
def test_a_revision_that_is_no_string_is_no_claim(hostile: dict[str, object]) -> None:
    assert parse_claim(notes(**hostile)) is None


def test_parts_that_are_no_strings_are_dropped() -> None:
    claim = parse_claim(
        notes(
            revision="4",
            channel=["C0CHECKOUT"],
            ts=1764216000.0001,
            ended={"phase": "healthy"},
            stop_by=7,
        )
    )
    assert claim == WatchClaim(4)
