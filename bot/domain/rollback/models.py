"""The domain's nouns: Deployments, their revisions and rollout state, as frozen values.

Built from the API's JSON by `bot.adapters.kube.parsing`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
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


class WorkloadKind(StrEnum):
    """The workloads the bot rolls back, by their API kind."""

    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    DAEMONSET = "DaemonSet"
    ROLLOUT = "Rollout"  # Argo Rollouts' argoproj.io/v1alpha1 Rollout

    @property
    def noun(self) -> str:
        """As kubectl names the kind in its messages: "deployment", "statefulset", "daemon set"."""
        return {
            "Deployment": "deployment",
            "StatefulSet": "statefulset",
            "Rollout": "rollout",
        }.get(self.value, "daemon set")

    @property
    def group(self) -> str:
        return "argoproj.io" if self is WorkloadKind.ROLLOUT else "apps"

    @property
    def api_path(self) -> str:
        """Where the API serves the kind: "/apis/apps/v1", "/apis/argoproj.io/v1alpha1"."""
        version = "v1alpha1" if self is WorkloadKind.ROLLOUT else "v1"
        return f"/apis/{self.group}/{version}"

    @property
    def resource(self) -> str:
        """The API resource, as kubectl names an object in a warning ("statefulsets.apps")."""
        return f"{self.value.lower()}s.{self.group}"

    @property
    def kubectl(self) -> str:
        """The kind as kubectl's TYPE/NAME argument and the API's plural name it: "statefulset"."""
        return self.value.lower()

    @property
    def plural(self) -> str:
        """The API's resource path segment: "deployments", "statefulsets", "daemonsets"."""
        return f"{self.kubectl}s"


@dataclass(frozen=True)
class Target:
    """Where a workload lives: its cluster (by kubeconfig context), namespace/name and kind."""

    namespace: str
    name: str
    context: str | None = None
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def described(self) -> str:
        """The kind and the place, for sentences: "statefulset shop/orders-db"."""
        return f"{self.kind.noun} {self}"

    @property
    def kubectl(self) -> str:
        """kubectl's TYPE/NAME: "deployment/checkout"."""
        return f"{self.kind.kubectl}/{self.name}"

    @property
    def status_command(self) -> str:
        """The command that follows its rollout in a terminal."""
        if self.kind is WorkloadKind.ROLLOUT:
            return f"kubectl argo rollouts status {self.name} -n {self.namespace}"
        return f"kubectl -n {self.namespace} rollout status {self.kubectl}"

    @property
    def lock_key(self) -> str:
        """What the rollback lock is named after: a Deployment's name (as before other kinds
        came), the kind and name for the others, so a StatefulSet and a Deployment of one name
        never share a lock."""
        return lock_key(self.kind, self.name)


def lock_key(kind: WorkloadKind, name: str) -> str:
    """A Deployment's name; "statefulset:NAME" for the others (no Kubernetes name holds a
    colon, so no two workloads share a key, and `locks.lease_name` gives each kind a prefix
    of its own)."""
    return name if kind is WorkloadKind.DEPLOYMENT else f"{kind.kubectl}:{name}"


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
    """A workload as the bot reads it: a Deployment, or a StatefulSet or DaemonSet (`kind`)
    whose status is put in a Deployment's terms (`bot.adapters.kube.parsing`) and whose JSON
    (`raw`) the kubectl-exact undo and progress of those kinds read. `revision` is the current
    ReplicaSet's or ControllerRevision's number. An Argo Rollout is one too (its ReplicaSets are
    its revisions)."""

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
    # spec.revisionHistoryLimit: how many old ReplicaSets it keeps (None: not set, 10).
    revision_history_limit: int | None = None
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    raw: JsonDict = field(default_factory=dict, compare=False, repr=False)
    # updateStrategy.type (Deployments: strategy.type) and a StatefulSet's partition.
    update_strategy: str = ""
    partition: int | None = None
    pod_management: str = ""

    @property
    def target(self) -> Target:
        return Target(self.namespace, self.name, kind=self.kind)

    @property
    def change_cause(self) -> str | None:
        return self.annotations.get(CHANGE_CAUSE_ANNOTATION)


@dataclass(frozen=True)
class DeploymentChange:
    """What a watch of a namespace saw of one Deployment: it now (None: deleted)."""

    name: str
    deployment: Deployment | None


@dataclass(frozen=True)
class History:
    """A workload and all its revisions, newest first. A StatefulSet's or DaemonSet's keeps its
    ControllerRevisions' JSON, a Rollout its ReplicaSets' (`owned_json`), which their undo is
    planned from."""

    deployment: Deployment
    revisions: tuple[Revision, ...]
    owned_json: tuple[JsonDict, ...] = field(default=(), compare=False, repr=False)

    @property
    def current(self) -> Revision | None:
        return next((r for r in self.revisions if r.current), None)

    def revision(self, number: int) -> Revision | None:
        return next((r for r in self.revisions if r.number == number), None)

    @property
    def went_out(self) -> datetime | None:
        """When what runs now went out (`went_out_of` its current revision)."""
        current = self.current
        if current is None:
            return _latest(self.deployment.created_at, _rolled_back_at(self.deployment.annotations))
        return self.went_out_of(current)

    def went_out_of(self, revision: Revision) -> datetime | None:
        """When `revision` last became current: its ReplicaSet's creation, or the bot's latest
        rollback to it when later (a rollback reuses an old ReplicaSet, whose creation is days
        old; the bot's annotations travel with the ReplicaSet that became current). The one
        meaning of "went out" wherever a revision's time is shown."""
        times = [revision.created_at, _rolled_back_at(revision.annotations)]
        if revision.current:  # the controller may not have copied the annotations yet
            times.append(_rolled_back_at(self.deployment.annotations))
        return _latest(*times)


def _rolled_back_at(annotations: Mapping[str, str]) -> datetime | None:
    return parse_time(annotations.get(f"{BOT_ANNOTATION_PREFIX}rolled-back-at"))


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


@dataclass(frozen=True)
class Thread:
    """Where a rollback asked from Slack is told: the channel, the thread, and the versions
    message it was asked from (kept in step with the rollback) when there is one."""

    channel: str
    thread_ts: str
    message_ts: str | None = None


@dataclass(frozen=True)
class RunInfo:
    """A rollback in flight: who started it, towards what, since when (for "already running").

    The rest is what another replica needs to finish its story if this one stops (kept in the
    rollback's Lease): where it is told, its id in the audit trail, and what it changes."""

    service: str
    actor: str
    from_version: str
    to_version: str
    to_revision: int
    started_at: datetime
    via: str = ""
    reason: str | None = None
    rollback_id: str | None = None
    thread: Thread | None = None
    deployment: str | None = None
    from_revision: int | None = None
    target_replicaset: str | None = None
    # Who holds the Lease it was read from (None for a run this replica built itself).
    holder: str | None = None
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    # An Argo Rollout's abort: followed until the stable serves everything.
    abort: bool = False
