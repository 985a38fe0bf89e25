"""The Kubernetes API's JSON turned into the domain's frozen values. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.domain.rollback import argo_rollouts
from bot.domain.rollback.controller_revisions import (
    as_revision,
    current_revision,
    owned_history,
)
from bot.domain.rollback.models import (
    CHANGE_CAUSE_ANNOTATION,
    REVISION_ANNOTATION,
    Condition,
    Deployment,
    History,
    JsonDict,
    Revision,
    RolloutStatus,
    WorkloadKind,
)
from bot.domain.rollback.planning import equal_ignore_hash
from bot.domain.rollback.versions import containers_of, version_of
from bot.domain.rollback.workload_undo import update_strategy
from bot.domain.times import parse_time


def parse_revision_number(annotations: dict[str, Any]) -> int | None:
    raw = annotations.get(REVISION_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int:
    """A count from the API's JSON; 0 for anything that is not a number (never an exception)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        return int(value)
    except (ValueError, OverflowError):
        return 0


def parse_deployment(obj: JsonDict) -> Deployment:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    template = spec.get("template") or {}
    replicas = spec.get("replicas")
    history_limit = spec.get("revisionHistoryLimit")
    return Deployment(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        resource_version=str(metadata.get("resourceVersion", "")),
        generation=_int(metadata.get("generation")),
        paused=bool(spec.get("paused", False)),
        desired_replicas=int(replicas) if replicas is not None else None,
        revision=parse_revision_number(annotations),
        version=version_of(template),
        containers=containers_of(template),
        created_at=parse_time(metadata.get("creationTimestamp")),
        status=RolloutStatus(
            observed_generation=_int(status.get("observedGeneration")),
            replicas=_int(status.get("replicas")),
            updated_replicas=_int(status.get("updatedReplicas")),
            ready_replicas=_int(status.get("readyReplicas")),
            available_replicas=_int(status.get("availableReplicas")),
            unavailable_replicas=_int(status.get("unavailableReplicas")),
            conditions=tuple(
                Condition(
                    type=str(c.get("type", "")),
                    status=str(c.get("status", "")),
                    reason=str(c.get("reason", "")),
                    message=str(c.get("message", "")),
                    last_update=parse_time(c.get("lastUpdateTime")),
                )
                for c in status.get("conditions") or []
            ),
        ),
        selector=spec.get("selector") or {},
        template=template,
        annotations=annotations,
        revision_history_limit=(
            history_limit
            if isinstance(history_limit, int) and not isinstance(history_limit, bool)
            else None
        ),
    )


def is_owned_by(replicaset: JsonDict, deployment_uid: str) -> bool:
    """kubectl's controller-reference check: the ReplicaSet's controller is this Deployment."""
    for ref in (replicaset.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid") == deployment_uid:
            return True
    return False


def parse_history(deployment_obj: JsonDict, replicasets: Iterable[JsonDict]) -> History:
    """The Deployment's revisions from its ReplicaSets, newest first, the current one marked.

    Only ReplicaSets the Deployment controls count (as kubectl's GetAllReplicaSets); the current
    one is the oldest whose template equals the Deployment's (FindNewReplicaSet).
    """
    deployment = parse_deployment(deployment_obj)
    owned = [rs for rs in replicasets if is_owned_by(rs, deployment.uid)]
    owned.sort(key=lambda rs: (rs.get("metadata") or {}).get("creationTimestamp") or "")
    current_name = next(
        (
            (rs.get("metadata") or {}).get("name")
            for rs in owned
            if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, deployment.template)
        ),
        None,
    )
    revisions: list[Revision] = []
    for rs in owned:
        metadata = rs.get("metadata") or {}
        annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
        number = parse_revision_number(annotations)
        if number is None:
            continue
        template = (rs.get("spec") or {}).get("template") or {}
        status = rs.get("status") or {}
        revisions.append(
            Revision(
                number=number,
                replicaset=str(metadata.get("name", "")),
                version=version_of(template),
                containers=containers_of(template),
                change_cause=annotations.get(CHANGE_CAUSE_ANNOTATION),
                created_at=parse_time(metadata.get("creationTimestamp")),
                replicas=_int(status.get("replicas")),
                ready_replicas=_int(status.get("readyReplicas")),
                current=metadata.get("name") == current_name,
                template=template,
                annotations=annotations,
            )
        )
    revisions.sort(key=lambda r: r.number, reverse=True)
    return History(deployment=deployment, revisions=tuple(revisions))


def label_selector(selector: JsonDict) -> str:
    """A Deployment's LabelSelector as the `labelSelector` query string the API takes. Pure."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def parse_workload(kind: WorkloadKind, obj: JsonDict, *, revision: int | None = None) -> Deployment:
    """A Deployment, StatefulSet or DaemonSet as the domain's `Deployment`: a StatefulSet's or
    DaemonSet's counts put in a Deployment's terms (for a DaemonSet, nodes: desired is
    `desiredNumberScheduled`), its JSON kept in `raw` for its undo and progress, `revision` the
    ControllerRevision number its template is (known from its history only)."""
    if kind is WorkloadKind.DEPLOYMENT:
        return parse_deployment(obj)
    metadata = _mapping(obj.get("metadata"))
    spec = _mapping(obj.get("spec"))
    status = _mapping(obj.get("status"))
    raw_annotations = _mapping(metadata.get("annotations"))
    annotations = {str(k)[:317]: str(v) for k, v in raw_annotations.items()}
    template = _mapping(spec.get("template"))
    if kind is WorkloadKind.ROLLOUT:
        strategies = _mapping(spec.get("strategy"))
        strategy = next((s for s in ("canary", "blueGreen") if s in strategies), "")
        partition = None
        if revision is None:  # the Rollout carries its current revision's number itself
            revision = argo_rollouts.parse_revision(
                raw_annotations.get(argo_rollouts.REVISION_ANNOTATION)
            )
    else:
        strategy, partition = update_strategy(kind, obj)
    if kind is WorkloadKind.DAEMONSET:
        desired: int | None = _int(status.get("desiredNumberScheduled"))
        counts = (
            status.get("currentNumberScheduled"),
            status.get("updatedNumberScheduled"),
            status.get("numberReady"),
            status.get("numberAvailable"),
            status.get("numberUnavailable"),
        )
    else:
        replicas = spec.get("replicas")
        desired = _int(replicas) if replicas is not None else 1
        counts = (
            status.get("replicas"),
            status.get("updatedReplicas"),
            status.get("readyReplicas"),
            status.get("availableReplicas"),
            None,
        )
    history_limit = spec.get("revisionHistoryLimit")
    management = spec.get("podManagementPolicy")
    return Deployment(
        namespace=str(metadata.get("namespace", ""))[:63],
        name=str(metadata.get("name", ""))[:253],
        uid=str(metadata.get("uid", ""))[:64],
        resource_version=str(metadata.get("resourceVersion", ""))[:64],
        generation=_int(metadata.get("generation")),
        paused=False,  # neither kind can be paused
        desired_replicas=desired,
        revision=revision,
        version=version_of(template),
        containers=containers_of(template),
        created_at=parse_time(metadata.get("creationTimestamp")),
        status=RolloutStatus(
            observed_generation=_int(status.get("observedGeneration")),
            replicas=_int(counts[0]),
            updated_replicas=_int(counts[1]),
            ready_replicas=_int(counts[2]),
            available_replicas=_int(counts[3]),
            unavailable_replicas=_int(counts[4]),
            conditions=(),
        ),
        selector=_mapping(spec.get("selector")),
        template=template,
        annotations=annotations,
        revision_history_limit=(
            history_limit
            if isinstance(history_limit, int) and not isinstance(history_limit, bool)
            else None
        ),
        kind=kind,
        raw=obj,
        update_strategy=strategy,
        partition=partition,
        pod_management=str(management)[:40] if isinstance(management, str) else "",
    )


def parse_workload_history(
    kind: WorkloadKind, obj: JsonDict, controller_revisions: Iterable[JsonDict]
) -> History:
    """A StatefulSet's or DaemonSet's history from its ControllerRevisions, as kubectl reads
    it (only those it controls, by uid), newest first; the current one is the revision its
    template is (`controller_revisions.current_revision`). A malformed revision of its own
    refuses the whole history (InvalidControllerRevision), as kubectl's read fails. A Rollout's
    from its ReplicaSets (`controller_revisions` holds them then), as the plugin reads it."""
    listed = [item for item in controller_revisions if isinstance(item, dict)]
    if kind is WorkloadKind.ROLLOUT:
        history = argo_rollouts.rollout_history(obj, listed)
        current = history.current
        return History(
            deployment=parse_workload(
                kind,
                obj,
                revision=current.number if current is not None else None,
            ),
            revisions=history.revisions,
            owned_json=tuple(listed),
        )
    owned = owned_history(obj, listed)
    now = current_revision(obj, owned)
    revisions = sorted(
        (as_revision(r, current=now is not None and r.name == now.name) for r in owned),
        key=lambda r: (r.number, r.replicaset),
        reverse=True,
    )
    workload = parse_workload(kind, obj, revision=now.number if now is not None else None)
    return History(deployment=workload, revisions=tuple(revisions), owned_json=tuple(listed))


def _mapping(value: Any) -> JsonDict:
    return value if isinstance(value, dict) else {}
