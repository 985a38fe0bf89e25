"""The migration guard and the artifact notes, decided from a History."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.domain.rollback.migrations import (
    ADDITIVE_NOTE,
    MIGRATION_ANNOTATION,
    MigrationRefused,
    history_limit_note,
    is_mutable_image,
    migration_block,
    migration_note,
    mutable_images_note,
)
from bot.domain.rollback.models import History
from bot.domain.rollback.planning import plan_rollback
from tests.builders import deployment, replicaset, template

VERSIONS = {1: "2.12.0", 2: "2.13.0", 3: "3.0.0", 4: "3.1.0"}


def annotated(version: str, migration: str | None, image: str | None = None) -> dict[str, Any]:
    tpl = template(version, image=image)
    if migration is not None:
        tpl["metadata"]["annotations"] = {MIGRATION_ANNOTATION: migration}
    return tpl


def history(
    migrations: dict[int, str],
    *,
    current: int = 4,
    history_limit: int | None = None,
    images: dict[int, str] | None = None,
) -> History:
    templates = {
        n: annotated(v, migrations.get(n), (images or {}).get(n)) for n, v in VERSIONS.items()
    }
    rss = [
        replicaset(tpl, revision=n, pod_hash=f"h{n}", created=f"2026-11-2{n}T10:00:00Z")
        for n, tpl in templates.items()
    ]
    dep = deployment(templates[current], revision=current)
    if history_limit is not None:
        dep["spec"]["revisionHistoryLimit"] = history_limit
    return parse_history(dep, rss)


def revision(h: History, number: int) -> Any:
    found = h.revision(number)
    assert found is not None
    return found


def test_revisions_older_than_the_newest_irreversible_migration_are_blocked() -> None:
    h = history({1: "irreversible", 3: "irreversible"})
    block = migration_block(h, revision(h, 2))
    assert block is not None
    assert block.reason == "2.13.0 cannot run against the schema migrated by 3.0.0 (revision 3)"
    assert migration_block(h, revision(h, 1)) is not None
    assert migration_block(h, revision(h, 3)) is None  # the migrating revision itself runs


def test_no_irreversible_migration_or_an_additive_one_blocks_nothing() -> None:
    for migrations in ({}, {3: "additive"}, {3: "Additive "}):
        h = history(migrations)
        assert all(migration_block(h, r) is None for r in h.revisions)


def test_the_deployments_own_template_counts_before_its_replicaset_exists() -> None:
    h = history({})
    migrated = parse_history(
        deployment(annotated("3.1.0", "irreversible"), revision=4),
        [
            replicaset(annotated(v, None), revision=n, pod_hash=f"h{n}", created=f"2026-11-2{n}Z")
            for n, v in VERSIONS.items()
            if n < 4
        ],
    )
    assert migration_block(h, revision(h, 3)) is None
    block = migration_block(migrated, revision(migrated, 3))
    assert block is not None and block.migrated_by_revision == 4


def test_the_value_is_read_trimmed_case_blind_and_bounded() -> None:
    h = history({3: "  IRREVERSIBLE\n"})
    assert migration_block(h, revision(h, 2)) is not None
    odd = history({3: "irreversable" + "x" * 500})
    assert migration_block(odd, revision(odd, 2)) is None
    note = migration_note(revision(odd, 3))
    assert note is not None and "unknown rollback-bot.io/migration value" in note
    assert len(note) < 200


def test_notes_for_a_revisions_own_migration() -> None:
    h = history({2: "additive", 3: "irreversible"})
    assert migration_note(revision(h, 2)) == ADDITIVE_NOTE
    assert "irreversible schema migration" in (migration_note(revision(h, 3)) or "")
    assert migration_note(revision(h, 1)) is None


def test_planning_refuses_unless_overridden_and_says_what_it_overrode() -> None:
    h = history({3: "irreversible"})
    with pytest.raises(MigrationRefused, match=r"^2\.13\.0 cannot run .* \(revision 3\)$"):
        plan_rollback(h, 2)
    plan = plan_rollback(h, 2, override=True)
    assert plan.action == "patch"
    assert plan.overridden == "2.13.0 cannot run against the schema migrated by 3.0.0 (revision 3)"
    # An override where nothing blocks overrides nothing.
    assert plan_rollback(h, 3, override=True).overridden is None
    # The default target (the previous revision) is checked too.
    assert plan_rollback(h, None).target.number == 3


def test_a_rollback_to_what_runs_now_is_a_skip_not_a_refusal() -> None:
    h = history({4: "irreversible"}, current=2)
    assert plan_rollback(h, 2).action == "skip"


@pytest.mark.parametrize(
    ("image", "mutable"),
    [
        ("registry.example.com/shop/checkout:2.13.0", False),
        ("registry.example.com/shop/checkout:latest", True),
        ("registry.example.com/shop/checkout", True),
        ("registry:5000/checkout", True),  # a registry port is not a tag
        ("registry:5000/checkout:1.2", False),
        ("checkout:latest@sha256:" + "a" * 64, False),  # pinned by digest
        ("checkout@sha256:" + "b" * 64, False),
    ],
)
def test_mutable_images(image: str, mutable: bool) -> None:
    assert is_mutable_image(image) is mutable


def test_a_revision_with_a_mutable_tag_gets_a_note() -> None:
    h = history({}, images={2: "registry.example.com/shop/checkout:latest"})
    note = mutable_images_note(revision(h, 2))
    assert note is not None
    assert note.startswith(
        "mutable image tag: checkout (registry.example.com/shop/checkout:latest)"
    )
    assert mutable_images_note(revision(h, 1)) is None


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, None),
        (10, None),
        (3, None),
        (2, "keeps only 2 old ReplicaSets (spec.revisionHistoryLimit: 2)"),
        (1, "keeps only 1 old ReplicaSet (spec.revisionHistoryLimit: 1)"),
        (0, "keeps no old ReplicaSets (spec.revisionHistoryLimit: 0)"),
    ],
)
def test_a_short_revision_history_gets_a_note(limit: int | None, expected: str | None) -> None:
    note = history_limit_note(history({}, history_limit=limit).deployment)
    if expected is None:
        assert note is None
    else:
        assert note is not None and note.startswith(expected)
