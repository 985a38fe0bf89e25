"""The domain's nouns: Deployments, their revisions and rollout state, as frozen values.

Built from the API's JSON by `bot.adapters.kube.parsing`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.times import parse_time

JsonDict = dict[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
DEPRECATED_ROLLBACK_TO_ANNOTATION = "deprecated.deployment.rollback.to"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
VERSION_LABEL = "app.kubernetes.io/version"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
BOT_ANNOTATION_PREFIX = "rollback-bot.io/"

# kubectl keeps these from the Deployment and never copies them from the ReplicaSet
# (kubectl pkg/polymorphichelpers/rollback.go, annotationsToSkip).
ANNOTATIONS_TO_SKIP = frozenset(
    {
        LAST_APPLIED_ANNOTATION,
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        DEPRECATED_ROLLBACK_TO_ANNOTATION,
    }
)

PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class Target:
    """Where a Deployment lives: its cluster (by kubeconfig context) and namespace/name."""

    namespace: str
    name: str
    context: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Container:
    name: str
    image: str


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    last_update: datetime | None = None


@dataclass(frozen=True)
class Revision:
    """One ReplicaSet of a Deployment, as `kubectl rollout history` shows it."""

    number: int
    replicaset: str
    version: str
    containers: tuple[Container, ...]
    change_cause: str | None
    created_at: datetime | None
    replicas: int
    ready_replicas: int
    current: bool
    template: JsonDict = field(compare=False, repr=False)
    annotations: Mapping[str, str] = field(compare=False, repr=False)


@dataclass(frozen=True)
class RolloutStatus:
    """The status fields `kubectl rollout status` reads."""

    observed_generation: int
    replicas: int
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    unavailable_replicas: int
    conditions: tuple[Condition, ...]

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)


@dataclass(frozen=True)
class Deployment:
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    paused: bool
    desired_replicas: int | None
    revision: int | None
    version: str
    containers: tuple[Container, ...]
    created_at: datetime | None
    status: RolloutStatus
    selector: JsonDict = field(compare=False, repr=False)
    template: JsonDict = field(compare=False, repr=False)
    annotations: Mapping[str, str] = field(compare=False, repr=False)

    @property
    def change_cause(self) -> str | None:
        return self.annotations.get(CHANGE_CAUSE_ANNOTATION)


@dataclass(frozen=True)
class History:
    """A Deployment and all its revisions, newest first."""

    deployment: Deployment
    revisions: tuple[Revision, ...]

    @property
    def current(self) -> Revision | None:
        return next((r for r in self.revisions if r.current), None)

    def revision(self, number: int) -> Revision | None:
        return next((r for r in self.revisions if r.number == number), None)

    @property
    def went_out(self) -> datetime | None:
        """When what runs now went out: its ReplicaSet's creation, or the bot's rollback to it
        when later (a rollback reuses an old ReplicaSet, whose creation is days old)."""
        current = self.current
        created = current.created_at if current is not None else self.deployment.created_at
        rolled_back = parse_time(
            self.deployment.annotations.get(f"{BOT_ANNOTATION_PREFIX}rolled-back-at")
        )
        candidates = [t for t in (created, rolled_back) if t is not None]
        return max(candidates) if candidates else None


@dataclass(frozen=True)
class RunInfo:
    """A rollback in flight: who started it, towards what, since when (for "already running")."""

    service: str
    actor: str
    from_version: str
    to_version: str
    to_revision: int
    started_at: datetime
