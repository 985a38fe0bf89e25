"""`kubectl rollout undo` of a StatefulSet or a DaemonSet: which revision, skip or patch, what is
sent. Pure: the workload's JSON and its history in, a plan out.

Reference: kubectl pkg/polymorphichelpers/rollback.go (StatefulSetRollbacker, DaemonSetRollbacker,
findHistory, statefulsetMatch / daemonSetMatch) and pkg/cmd/rollout/rollout_undo.go (the warning
for an object `kubectl apply` manages). The steps, in kubectl's order:

1. a negative revision: "unable to find specified revision N in history";
2. revision 0 (undo to the previous) with one revision or none: "no last revision to roll back
   to";
3. the revision: 0 takes the second highest revision number (sorted, `history[len-2]`), which
   is not necessarily the one before the current template; N takes the revision numbered N, or
   "unable to find specified revision N in history";
4. skip when the patch made of the current template equals the revision's data:
   "skipped rollback (current template already matches revision N)", N as asked (0 for undo);
5. otherwise a strategic merge patch (application/strategic-merge-patch+json) whose body is the
   revision's data, `{"spec": {"template": {..., "$patch": "replace"}}}`: the API server puts
   that template in place of the whole current one.

No pause check (StatefulSets and DaemonSets have none) and no annotations copied (kubectl passes
none for these kinds). The bot refuses, where kubectl would send it, data that is not of the
controller's shape (`controller_revisions.check_revision_data`), and a revision number two
ControllerRevisions hold with different templates (kubectl's pick between them is arbitrary).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.controller_revisions import (
    ControllerRevisionInfo,
    InvalidControllerRevision,
    check_revision_data,
    current_revision,
    json_equal,
    pod_template,
    template_matches,
    workload_uid,
)
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.models import LAST_APPLIED_ANNOTATION, Deployment, JsonDict, WorkloadKind
from bot.domain.rollback.template_diff import TemplateChange, diff_templates
from bot.domain.rollback.versions import version_of

STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
ROLLBACK_SUCCESS = "rolled back"
ROLLBACK_SKIPPED = "skipped rollback"
NO_LAST_REVISION = "no last revision to roll back to"
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"
_SHOWN_REVISIONS = 20


def revision_not_found(to_revision: int) -> str:
    """kubectl's revisionNotFoundErr."""
    return f"unable to find specified revision {to_revision} in history"


def skipped_message(to_revision: int) -> str:
    """kubectl's answer when the template already matches: the revision as asked (0 for undo)."""
    return f"{ROLLBACK_SKIPPED} (current template already matches revision {to_revision})"


def apply_warning(kind: WorkloadKind, name: str) -> str:
    """kubectl rollout undo's warning for an object `kubectl apply` manages."""
    return (
        f"Warning: resource {kind.resource}/{name} was previously managed with 'kubectl apply'. "
        f"Rolling back will not update the {LAST_APPLIED_ANNOTATION} annotation, which may cause "
        "unexpected behavior on future 'kubectl apply' operations. Consider using 'kubectl "
        "apply' with your previous configuration file instead."
    )


@dataclass(frozen=True)
class UndoPlan:
    """What `kubectl rollout undo` of a StatefulSet or DaemonSet will do.

    `action` "skip": the current template already is the target's (nothing is sent). `patch`:
    kubectl's body, the target's data exactly (empty for a skip), sent as `content_type`;
    `body()` adds the bot's resourceVersion precondition (and annotations) to it.
    `requested` is the revision as asked (0: the previous), `target` the one it resolved to,
    `from_revision` the revision the current template is (None when the controller has not
    written it yet). `template_after` is what the API server will make of the patch.
    `warnings`: sentences to show before confirming (kubectl's `apply` warning, an OnDelete
    strategy, a partition)."""

    kind: WorkloadKind
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    action: Literal["patch", "skip"]
    requested: int
    target: ControllerRevisionInfo
    from_revision: int | None
    from_version: str
    update_strategy: str
    partition: int | None
    patch: JsonDict = field(repr=False)
    template_before: JsonDict = field(repr=False)
    template_after: JsonDict = field(repr=False)
    changes: tuple[TemplateChange, ...] = field(repr=False)
    warnings: tuple[str, ...] = ()
    content_type: str = STRATEGIC_MERGE_PATCH

    @property
    def message(self) -> str:
        """kubectl's own answer: "rolled back", or "skipped rollback (current template already
        matches revision N)" with N as asked (so "revision 0" for a plain undo)."""
        return ROLLBACK_SUCCESS if self.action == "patch" else skipped_message(self.requested)

    @property
    def summary(self) -> str:
        """The plan in one line for a person, with the revision it resolved to."""
        where = f"{self.kind.noun} {self.namespace}/{self.name}"
        if self.action == "skip":
            return (
                f"skipped: {where} already has the template of revision {self.target.number} "
                f"({self.target.version})"
            )
        return (
            f"{self.namespace}/{self.name}: {self.from_version} → {self.target.version} "
            f"(revision {self.from_revision if self.from_revision is not None else '?'} → "
            f"{self.target.number})"
        )

    @property
    def pods_must_be_deleted(self) -> bool:
        """The OnDelete strategy: the controller replaces no pod; each takes the restored
        template only when it is deleted."""
        return self.update_strategy == ON_DELETE

    @property
    def snapshot(self) -> Snapshot:
        """What this plan was decided on (the target named by its ControllerRevision)."""
        return Snapshot(
            revision=self.from_revision,
            generation=self.generation,
            target_replicaset=self.target.name,
            target_revision=self.target.number,
        )

    def body(
        self, *, precondition: bool = True, annotations: Mapping[str, str] | None = None
    ) -> JsonDict:
        """The strategic merge patch to send: kubectl's (the revision's data), plus
        `metadata.resourceVersion` when `precondition` (a workload changed since it was read
        then answers 409 Conflict) and `metadata.annotations` merged in when given. Empty for a
        skip: nothing is sent."""
        if self.action == "skip":
            return {}
        result = copy.deepcopy(self.patch)
        metadata: JsonDict = {}
        if precondition:
            metadata["resourceVersion"] = self.resource_version
        if annotations:
            metadata["annotations"] = {str(k): str(v) for k, v in annotations.items()}
        if metadata:
            result["metadata"] = metadata
        return result


def apply_template_replace(workload: Mapping[str, Any], data: Any) -> JsonDict:
    """The workload's `spec.template` once the API server has applied `data` as a strategic
    merge patch (before its defaulting, which the controller's revisions already hold).

    `"$patch": "replace"` on spec.template makes the server use the patch's template as it is,
    without merging: a field, label, container or env var the current template has and the
    revision does not is gone afterwards. Data of any other shape is refused
    (InvalidControllerRevision), as `check_revision_data` says."""
    pod_template(workload)  # the workload must have one, as kubectl's getPatch assumes
    return check_revision_data(data)


def update_strategy(kind: WorkloadKind, workload: Mapping[str, Any]) -> tuple[str, int | None]:
    """The workload's `spec.updateStrategy.type` ("" when absent) and, for a StatefulSet, its
    `rollingUpdate.partition` (None when absent)."""
    spec = workload.get("spec")
    strategy = spec.get("updateStrategy") if isinstance(spec, Mapping) else None
    if not isinstance(strategy, Mapping):
        return "", None
    kind_of = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    partition = rolling.get("partition") if isinstance(rolling, Mapping) else None
    valid = (
        kind is WorkloadKind.STATEFULSET
        and isinstance(partition, int)
        and not isinstance(partition, bool)
    )
    return (kind_of if isinstance(kind_of, str) else ""), (partition if valid else None)


def choose_revision(
    kind: WorkloadKind,
    workload: Mapping[str, Any],
    revisions: Sequence[ControllerRevisionInfo],
    to_revision: int,
) -> ControllerRevisionInfo:
    """kubectl's choice (rollback.go's checks, then findHistory): `to_revision` 0 is the second
    highest revision number; RollbackRefused in kubectl's words when there is none. Only the
    workload's own revisions count (its uid as their controller)."""
    where = _where(kind, workload)
    uid = workload_uid(workload)
    owned = sorted((r for r in revisions if r.owner_uid == uid), key=lambda r: (r.number, r.name))
    if to_revision < 0:
        raise RollbackRefused(f"{revision_not_found(to_revision)} ({_kept(where, owned)})")
    if to_revision == 0 and len(owned) <= 1:
        only = f"has only revision {owned[0].number}" if owned else "has no revision yet"
        raise RollbackRefused(f"{NO_LAST_REVISION} ({where} {only})")
    if to_revision == 0:
        target = owned[-2]
    else:
        found = next((r for r in owned if r.number == to_revision), None)
        if found is None:
            raise RollbackRefused(f"{revision_not_found(to_revision)} ({_kept(where, owned)})")
        target = found
    rivals = [r for r in owned if r.number == target.number and r is not target]
    if any(not json_equal(r.data, target.data) for r in rivals):
        names = ", ".join([target.name, *(r.name for r in rivals)][:5])
        raise RollbackRefused(
            f"revision {target.number} of {where} is held by more than one ControllerRevision "
            f"({names}) with different templates: which one is meant cannot be told; roll back "
            "to another revision or remove the stray one"
        )
    return target


def plan_undo(
    kind: WorkloadKind,
    workload: Mapping[str, Any],
    revisions: Sequence[ControllerRevisionInfo],
    to_revision: int,
) -> UndoPlan:
    """Decide what `kubectl rollout undo <kind>/<name> --to-revision=<to_revision>` would do.

    `workload` is the StatefulSet's or DaemonSet's JSON as the API returns it, `revisions` its
    history (`controller_revisions.owned_history`; others' revisions are ignored here too).
    Raises RollbackRefused in kubectl's words (a missing revision, no previous one), and
    InvalidControllerRevision (a RollbackRefused) for a workload without uid or template, or a
    kind other than the one asked. Deployments are planned by `planning.plan_rollback`."""
    if kind is WorkloadKind.DEPLOYMENT:
        raise ValueError("a Deployment's history is its ReplicaSets: use planning.plan_rollback")
    stated = workload.get("kind")
    if stated is not None and stated != kind.value:
        raise InvalidControllerRevision(
            f"the object is a {str(stated)[:40]}, not a {kind.value}: refusing to plan its undo"
        )
    metadata = workload.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    namespace, name = _text(metadata.get("namespace")), _text(metadata.get("name"))
    current = pod_template(workload)
    target = choose_revision(kind, workload, revisions, to_revision)
    # A ControllerRevisionInfo built other than by parse_controller_revision is checked too.
    check_revision_data(target.data, where=f'ControllerRevision "{target.name}"')
    uid = workload_uid(workload)
    owned = [r for r in revisions if r.owner_uid == uid]
    now = current_revision(workload, owned)
    strategy, partition = update_strategy(kind, workload)
    skip = template_matches(workload, target)
    generation = metadata.get("generation")
    return UndoPlan(
        kind=kind,
        namespace=namespace,
        name=name,
        uid=uid,
        resource_version=_text(metadata.get("resourceVersion")),
        generation=generation
        if isinstance(generation, int) and not isinstance(generation, bool)
        else 0,
        action="skip" if skip else "patch",
        requested=to_revision,
        target=target,
        from_revision=now.number if now is not None else None,
        from_version=version_of(current),
        update_strategy=strategy,
        partition=partition,
        patch={} if skip else copy.deepcopy(target.data),
        template_before=copy.deepcopy(current),
        template_after=copy.deepcopy(target.template),
        changes=diff_templates(current, target.template),
        warnings=_warnings(kind, metadata, namespace, name, strategy, partition, target),
    )


def _warnings(
    kind: WorkloadKind,
    metadata: Mapping[str, Any],
    namespace: str,
    name: str,
    strategy: str,
    partition: int | None,
    target: ControllerRevisionInfo,
) -> tuple[str, ...]:
    found: list[str] = []
    annotations = metadata.get("annotations")
    if isinstance(annotations, Mapping) and LAST_APPLIED_ANNOTATION in annotations:
        found.append(apply_warning(kind, name))
    where = f"{kind.noun} {namespace}/{name}"
    if strategy == ON_DELETE:
        found.append(
            f"{where} uses the OnDelete update strategy: the controller replaces no pod, so each "
            f"keeps the version it runs until it is deleted; delete the pods to bring "
            f"{target.version} (revision {target.number}) back"
        )
    if strategy == ROLLING_UPDATE and partition is not None and partition > 0:
        found.append(
            f"{where} is partitioned at {partition}: only its pods of ordinal {partition} and up "
            f"are rolled back; pods 0 to {partition - 1} keep the version they run"
        )
    return tuple(found)


def _where(kind: WorkloadKind, workload: Mapping[str, Any]) -> str:
    metadata = workload.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    return f"{kind.noun} {_text(metadata.get('namespace'))}/{_text(metadata.get('name'))}"


def _kept(where: str, owned: Sequence[ControllerRevisionInfo]) -> str:
    if not owned:
        return f"{where} has no revision yet"
    numbers = sorted({r.number for r in owned})
    shown = ", ".join(str(n) for n in numbers[-_SHOWN_REVISIONS:])
    older = len(numbers) - _SHOWN_REVISIONS
    return f"{where} keeps revisions {shown}" + (f" and {older} older" if older > 0 else "")


def _text(value: Any) -> str:
    return value[:253] if isinstance(value, str) else ""


def strategy_notes(workload: Deployment) -> tuple[str, ...]:
    """What a StatefulSet's or DaemonSet's update strategy makes of a rollback, for the versions
    message and the CLI, before anyone clicks (a Deployment's strategy changes nothing)."""
    kind = workload.kind
    if kind is WorkloadKind.DEPLOYMENT:
        return ()
    if workload.update_strategy == ON_DELETE:
        return (
            "update strategy OnDelete: a rollback restores the template only; Kubernetes "
            "replaces no pod, each keeps its version until it is deleted",
        )
    notes = []
    desired = workload.desired_replicas
    if kind is WorkloadKind.STATEFULSET:
        partition = workload.partition or 0
        if partition > 0:
            count = f" ({max((desired or 0) - partition, 0)} of {desired})" if desired else ""
            notes.append(
                f"partition {partition}: only the pods of ordinal {partition} and above are "
                f"rolled back{count}; the others keep their version"
            )
        notes.append(
            "pods are replaced one at a time from the highest ordinal, each once the one before "
            "is ready: a pod of the bad version that never becomes ready stops the rollback "
            "until it is deleted"
        )
    return tuple(notes)
