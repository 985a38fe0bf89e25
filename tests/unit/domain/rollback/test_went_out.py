"""One meaning of "went out": when a revision last became current, the same for the message,
the history, the CLI and the record."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.kube.parsing import parse_history
from bot.domain.rollback.models import History
from tests.builders import deployment, replicaset, template

CREATED_A = "2026-11-20T10:00:00Z"
CREATED_B = "2026-11-27T03:40:00Z"
ROLLED_BACK = "2026-12-02T02:14:00Z"
BOT = {"rollback-bot.io/rolled-back-at": ROLLED_BACK, "rollback-bot.io/from-version": "1.1"}


def rolled_back_to_a(*, synced: bool = True) -> History:
    """1.0 (revision 1, created days ago) rolled back to by the bot at 02:14: revision 3."""
    return parse_history(
        deployment(template("1.0"), revision=3, annotations=BOT),
        [
            replicaset(
                template("1.0"),
                revision=3,
                pod_hash="a",
                created=CREATED_A,
                annotations=BOT if synced else None,
            ),
            replicaset(template("1.1"), revision=2, pod_hash="b", created=CREATED_B),
        ],
    )


def test_a_reused_replicaset_went_out_when_the_rollback_made_it_current() -> None:
    history = rolled_back_to_a()
    current = history.current
    assert current is not None and current.created_at == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert history.went_out_of(current) == datetime(2026, 12, 2, 2, 14, tzinfo=UTC)
    assert history.went_out == history.went_out_of(current)


def test_before_the_controller_copies_the_annotations_the_deployment_says_it() -> None:
    history = rolled_back_to_a(synced=False)
    assert history.current is not None
    assert history.went_out_of(history.current) == datetime(2026, 12, 2, 2, 14, tzinfo=UTC)


def test_a_revision_never_rolled_back_to_went_out_when_it_was_created() -> None:
    history = rolled_back_to_a()
    old = history.revision(2)
    assert old is not None
    assert history.went_out_of(old) == datetime(2026, 11, 27, 3, 40, tzinfo=UTC)
