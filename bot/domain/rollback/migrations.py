"""The database-migration guard, and what the versions message says about each revision's
artifacts. Pure decisions over a History.

Convention: a revision whose pod template carries `rollback-bot.io/migration: irreversible` ran
a schema change that older code cannot run against, so rolling back to any revision older than
the newest such revision is refused unless someone of the catalog's break-glass group overrides
it. `additive` is only a note: older code runs against an additive schema change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.models import (
    BOT_ANNOTATION_PREFIX,
    Deployment,
    History,
    Revision,
    WorkloadKind,
)

MIGRATION_ANNOTATION = f"{BOT_ANNOTATION_PREFIX}migration"
IRREVERSIBLE = "irreversible"
ADDITIVE = "additive"
ADDITIVE_NOTE = "schema change is additive; older code runs against it"
VALUE_LIMIT = 40  # an annotation value is shown only this long (it came from the cluster)
# Kubernetes keeps 10 old ReplicaSets unless told otherwise; fewer than this is worth a note.
DEFAULT_REVISION_HISTORY_LIMIT = 10
FEW_KEPT = 3
MUTABLE_TAGS = frozenset({"latest"})


@dataclass(frozen=True)
class MigrationBlock:
    """Why a revision may not be rolled back to: the newest irreversible migration after it."""

    target_version: str
    target_revision: int
    migrated_by_version: str
    migrated_by_revision: int

    @property
    def reason(self) -> str:
        return (
            f"{self.target_version} cannot run against the schema migrated by "
            f"{self.migrated_by_version} (revision {self.migrated_by_revision})"
        )


class MigrationRefused(RollbackRefused):
    """A rollback the migration guard refuses; only the break-glass override passes it."""

    def __init__(self, block: MigrationBlock) -> None:
        super().__init__(block.reason)
        self.block = block


def migration_of(template: Mapping[str, Any]) -> str | None:
    """The migration annotation of a pod template, trimmed and lower-cased (bounded), or None."""
    metadata = template.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping):
        return None
    value = annotations.get(MIGRATION_ANNOTATION)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower()[:VALUE_LIMIT]


def _irreversible(history: History) -> list[tuple[int, str]]:
    """(revision, version) of every revision known to have migrated irreversibly: the kept
    ReplicaSets, and the Deployment's own template (its ReplicaSet may not exist yet)."""
    found = [
        (r.number, r.version) for r in history.revisions if migration_of(r.template) == IRREVERSIBLE
    ]
    deployment = history.deployment
    if deployment.revision is not None and migration_of(deployment.template) == IRREVERSIBLE:
        found.append((deployment.revision, deployment.version))
    return found


def migration_block(history: History, target: Revision) -> MigrationBlock | None:
    """Why rolling back to `target` is refused, or None: it is refused when it is older than the
    newest revision that ran an irreversible migration."""
    migrations = _irreversible(history)
    if not migrations:
        return None
    number, version = max(migrations)
    if target.number >= number:
        return None
    return MigrationBlock(target.version, target.number, version, number)


def migration_note(revision: Revision) -> str | None:
    """What a revision's own migration annotation says, for the versions message: the additive
    note, an irreversible one's warning, or an unknown value named as such."""
    value = migration_of(revision.template)
    if value is None:
        return None
    if value == ADDITIVE:
        return ADDITIVE_NOTE
    if value == IRREVERSIBLE:
        return "ran an irreversible schema migration: older versions cannot be rolled back to"
    return (
        f"unknown {MIGRATION_ANNOTATION} value {value!r} (expected {IRREVERSIBLE} or "
        f"{ADDITIVE}): not treated as a migration"
    )


# -- keep previous artifacts ---------------------------------------------------------------


def history_limit_note(deployment: Deployment) -> str | None:
    """A note when the Deployment keeps fewer than FEW_KEPT old ReplicaSets: the versions to
    roll back to disappear quickly."""
    limit = deployment.revision_history_limit
    if limit is None or limit >= FEW_KEPT:
        return None
    what = "ReplicaSet" if deployment.kind is WorkloadKind.DEPLOYMENT else "ControllerRevision"
    kept = (
        f"no old {what}s"
        if limit == 0
        else f"only {limit} old {what}" + ("s" if limit != 1 else "")
    )
    return (
        f"keeps {kept} (spec.revisionHistoryLimit: {limit}): older versions cannot be rolled "
        f"back to; keep at least {FEW_KEPT} (the default is {DEFAULT_REVISION_HISTORY_LIMIT})"
    )


def is_mutable_image(image: str) -> bool:
    """An image pinned by neither digest nor a fixed tag: `latest`, or no tag at all."""
    name, at, digest = image.partition("@")
    if at and digest:
        return False
    last_segment = name.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return True
    return last_segment.rsplit(":", 1)[1] in MUTABLE_TAGS


def mutable_images_note(revision: Revision) -> str | None:
    """A note when a revision's images use a mutable tag: rolling back to it pulls whatever the
    tag points at now, which may not be the code that ran then."""
    mutable = [c for c in revision.containers if is_mutable_image(c.image)]
    if not mutable:
        return None
    names = ", ".join(f"{c.name} ({c.image})" for c in mutable[:3])
    more = f" and {len(mutable) - 3} more" if len(mutable) > 3 else ""
    return (
        f"mutable image tag: {names}{more}; a rollback pulls what the tag points at now, which "
        "may not be the same code"
    )
