"""Rollout progress of a StatefulSet or a DaemonSet by `kubectl rollout status` rules.

Reference: kubectl pkg/polymorphichelpers/rollout_status.go (StatefulSetStatusViewer,
DaemonSetStatusViewer). The messages are kubectl's, without its trailing newline; the phases
and counts are `progress.Progress`'s, so the runner, the thread and the console read them as a
Deployment's.

What kubectl does, and so these do:

- An update strategy other than RollingUpdate is an error that ends the wait:
  "rollout status is only available for RollingUpdate strategy type". For OnDelete it is a
  finished `Phase.PODS_TO_DELETE` observation whose message goes on to say plainly what it means
  (the pods keep their version until deleted); any other strategy is `Phase.FAILED`.
- A StatefulSet is waited for in this order: the spec observed (an `observedGeneration` of 0
  counts as not yet), every desired pod ready, then, with `rollingUpdate` present (the API server
  sets `{partition: 0}` whenever the strategy type was left to its default), the pods at or above
  the partition updated ("partitioned roll out complete: N new pods have been updated...", the
  message a plain StatefulSet finishes with too); without it, `updateRevision` reached by
  `currentRevision`.
- A DaemonSet: the spec observed, every scheduled node's pod updated, then available.
- Neither has a progress deadline: kubectl waits for ever (the bot's own timeout ends the wait).

Pure: the workload's JSON in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain.rollback import argo_rollouts
from bot.domain.rollback.models import Deployment, WorkloadKind
from bot.domain.rollback.progress import Phase, Progress, rollout_progress

ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
ONLY_ROLLING_UPDATE = f"rollout status is only available for {ROLLING_UPDATE} strategy type"


@dataclass(frozen=True)
class WorkloadProgress(Progress):
    """A `Progress` that also says how the workload updates its pods: `strategy` (its
    updateStrategy type, "" when absent) and a StatefulSet's `partition` (None when absent)."""

    strategy: str = ROLLING_UPDATE
    partition: int | None = None

    @property
    def pods_must_be_deleted(self) -> bool:
        """OnDelete: the controller replaces no pod; each takes the new template only once it is
        deleted, so the rollout ends here with the old pods still running."""
        return self.strategy == ON_DELETE


def statefulset_progress(
    obj: Mapping[str, Any], *, revision: int | None = None
) -> WorkloadProgress:
    """Where a StatefulSet's rollout stands, by kubectl's StatefulSetStatusViewer. `revision`
    (the ControllerRevision number the caller knows the template to be) is carried along."""
    metadata, spec, status = _parts(obj)
    name = _name(metadata)
    strategy_type, rolling = _strategy(spec)
    replicas = _optional_count(spec.get("replicas"))
    partition = _optional_count(rolling.get("partition")) if rolling is not None else None
    updated = _count(status.get("updatedReplicas"))

    def progress(phase: Phase, message: str) -> WorkloadProgress:
        return WorkloadProgress(
            phase=phase,
            message=message,
            desired=replicas if replicas is not None else 1,
            updated=updated,
            ready=_count(status.get("readyReplicas")),
            available=_count(status.get("availableReplicas")),
            total=_count(status.get("replicas")),
            revision=revision,
            strategy=strategy_type,
            partition=partition,
        )

    if strategy_type != ROLLING_UPDATE:
        return progress(
            _phase_of(strategy_type), _not_rolling(f'statefulset "{name}"', strategy_type)
        )
    observed = _count(status.get("observedGeneration"))
    if observed == 0 or _count(metadata.get("generation")) > observed:
        return progress(
            Phase.WAITING_FOR_OBSERVATION, "Waiting for statefulset spec update to be observed..."
        )
    ready = _count(status.get("readyReplicas"))
    if replicas is not None and ready < replicas:
        return progress(
            Phase.BECOMING_AVAILABLE, f"Waiting for {replicas - ready} pods to be ready..."
        )
    if rolling is not None:
        if replicas is not None and partition is not None and updated < replicas - partition:
            return progress(
                Phase.UPDATING,
                f"Waiting for partitioned roll out to finish: {updated} out of "
                f"{replicas - partition} new pods have been updated...",
            )
        return progress(
            Phase.COMPLETE,
            f"partitioned roll out complete: {updated} new pods have been updated...",
        )
    update_revision = _text(status.get("updateRevision"))
    current_revision = _text(status.get("currentRevision"))
    if update_revision != current_revision:
        return progress(
            Phase.UPDATING,
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{update_revision}...",
        )
    return progress(
        Phase.COMPLETE,
        f"statefulset rolling update complete {_count(status.get('currentReplicas'))} pods at "
        f"revision {current_revision}...",
    )


def daemonset_progress(obj: Mapping[str, Any], *, revision: int | None = None) -> WorkloadProgress:
    """Where a DaemonSet's rollout stands, by kubectl's DaemonSetStatusViewer: desired is the
    number of nodes that should run its pod, total those that run one."""
    metadata, spec, status = _parts(obj)
    name = f'daemon set "{_name(metadata)}"'
    strategy_type, _ = _strategy(spec)
    desired = _count(status.get("desiredNumberScheduled"))
    updated = _count(status.get("updatedNumberScheduled"))
    available = _count(status.get("numberAvailable"))

    def progress(phase: Phase, message: str) -> WorkloadProgress:
        return WorkloadProgress(
            phase=phase,
            message=message,
            desired=desired,
            updated=updated,
            ready=_count(status.get("numberReady")),
            available=available,
            total=_count(status.get("currentNumberScheduled")),
            revision=revision,
            strategy=strategy_type,
        )

    if strategy_type != ROLLING_UPDATE:
        return progress(_phase_of(strategy_type), _not_rolling(name, strategy_type))
    if _count(metadata.get("generation")) > _count(status.get("observedGeneration")):
        return progress(
            Phase.WAITING_FOR_OBSERVATION, "Waiting for daemon set spec update to be observed..."
        )
    if updated < desired:
        return progress(
            Phase.UPDATING,
            f"Waiting for {name} rollout to finish: {updated} out of {desired} new pods have been "
            "updated...",
        )
    if available < desired:
        return progress(
            Phase.BECOMING_AVAILABLE,
            f"Waiting for {name} rollout to finish: {available} of {desired} updated pods are "
            "available...",
        )
    return progress(Phase.COMPLETE, f"{name} successfully rolled out")


def workload_progress(
    kind: WorkloadKind, obj: Mapping[str, Any], *, revision: int | None = None
) -> WorkloadProgress:
    """The viewer for `kind` (StatefulSet or DaemonSet; a Deployment's is
    `progress.rollout_progress`, over the parsed Deployment)."""
    if kind is WorkloadKind.STATEFULSET:
        return statefulset_progress(obj, revision=revision)
    if kind is WorkloadKind.DAEMONSET:
        return daemonset_progress(obj, revision=revision)
    raise ValueError("a Deployment's progress is progress.rollout_progress")


def progress_of(workload: Deployment) -> Progress:
    """Where any workload's rollout stands, by the viewer of its kind."""
    if workload.kind is WorkloadKind.DEPLOYMENT:
        return rollout_progress(workload)
    if workload.kind is WorkloadKind.ROLLOUT:
        return argo_rollouts.rollout_progress(workload.raw)
    return workload_progress(workload.kind, workload.raw, revision=workload.revision)


def abort_progress_of(workload: Deployment) -> Progress:
    """Where an Argo Rollout's abort stands (the canary gone, the stable serving all)."""
    return argo_rollouts.abort_progress(workload.raw)


def _phase_of(strategy_type: str) -> Phase:
    """kubectl's error ends the wait either way; OnDelete is the rollback done as far as the
    controller goes, any other strategy is not one the bot can follow."""
    return Phase.PODS_TO_DELETE if strategy_type == ON_DELETE else Phase.FAILED


def _not_rolling(name: str, strategy_type: str) -> str:
    """kubectl's error, then what it means for the rollback."""
    if strategy_type == ON_DELETE:
        return (
            f"{ONLY_ROLLING_UPDATE}: {name} uses the OnDelete update strategy, so its controller "
            "replaces no pod; each pod keeps the version it runs until it is deleted. Delete the "
            "pods to bring the rolled-back version up"
        )
    said = f'"{strategy_type[:40]}"' if strategy_type else "none"
    return f"{ONLY_ROLLING_UPDATE}: {name} has update strategy type {said}"


def _parts(
    obj: Mapping[str, Any],
) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    def part(key: str) -> Mapping[str, Any]:
        value = obj.get(key) if isinstance(obj, Mapping) else None
        return value if isinstance(value, Mapping) else {}

    return part("metadata"), part("spec"), part("status")


def _strategy(spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, Mapping):
        return "", None
    rolling = strategy.get("rollingUpdate")
    return _text(strategy.get("type")), rolling if isinstance(rolling, Mapping) else None


def _name(metadata: Mapping[str, Any]) -> str:
    return _text(metadata.get("name"))


def _text(value: Any) -> str:
    return value[:253] if isinstance(value, str) else ""


def _optional_count(value: Any) -> int | None:
    """An int32 of the spec (replicas, partition) as Go reads it; None when absent or not one."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        return None
    return value


def _count(value: Any) -> int:
    """A status count or generation; 0 when absent or not a whole number (bounded)."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        return 0
    return value
