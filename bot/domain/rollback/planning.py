"""Choosing the target revision and building the patch, exactly as `kubectl rollout undo`.

Reference: kubernetes/kubectl pkg/polymorphichelpers/rollback.go (DeploymentRollbacker). Every
function here is pure: the same History in gives the same plan out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from bot.domain.errors import RollbackRefused
from bot.domain.rollback import argo_rollouts
from bot.domain.rollback.controller_revisions import as_revision, owned_history
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.migrations import MigrationRefused, migration_block
from bot.domain.rollback.models import (
    ANNOTATIONS_TO_SKIP,
    BOT_ANNOTATION_PREFIX,
    CHANGE_CAUSE_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL,
    Deployment,
    History,
    JsonDict,
    Revision,
    WorkloadKind,
)
from bot.domain.rollback.template_diff import TemplateChange, diff_templates
from bot.domain.rollback.workload_undo import plan_undo
from bot.domain.times import kube_time


@dataclass(frozen=True)
class RollbackCause:
    """Who rolls back, through what, and why: recorded on the Deployment."""

    actor: str
    via: str
    reason: str | None
    at: datetime
    # The actor as Slack knows them ("U0ALICE"), where `actor` is how the change-cause names
    # them ("@alice"): messages mention the person by it.
    actor_id: str | None = None


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback will do. `action` "skip" means the template already matches the target."""

    action: Literal["patch", "skip"]
    namespace: str
    name: str
    from_revision: int | None
    from_version: str
    target: Revision
    changes: tuple[TemplateChange, ...]
    patch: tuple[JsonDict, ...]
    resource_version: str
    generation: int = 0
    # The migration guard this plan overrides (its reason), when an override was asked and needed.
    overridden: str | None = None
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    # A StatefulSet's or DaemonSet's patch: kubectl's strategic merge patch (the revision's
    # data) with the bot's precondition and record; `patch` is then empty.
    merge_patch: JsonDict | None = field(default=None, repr=False)
    # What the update strategy makes of the rollback (OnDelete, a partition), said before it.
    warnings: tuple[str, ...] = ()
    update_strategy: str = ""
    # An Argo Rollout's abort (`plan_abort`): `merge_patch` goes to this subresource, and the
    # rollout is followed until the canary is gone and the stable serves everything.
    abort: bool = False
    subresource: str | None = None

    @property
    def body(self) -> tuple[JsonDict, ...] | JsonDict:
        """What is sent: a Deployment's JSON Patch, or the others' strategic merge patch."""
        return self.merge_patch if self.merge_patch is not None else self.patch

    @property
    def pods_must_be_deleted(self) -> bool:
        """An OnDelete StatefulSet or DaemonSet: its pods take the old template only once
        deleted."""
        return self.kind is not WorkloadKind.DEPLOYMENT and self.update_strategy == "OnDelete"

    @property
    def snapshot(self) -> Snapshot:
        """What this plan was decided on, to refuse acting on it once the cluster moved."""
        return Snapshot(
            revision=self.from_revision,
            generation=self.generation,
            target_replicaset=self.target.replicaset,
            target_revision=self.target.number,
        )

    @property
    def summary(self) -> str:
        if self.action == "skip":
            return (
                f"skipped: {self.kind.noun} {self.namespace}/{self.name} is already at revision "
                f"{self.target.number} ({self.target.version})"
            )
        return (
            f"{self.namespace}/{self.name}: {self.from_version} → {self.target.version} "
            f"(revision {self.from_revision or '?'} → {self.target.number})"
        )


def choose_target(history: History, to_revision: int | None) -> Revision:
    """kubectl's deploymentRevision: the given revision, or the second newest when none is given."""
    name = f"{history.deployment.namespace}/{history.deployment.name}"
    if to_revision is not None:
        if to_revision <= 0:
            raise RollbackRefused(f"revision {to_revision} is not valid: revisions start at 1")
        found = history.revision(to_revision)
        if found is None:
            known = ", ".join(str(r.number) for r in history.revisions) or "none"
            raise RollbackRefused(
                f"unable to find revision {to_revision} of deployment {name} "
                f"(revisions kept: {known})"
            )
        return found
    ordered = sorted(history.revisions, key=lambda r: r.number, reverse=True)
    if len(ordered) < 2:
        raise RollbackRefused(f"no rollout history found for deployment {name}")
    return ordered[1]


def previous_revision(history: History) -> Revision | None:
    """The revision `kubectl rollout undo` would go back to, or None when there is none. Pure."""
    try:
        return choose_target(history, None)
    except RollbackRefused:
        return None


def template_without_hash(template: Mapping[str, Any]) -> JsonDict:
    """A deep copy of a pod template with the pod-template-hash label removed. Pure."""
    result: JsonDict = copy.deepcopy(dict(template))
    labels = (result.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return result


def equal_ignore_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """kubectl's equalIgnoreHash: templates equal but for the pod-template-hash label. Pure."""
    return _normalized(template_without_hash(a)) == _normalized(template_without_hash(b))


def _normalized(template: JsonDict) -> JsonDict:
    # An empty labels map and a missing one are the same template to the API server.
    metadata = template.get("metadata")
    if isinstance(metadata, dict) and not metadata.get("labels"):
        metadata.pop("labels", None)
    return template


def cause_text(target: Revision, cause: RollbackCause) -> str:
    text = (
        f"rolled back to revision {target.number} ({target.version}) "
        f"by {cause.actor} via {cause.via}"
    )
    return f"{text}: {cause.reason}" if cause.reason else text


def bot_annotations(
    plan_from: int | None, from_version: str, target: Revision, cause: RollbackCause
) -> dict[str, str]:
    return {
        f"{BOT_ANNOTATION_PREFIX}from-version": from_version,
        f"{BOT_ANNOTATION_PREFIX}rolled-back-by": cause.actor,
        f"{BOT_ANNOTATION_PREFIX}rolled-back-via": cause.via,
        f"{BOT_ANNOTATION_PREFIX}rolled-back-at": kube_time(cause.at),
        f"{BOT_ANNOTATION_PREFIX}from-revision": str(plan_from) if plan_from is not None else "",
        f"{BOT_ANNOTATION_PREFIX}to-revision": str(target.number),
        **({f"{BOT_ANNOTATION_PREFIX}reason": cause.reason} if cause.reason else {}),
        **({f"{BOT_ANNOTATION_PREFIX}rolled-back-by-id": cause.actor_id} if cause.actor_id else {}),
    }


def restored_annotations(
    deployment_annotations: Mapping[str, str], target_annotations: Mapping[str, str]
) -> dict[str, str]:
    """kubectl's merge: the skipped keys from the Deployment, the rest from the ReplicaSet."""
    result = {k: v for k, v in deployment_annotations.items() if k in ANNOTATIONS_TO_SKIP}
    result.update({k: v for k, v in target_annotations.items() if k not in ANNOTATIONS_TO_SKIP})
    return result


def plan_rollback(
    history: History,
    to_revision: int | None,
    cause: RollbackCause | None = None,
    *,
    override: bool = False,
) -> RollbackPlan:
    """Decide what `kubectl rollout undo [--to-revision=N]` would do, plus the bot's record.

    Raises RollbackRefused for a paused Deployment, a missing revision or no history, and
    MigrationRefused (a RollbackRefused) for a target older than the newest irreversible schema
    migration unless `override` (break glass: the plan then says what it `overridden`). The patch
    is kubectl's two JSON Patch operations, preceded by a resourceVersion precondition so a
    Deployment changed since it was read gives 409 Conflict instead of a rollback decided on
    stale state.
    """
    if history.deployment.kind is WorkloadKind.ROLLOUT:
        return _plan_rollout_undo(history, to_revision, cause, override=override)
    if history.deployment.kind is not WorkloadKind.DEPLOYMENT:
        return _plan_workload_undo(history, to_revision, cause, override=override)
    deployment = history.deployment
    target = choose_target(history, to_revision)
    current = history.current
    from_revision = (
        deployment.revision
        if deployment.revision is not None
        else (current.number if current else None)
    )
    if deployment.paused:
        raise RollbackRefused(
            f"deployment {deployment.namespace}/{deployment.name} is paused: you cannot roll back "
            "a paused deployment; resume it first with 'kubectl rollout resume' and try again"
        )
    plan = RollbackPlan(
        action="skip",
        namespace=deployment.namespace,
        name=deployment.name,
        from_revision=from_revision,
        from_version=deployment.version,
        target=target,
        changes=diff_templates(deployment.template, target.template),
        patch=(),
        resource_version=deployment.resource_version,
        generation=deployment.generation,
    )
    if equal_ignore_hash(target.template, deployment.template):
        return plan
    plan = _guarded(plan, history, override=override)

    annotations = restored_annotations(deployment.annotations, target.annotations)
    if cause is not None:
        annotations = {
            k: v for k, v in annotations.items() if not k.startswith(BOT_ANNOTATION_PREFIX)
        }
        annotations[CHANGE_CAUSE_ANNOTATION] = cause_text(target, cause)
        annotations.update(bot_annotations(from_revision, deployment.version, target, cause))
    patch: tuple[JsonDict, ...] = (
        {
            "op": "replace",
            "path": "/metadata/resourceVersion",
            "value": deployment.resource_version,
        },
        {
            "op": "replace",
            "path": "/spec/template",
            "value": template_without_hash(target.template),
        },
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    )
    return replace(plan, action="patch", patch=patch)


def _guarded(plan: RollbackPlan, history: History, *, override: bool) -> RollbackPlan:
    """The migration guard over a plan that patches: MigrationRefused for a target older than
    the newest irreversible schema migration, unless `override` (the plan then says what it
    overrides)."""
    block = migration_block(history, plan.target)
    if block is None:
        return plan
    if not override:
        raise MigrationRefused(block)
    return replace(plan, overridden=block.reason)


class _Undo(Protocol):
    """What kubectl's undo of a StatefulSet or DaemonSet and the Argo plugin's undo both
    decide, in the fields a `RollbackPlan` takes from them."""

    @property
    def from_revision(self) -> int | None: ...

    @property
    def from_version(self) -> str: ...

    @property
    def changes(self) -> tuple[TemplateChange, ...]: ...

    @property
    def resource_version(self) -> str: ...

    @property
    def generation(self) -> int: ...


def _skipping(
    workload: Deployment,
    undo: _Undo,
    target: Revision,
    *,
    warnings: tuple[str, ...] = (),
    update_strategy: str = "",
) -> RollbackPlan:
    """The plan of an undo another module decided, before its patch (a skip until it has one)."""
    return RollbackPlan(
        action="skip",
        namespace=workload.namespace,
        name=workload.name,
        from_revision=undo.from_revision,
        from_version=undo.from_version,
        target=target,
        changes=undo.changes,
        patch=(),
        resource_version=undo.resource_version,
        generation=undo.generation,
        kind=workload.kind,
        warnings=warnings,
        update_strategy=update_strategy,
    )


def _plan_workload_undo(
    history: History,
    to_revision: int | None,
    cause: RollbackCause | None,
    *,
    override: bool,
) -> RollbackPlan:
    """A StatefulSet's or DaemonSet's rollback: kubectl's undo (`workload_undo.plan_undo`: the
    revision it picks, its skip, its patch), the migration guard, and the bot's record on the
    workload's annotations (a strategic merge patch merges them: the bot's keys this rollback
    does not set are removed with null)."""
    workload = history.deployment
    kind = workload.kind
    revisions = owned_history(workload.raw, list(history.owned_json))
    undo = plan_undo(kind, workload.raw, revisions, to_revision or 0)
    target = next(
        (r for r in history.revisions if r.replicaset == undo.target.name),
        as_revision(undo.target, current=False),
    )
    plan = _skipping(
        workload, undo, target, warnings=undo.warnings, update_strategy=undo.update_strategy
    )
    if undo.action == "skip":
        return plan
    plan = _guarded(plan, history, override=override)
    body = undo.body(precondition=True)
    if cause is not None:
        annotations: dict[str, str | None] = {
            key: None for key in workload.annotations if key.startswith(BOT_ANNOTATION_PREFIX)
        }
        annotations[CHANGE_CAUSE_ANNOTATION] = cause_text(target, cause)
        annotations.update(bot_annotations(undo.from_revision, undo.from_version, target, cause))
        body.setdefault("metadata", {})["annotations"] = annotations
    return replace(plan, action="patch", merge_patch=body)


def _record_annotations(
    history: History, target: Revision, from_revision: int | None, cause: RollbackCause
) -> dict[str, str]:
    """The workload's annotations with the bot's record of this rollback in place of any older
    one (for a patch that replaces the whole map)."""
    workload = history.deployment
    kept = {
        k: v for k, v in workload.annotations.items() if not k.startswith(BOT_ANNOTATION_PREFIX)
    }
    kept[CHANGE_CAUSE_ANNOTATION] = cause_text(target, cause)
    kept.update(bot_annotations(from_revision, workload.version, target, cause))
    return kept


def _plan_rollout_undo(
    history: History,
    to_revision: int | None,
    cause: RollbackCause | None,
    *,
    override: bool,
) -> RollbackPlan:
    """An Argo Rollout's undo exactly as `kubectl argo rollouts undo` (`argo_rollouts.plan_undo`:
    the revision it picks, its skip, its JSON Patch of `spec.template`), behind a resourceVersion
    precondition, the migration guard, and the bot's record in the annotations."""
    rollout = history.deployment
    undo = argo_rollouts.plan_undo(rollout.raw, list(history.owned_json), to_revision or 0)
    target = next(
        (r for r in history.revisions if r.replicaset == undo.target.replicaset), undo.target
    )
    plan = _skipping(rollout, undo, target, update_strategy=rollout.update_strategy)
    if undo.action == "skip":
        return plan
    plan = _guarded(plan, history, override=override)
    ops = undo.body(precondition=True)
    if cause is not None:
        annotations = _record_annotations(history, target, undo.from_revision, cause)
        ops.append({"op": "add", "path": "/metadata/annotations", "value": annotations})
    return replace(plan, action="patch", patch=tuple(ops))


def plan_abort(history: History) -> RollbackPlan:
    """An Argo Rollout's abort exactly as `kubectl argo rollouts abort`: `{"status":{"abort":
    true}}` on the status subresource (`argo_rollouts.plan_abort`), towards its stable
    ReplicaSet. RollbackRefused when it is no Rollout or has nothing to abort."""
    rollout = history.deployment
    if rollout.kind is not WorkloadKind.ROLLOUT:
        raise RollbackRefused(
            f"{rollout.kind.noun} {rollout.namespace}/{rollout.name} is not an Argo Rollout: "
            "only a Rollout's update can be aborted"
        )
    abort = argo_rollouts.plan_abort(rollout.raw, list(history.owned_json))
    stable = argo_rollouts.rollout_history(rollout.raw, list(history.owned_json)).by_hash(
        abort.stable_hash
    )
    if stable is None:
        raise RollbackRefused(
            f"rollout {rollout.namespace}/{rollout.name}: its stable ReplicaSet "
            f"({abort.stable_hash[:64]}) is not among its ReplicaSets: nothing to go back to"
        )
    return RollbackPlan(
        action="patch",
        namespace=rollout.namespace,
        name=rollout.name,
        from_revision=rollout.revision,
        from_version=abort.canary_version,
        target=stable,
        changes=(),
        patch=(),
        resource_version=abort.resource_version,
        generation=rollout.generation,
        kind=WorkloadKind.ROLLOUT,
        merge_patch=abort.body(),
        warnings=(abort.summary,),
        update_strategy=rollout.update_strategy,
        abort=True,
        subresource=abort.subresource,
    )


def rolled_back_from(history: History) -> dict[str, str]:
    """Versions the bot has rolled back away from, with who did it: known bad. Pure.

    The record lives in the annotations the bot writes, which the controller copies onto the
    ReplicaSet that became current, so it survives as long as that ReplicaSet is kept.
    """
    found: dict[str, str] = {}
    sources = [history.deployment.annotations, *(r.annotations for r in history.revisions)]
    for notes in sources:
        version = notes.get(f"{BOT_ANNOTATION_PREFIX}from-version")
        if version and version not in found:
            found[version] = (
                notes.get(f"{BOT_ANNOTATION_PREFIX}rolled-back-by-id")
                or notes.get(f"{BOT_ANNOTATION_PREFIX}rolled-back-by")
                or "someone"
            )
    return found
