"""Argo Rollouts: a Rollout's history, state and progress, and the `kubectl argo rollouts`
plugin's `undo` and `abort`, decided without I/O. Pure: the API's JSON in, frozen values out.

Reference: argoproj/argo-rollouts pkg/kubectl-argo-rollouts/cmd/undo/undo.go, cmd/abort/abort.go,
cmd/status/status.go; utils/rollout/rolloututil.go (GetRolloutPhase, CalculateRolloutPhase);
utils/conditions; rollout/canary.go (what the controller does on abort).

The plugin's `undo ROLLOUT [--to-revision=N]`:

1. it lists the ReplicaSets the Rollout's selector matches and keeps those the Rollout controls
   (controller owner reference with its uid); each one's revision is its
   `rollout.argoproj.io/revision` annotation (absent: 0; not a whole number: that ReplicaSet is
   left out);
2. N > 0: the first ReplicaSet listed with revision N, else "unable to find specified revision N
   in history"; N = 0 (the default): the second highest revision, chosen in list order (the
   highest so far moves down to "previous" when a higher one comes; a tie with the highest
   becomes the previous), else `no revision found for rollout "NAME"`;
3. it skips, answering "skipped rollback (current template already matches revision N)" with N
   as asked (0 for a plain undo), when the Rollout's `spec.template` is a semantic derivative
   (apiequality.Semantic.DeepDerivative) of the ReplicaSet's template, the
   `rollouts-pod-template-hash` label removed from both: every field set in the Rollout's
   template equals the ReplicaSet's, fields left empty there do not count;
4. otherwise it removes the `rollouts-pod-template-hash` label (and nothing else: no annotation,
   no other label) from the ReplicaSet's template and sends, as `application/json-patch+json`,
   `[{"op": "replace", "path": "/spec/template", "value": <that template>}]` to the Rollout
   itself (a Rollout with `spec.workloadRef` is patched through the referenced Deployment,
   ReplicaSet or PodTemplate instead: refused here). It answers "rollout 'NAME' undo". The
   plugin marshals the typed PodTemplateSpec (fields its Go types lack dropped, empty ones such
   as `creationTimestamp: null` or `resources: {}` written); the bot sends the template as the
   API returned it, which the API server takes for the same template.

The controller then finds the old ReplicaSet by template, renumbers it to the highest revision +
1 and runs the canary steps again, unless the template is the stable ReplicaSet's: then it goes
straight to stable.

The plugin's `abort ROLLOUT`: a merge patch (`application/merge-patch+json`)
`{"status":{"abort":true}}` on the `status` subresource, sent again without the subresource only
when that answers 404 (a CRD of v0.9 without one). It answers "rollout 'NAME' aborted". The
controller then sets the canary weight to 0 at once (the canary ReplicaSet scaled to 0, the
stable back to all replicas; with a traffic router, all traffic to stable), moves
`currentStepIndex` back to 0, sets the Progressing condition False `RolloutAborted` "Rollout
aborted update to revision N" and the phase Degraded with message "RolloutAborted: Rollout aborted
update to revision N". `spec.template` still names the new version: the Rollout stays aborted
until the template changes (a deploy, or an undo) or the abort is cleared (`retry`).

Everything read from the cluster is hostile: sizes, depths and numbers are bounded, types are
checked before use, and a ReplicaSet the bot cannot read is skipped with a sentence saying why.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.controller_revisions import controller_of
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.json_bounds import json_problem
from bot.domain.rollback.models import CHANGE_CAUSE_ANNOTATION, JsonDict, Revision
from bot.domain.rollback.progress import Phase, Progress
from bot.domain.rollback.template_diff import TemplateChange, diff_templates
from bot.domain.rollback.versions import containers_of, version_of
from bot.domain.times import parse_time

ROLLOUT_KIND = "Rollout"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
HASH_LABEL = "rollouts-pod-template-hash"
JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
STATUS_SUBRESOURCE: Final = "status"

HEALTHY = "Healthy"
PROGRESSING = "Progressing"
PAUSED = "Paused"
DEGRADED = "Degraded"
ABORTED_REASON = "RolloutAborted"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
INVALID_SPEC = "InvalidSpec"
NOT_OBSERVED = "waiting for rollout spec update to be observed"
UNPAUSING = "waiting for rollout to unpause"
DEGRADED_SENTENCE = "The rollout is in a degraded state with message: {}"

MAX_REPLICASETS = 10_000  # ReplicaSets looked at for one Rollout's history
MAX_NAME = 253
MAX_TEXT_FIELD = 1_000  # a phase message, a condition message, a reason as shown
MAX_INT64 = 2**63 - 1
MAX_STEPS = 1_000
_REVISION_TEXT = re.compile(r"[+-]?[0-9]{1,19}")


class RolloutRefused(RollbackRefused):
    """The plugin's undo or abort would be wrong or impossible for this Rollout, or what the
    cluster gave is not of the shape the API server gives: the sentence says which."""


# ---------------------------------------------------------------------- reading JSON safely


def _text(value: Any, limit: int = MAX_NAME) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> int:
    """A count or generation: 0 when absent or not a whole number within int64."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT64:
        return 0
    return value


def _optional_int32(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        return None
    return value


def _quoted(value: Any) -> str:
    return json.dumps(_text(value) if isinstance(value, str) else str(value)[:40])


def parse_revision(value: Any) -> int | None:
    """strconv.ParseInt(value, 10, 64), as the plugin reads a revision annotation: None when the
    text is not a whole number within int64."""
    if not isinstance(value, str) or not _REVISION_TEXT.fullmatch(value):
        return None
    number = int(value)
    return number if -MAX_INT64 - 1 <= number <= MAX_INT64 else None


def _shape_problem(template: Any) -> str | None:
    """Why a pod template is not of the shape the API server gives (too large, too deep, not
    JSON, no containers), or None."""
    if not isinstance(template, Mapping):
        return "it is not a JSON object"
    problem = json_problem(template)
    if problem is not None:
        return f"it {problem}"
    metadata = template.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        return "its metadata is not an object"
    for key in ("labels", "annotations"):
        found = _mapping(metadata).get(key)
        if found is not None and (
            not isinstance(found, Mapping) or not all(isinstance(v, str) for v in found.values())
        ):
            return f"its metadata.{key} are not all text"
    spec = template.get("spec")
    if not isinstance(spec, Mapping):
        return "it has no spec"
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return "it has no containers"
    for container in containers:
        if not isinstance(container, Mapping):
            return "a container is not an object"
        if not isinstance(container.get("name", ""), str) or not isinstance(
            container.get("image", ""), str
        ):
            return "a container's name or image is not text"
    return None


def _without_hash(template: Mapping[str, Any]) -> JsonDict:
    """A deep copy of the template without the `rollouts-pod-template-hash` label (the only
    thing the plugin removes)."""
    result: JsonDict = copy.deepcopy(dict(template))
    labels = _mapping(result.get("metadata")).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return result


def template_derives(rollout_template: Any, replicaset_template: Any) -> bool:
    """The plugin's equalIgnoreHash: apiequality.Semantic.DeepDerivative(the Rollout's template,
    the ReplicaSet's), both without the hash label. A field the Rollout's template leaves empty
    (an empty string, object or list, or null) derives anything; a set one must be equal, of the
    same JSON type (a bool is not a number, 1 is not 1.0); a list derives a longer one whose
    first elements it derives. A null counts as unset even where the ReplicaSet has no such key
    (Go's typed round trip writes some fields as null). Iterative; bounded by the callers'
    checks."""
    a = _without_hash(rollout_template) if isinstance(rollout_template, Mapping) else None
    b = _without_hash(replicaset_template) if isinstance(replicaset_template, Mapping) else None
    if a is None or b is None:
        return False
    stack: list[tuple[Any, Any]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is None:
            continue
        if isinstance(x, Mapping):
            if not isinstance(y, Mapping):
                return False
            for key, value in x.items():
                if value is None:
                    continue
                if key not in y:
                    return False
                stack.append((value, y[key]))
        elif isinstance(x, list):
            if not isinstance(y, list) or len(x) > len(y):
                return False
            stack.extend(zip(x, y[: len(x)], strict=True))
        elif isinstance(x, str):
            if not isinstance(y, str) or (x and x != y):
                return False
        elif isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    return True


# ---------------------------------------------------------------------- the Rollout


@dataclass(frozen=True)
class _Rollout:
    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    status: Mapping[str, Any]


def _read_rollout(rollout_json: Any, *, need_uid: bool = True) -> _Rollout:
    if not isinstance(rollout_json, Mapping):
        raise RolloutRefused("the Rollout is not a JSON object")
    kind = rollout_json.get("kind")
    if kind is not None and kind != ROLLOUT_KIND:
        raise RolloutRefused(f"the object is a {_quoted(kind)}, not a Rollout")
    metadata = _mapping(rollout_json.get("metadata"))
    name = _text(metadata.get("name"))
    uid = _text(metadata.get("uid"))
    if not name:
        raise RolloutRefused("the Rollout has no name")
    if need_uid and not uid:
        raise RolloutRefused(
            f"the Rollout {name} has no uid: which ReplicaSets are its own cannot be told"
        )
    raw = _mapping(metadata.get("annotations"))
    return _Rollout(
        namespace=_text(metadata.get("namespace")),
        name=name,
        uid=uid,
        resource_version=_text(metadata.get("resourceVersion"), 64),
        generation=_count(metadata.get("generation")),
        annotations={
            str(k)[:MAX_NAME]: v[:MAX_TEXT_FIELD]
            for k, v in list(raw.items())[:1_000]
            if isinstance(v, str)
        },
        spec=_mapping(rollout_json.get("spec")),
        status=_mapping(rollout_json.get("status")),
    )


def _where(rollout: _Rollout) -> str:
    return f"rollout {rollout.namespace}/{rollout.name}" if rollout.namespace else rollout.name


def _rollout_template(rollout: _Rollout) -> JsonDict:
    template = rollout.spec.get("template")
    problem = _shape_problem(template)
    if problem is not None or not isinstance(template, Mapping):
        raise RolloutRefused(f"the spec.template of {_where(rollout)} cannot be read: {problem}")
    return copy.deepcopy(dict(template))


def _safe_version(template: Mapping[str, Any]) -> str:
    """versions.version_of on a template already checked by `_shape_problem`."""
    return version_of(dict(template))[:MAX_NAME]


def _steps(rollout: _Rollout) -> list[Mapping[str, Any]]:
    strategy = _mapping(rollout.spec.get("strategy"))
    steps = _mapping(strategy.get("canary")).get("steps")
    if not isinstance(steps, list):
        return []
    return [s if isinstance(s, Mapping) else {} for s in steps[:MAX_STEPS]]


def _revision_of_rollout(rollout: _Rollout) -> int | None:
    number = parse_revision(rollout.annotations.get(REVISION_ANNOTATION))
    return number if number is not None and number >= 0 else None


# ---------------------------------------------------------------------- history


@dataclass(frozen=True)
class SkippedReplicaSet:
    """A ReplicaSet of the Rollout left out of its history, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class RolloutHistory:
    """A Rollout's revisions: its own ReplicaSets (the controller owner reference names its uid),
    newest first. `listed` holds them in the order the API listed them (the plugin's choice
    depends on it); `skipped` the ReplicaSets of the Rollout that could not be read, with why;
    `pod_hashes` each ReplicaSet's `rollouts-pod-template-hash`."""

    namespace: str
    name: str
    uid: str
    revisions: tuple[Revision, ...]
    skipped: tuple[SkippedReplicaSet, ...] = ()
    listed: tuple[Revision, ...] = field(default=(), compare=False, repr=False)
    pod_hashes: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def current(self) -> Revision | None:
        return next((r for r in self.revisions if r.current), None)

    def revision(self, number: int) -> Revision | None:
        """The first ReplicaSet listed with that revision, as the plugin takes it."""
        return next((r for r in self.listed if r.number == number), None)

    def by_hash(self, pod_hash: str) -> Revision | None:
        if not pod_hash:
            return None
        return next(
            (r for r in self.revisions if self.pod_hashes.get(r.replicaset) == pod_hash), None
        )


def _items(replicasets_json: Any) -> list[Any]:
    if isinstance(replicasets_json, Mapping):
        items = replicasets_json.get("items")
    else:
        items = replicasets_json
    if items is None:
        return []
    if not isinstance(items, list | tuple):
        raise RolloutRefused("the ReplicaSets listed are not a JSON list")
    if len(items) > MAX_REPLICASETS:
        raise RolloutRefused(
            f"more than {MAX_REPLICASETS} ReplicaSets were listed: refusing to read a history "
            "that large"
        )
    return list(items)


def rollout_history(rollout_json: Any, replicasets_json: Any) -> RolloutHistory:
    """The Rollout's revisions from the ReplicaSets listed (a List response or its `items`):
    those whose controller owner reference names the Rollout's uid, newest first (by revision,
    then in list order), as models.Revision values: the number from `rollout.argoproj.io/revision`
    (absent: 0, as the plugin reads it), the version from the template, `current` for the one
    whose `rollouts-pod-template-hash` is the Rollout's `status.currentPodHash`.

    A ReplicaSet of the Rollout whose revision is not a whole number from 0 up, or whose template
    is not a pod template, is skipped with a sentence saying why (the plugin skips such
    revisions too). The plugin lists by the Rollout's selector as well: the controller's own
    ReplicaSets always match it, so the owner reference alone decides here. Raises
    RolloutRefused for a Rollout without uid or a list that is not one."""
    rollout = _read_rollout(rollout_json)
    current_hash = _text(rollout.status.get("currentPodHash"), 64)
    listed: list[Revision] = []
    skipped: list[SkippedReplicaSet] = []
    hashes: dict[str, str] = {}
    for item in _items(replicasets_json):
        if not isinstance(item, Mapping):
            continue
        owner = controller_of(item)
        if owner is None or owner[0] != rollout.uid:
            continue
        metadata = _mapping(item.get("metadata"))
        name = _text(metadata.get("name"))
        if not name:
            skipped.append(SkippedReplicaSet("", "a ReplicaSet of the Rollout has no usable name"))
            continue
        raw_annotations = metadata.get("annotations")
        annotations = {
            str(k)[:MAX_NAME]: v
            for k, v in list(_mapping(raw_annotations).items())[:1_000]
            if isinstance(v, str)
        }
        text = _mapping(raw_annotations).get(REVISION_ANNOTATION)
        number = 0 if text is None else parse_revision(text)
        if number is None or number < 0:
            said = _quoted(text) if isinstance(text, str) else "not text"
            skipped.append(
                SkippedReplicaSet(
                    name,
                    f'ReplicaSet "{name}": its {REVISION_ANNOTATION} annotation {said} is not a '
                    "whole number from 0 up; the plugin's undo leaves it out too",
                )
            )
            continue
        template = _mapping(item.get("spec")).get("template")
        problem = _shape_problem(template)
        if problem is not None or not isinstance(template, Mapping):
            skipped.append(
                SkippedReplicaSet(name, f'ReplicaSet "{name}": its pod template {problem}')
            )
            continue
        template_copy = copy.deepcopy(dict(template))
        labels = _mapping(_mapping(template_copy.get("metadata")).get("labels"))
        pod_hash = _text(labels.get(HASH_LABEL), 64) or _text(
            _mapping(metadata.get("labels")).get(HASH_LABEL), 64
        )
        hashes[name] = pod_hash
        status = _mapping(item.get("status"))
        listed.append(
            Revision(
                number=number,
                replicaset=name,
                version=_safe_version(template_copy),
                containers=containers_of(template_copy),
                change_cause=annotations.get(CHANGE_CAUSE_ANNOTATION),
                created_at=parse_time(metadata.get("creationTimestamp")),
                replicas=_count(status.get("replicas")),
                ready_replicas=_count(status.get("readyReplicas")),
                current=bool(current_hash) and pod_hash == current_hash,
                template=template_copy,
                annotations=annotations,
            )
        )
    order = {id(r): i for i, r in enumerate(listed)}
    newest_first = sorted(listed, key=lambda r: (-r.number, order[id(r)]))
    return RolloutHistory(
        namespace=rollout.namespace,
        name=rollout.name,
        uid=rollout.uid,
        revisions=tuple(newest_first),
        skipped=tuple(skipped),
        listed=tuple(listed),
        pod_hashes=hashes,
    )


# ---------------------------------------------------------------------- undo


def revision_not_found(to_revision: int) -> str:
    """The plugin's error for a revision it does not find."""
    return f"unable to find specified revision {to_revision} in history"


def no_revision_found(name: str) -> str:
    """The plugin's error when there is no previous revision."""
    return f"no revision found for rollout {json.dumps(name)}"


def skipped_message(to_revision: int) -> str:
    """The plugin's answer when the template already matches: the revision as asked."""
    return f"skipped rollback (current template already matches revision {to_revision})"


def choose_revision(history: RolloutHistory, to_revision: int) -> Revision:
    """The plugin's rolloutRevision: N > 0 the first listed with revision N; 0 the previous (the
    second highest, in list order, a tie with the highest counting as the previous)."""
    where = f"rollout {history.namespace}/{history.name}"
    if to_revision < 0:
        raise RolloutRefused(
            f"{no_revision_found(history.name)} (revision {to_revision} is not valid: revisions "
            "start at 1)"
        )
    if to_revision > 0:
        found = history.revision(to_revision)
        if found is None:
            kept = ", ".join(str(n) for n in sorted({r.number for r in history.listed})[-20:])
            raise RolloutRefused(
                f"{revision_not_found(to_revision)} ({where} keeps revisions {kept or 'none'})"
            )
        return found
    latest: Revision | None = None
    previous: Revision | None = None
    for candidate in history.listed:
        if latest is None or latest.number < candidate.number:
            previous, latest = latest, candidate
        elif previous is None or previous.number < candidate.number:
            previous = candidate
    if previous is None:
        only = f"only revision {latest.number}" if latest is not None else "no revision yet"
        raise RolloutRefused(f"{no_revision_found(history.name)} ({where} has {only})")
    return previous


@dataclass(frozen=True)
class RolloutUndoPlan:
    """What `kubectl argo rollouts undo NAME --to-revision=N` will do.

    `action` "skip": the Rollout's template already derives from the target's (nothing is sent).
    `patch`: the plugin's JSON Patch, the target's template without the hash label in place of
    `spec.template`, sent as `content_type` to the Rollout; `body()` may add a resourceVersion
    precondition. `requested` is the revision as asked (0: the previous)."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    generation: int
    action: Literal["patch", "skip"]
    requested: int
    target: Revision
    from_revision: int | None
    from_version: str
    patch: tuple[JsonDict, ...] = field(repr=False)
    changes: tuple[TemplateChange, ...] = field(repr=False)
    skipped: tuple[SkippedReplicaSet, ...] = ()
    content_type: str = JSON_PATCH

    @property
    def to_revision(self) -> int:
        return self.target.number

    @property
    def to_version(self) -> str:
        return self.target.version

    @property
    def message(self) -> str:
        """The plugin's own answer."""
        if self.action == "skip":
            return skipped_message(self.requested)
        return f"rollout '{self.name}' undo"

    @property
    def summary(self) -> str:
        if self.action == "skip":
            return (
                f"skipped: rollout {self.namespace}/{self.name} already has the template of "
                f"revision {self.target.number} ({self.target.version})"
            )
        before = self.from_revision if self.from_revision is not None else "?"
        return (
            f"{self.namespace}/{self.name}: {self.from_version} → {self.target.version} "
            f"(revision {before} → {self.target.number}; the controller gives it a new number)"
        )

    @property
    def snapshot(self) -> Snapshot:
        return Snapshot(
            revision=self.from_revision,
            generation=self.generation,
            target_replicaset=self.target.replicaset,
            target_revision=self.target.number,
        )

    def body(self, *, precondition: bool = False) -> list[JsonDict]:
        """The JSON Patch to send: the plugin's, preceded when `precondition` by a replace of
        `metadata.resourceVersion` with the one read (a Rollout changed since answers 409
        Conflict). Empty for a skip: nothing is sent."""
        if self.action == "skip":
            return []
        ops = [copy.deepcopy(op) for op in self.patch]
        if precondition:
            ops.insert(
                0,
                {
                    "op": "replace",
                    "path": "/metadata/resourceVersion",
                    "value": self.resource_version,
                },
            )
        return ops


def plan_undo(rollout_json: Any, replicasets_json: Any, to_revision: int) -> RolloutUndoPlan:
    """Decide what the plugin's `undo` would do (see the module's description). Raises
    RolloutRefused in the plugin's words for a missing revision or no previous one, and for what
    the plugin would do elsewhere or could not read (a workloadRef, a template that is not one)."""
    rollout = _read_rollout(rollout_json)
    if isinstance(to_revision, bool) or not isinstance(to_revision, int):
        raise RolloutRefused("the revision to undo to must be a whole number")
    if rollout.spec.get("workloadRef") is not None:
        ref = _mapping(rollout.spec.get("workloadRef"))
        raise RolloutRefused(
            f"{_where(rollout)} takes its pod template from {_text(ref.get('kind'), 40)} "
            f"{_text(ref.get('name'))} (spec.workloadRef): the plugin's undo patches that "
            "object, which the bot does not do"
        )
    current = _rollout_template(rollout)
    history = rollout_history(rollout_json, replicasets_json)
    target = choose_revision(history, to_revision)
    skip = template_derives(current, target.template)
    restored = _without_hash(target.template)
    now = history.current
    from_revision = _revision_of_rollout(rollout)
    if from_revision is None and now is not None:
        from_revision = now.number
    return RolloutUndoPlan(
        namespace=rollout.namespace,
        name=rollout.name,
        uid=rollout.uid,
        resource_version=rollout.resource_version,
        generation=rollout.generation,
        action="skip" if skip else "patch",
        requested=to_revision,
        target=target,
        from_revision=from_revision,
        from_version=_safe_version(current),
        patch=() if skip else ({"op": "replace", "path": "/spec/template", "value": restored},),
        changes=diff_templates(current, restored),
        skipped=history.skipped,
    )


# ---------------------------------------------------------------------- phase and state


def _generation_observed(rollout: _Rollout) -> bool:
    """isGenerationObserved: a numeric observedGeneration equal to (or past) the generation; a
    non-numeric one (a v0.9 hash) or none counts as observed."""
    observed = rollout.status.get("observedGeneration")
    if isinstance(observed, bool):
        return True
    if isinstance(observed, str) and re.fullmatch(r"[+-]?[0-9]{1,19}", observed):
        number = int(observed)
    elif isinstance(observed, int):
        number = observed
    else:
        return True
    return number >= rollout.generation


def _conditions(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = status.get("conditions")
    if not isinstance(found, list):
        return []
    return [c for c in found[:100] if isinstance(c, Mapping)]


def _pause_reasons(status: Mapping[str, Any]) -> list[str]:
    found = status.get("pauseConditions")
    if not isinstance(found, list):
        return []
    return [_text(c.get("reason"), 64) for c in found[:100] if isinstance(c, Mapping)]


def _calculate_phase(rollout: _Rollout) -> tuple[str, str]:
    """CalculateRolloutPhase: the phase a controller older than v1.0 left to clients."""
    spec, status = rollout.spec, rollout.status
    for cond in _conditions(status):
        message = _text(cond.get("message"), MAX_TEXT_FIELD)
        if cond.get("type") == INVALID_SPEC:
            return DEGRADED, f"{INVALID_SPEC}: {message}"
        if cond.get("reason") in (ABORTED_REASON, TIMED_OUT_REASON):
            return DEGRADED, f"{cond['reason']}: {message}"
    if spec.get("paused") is True:
        return PAUSED, "manually paused"
    reasons = _pause_reasons(status)
    if reasons:
        return PAUSED, reasons[0]
    restart = spec.get("restartAt")
    if restart is not None and status.get("restartedAt") != restart:
        return PROGRESSING, "rollout is restarting"
    replicas = _optional_int32(spec.get("replicas"))
    desired = replicas if replicas is not None else 1
    updated = _count(status.get("updatedReplicas"))
    if updated < desired:
        return PROGRESSING, "more replicas need to be updated"
    if _count(status.get("availableReplicas")) < updated:
        return PROGRESSING, "updated replicas are still becoming available"
    strategy = _mapping(spec.get("strategy"))
    current = _text(status.get("currentPodHash"), 64)
    stable = _text(status.get("stableRS"), 64)
    promoted = bool(stable) and stable == current
    if strategy.get("blueGreen") is not None:
        active = _text(_mapping(status.get("blueGreen")).get("activeSelector"), 64)
        if not active or active != current:
            return PROGRESSING, "active service cutover pending"
        if not promoted:
            analysis = _mapping(strategy.get("blueGreen")).get("postPromotionAnalysis")
            run = _mapping(_mapping(status.get("blueGreen")).get("postPromotionAnalysisRunStatus"))
            done = run.get("status") in ("Successful", "Failed", "Error", "Inconclusive")
            if analysis is not None and not done:
                return PROGRESSING, "waiting for analysis to complete"
            return PROGRESSING, "waiting for post-promotion verification to complete"
    elif strategy.get("canary") is not None:
        routed = _mapping(strategy.get("canary")).get("trafficRouting") is not None
        if not routed and _count(status.get("replicas")) > updated:
            return PROGRESSING, "old replicas are pending termination"
        if not promoted:
            return PROGRESSING, "waiting for all steps to complete"
    return HEALTHY, ""


def _phase(rollout: _Rollout) -> tuple[str, str]:
    """GetRolloutPhase: the spec not yet observed, an unpausing in progress, else the phase and
    message the controller wrote (or, with none written, CalculateRolloutPhase)."""
    if not _generation_observed(rollout):
        return PROGRESSING, NOT_OBSERVED
    if rollout.status.get("controllerPause") is True and not _pause_reasons(rollout.status):
        return PROGRESSING, UNPAUSING
    phase = _text(rollout.status.get("phase"), 64)
    if phase:
        return phase, _text(rollout.status.get("message"), MAX_TEXT_FIELD)
    return _calculate_phase(rollout)


def rollout_phase(rollout_json: Any) -> tuple[str, str]:
    """The Rollout's (phase, message) as the plugin's `status` reads them (GetRolloutPhase)."""
    return _phase(_read_rollout(rollout_json, need_uid=False))


def status_line(phase: str, message: str) -> str:
    """The plugin's `status` line: "Healthy", "Paused - CanaryPauseStep", ..."""
    return f"{phase} - {message}" if message else phase


@dataclass(frozen=True)
class RolloutState:
    """Where a Rollout stands, for the versions message: its phase and message (the plugin's
    words), the canary step (`step_index` of `step_count`, None without steps) and weight, the
    stable and canary pod hashes and versions (the canary's is the Rollout's template; the
    stable's is known from its ReplicaSet when given, else when it is the same template), and
    whether an update is in progress or aborted."""

    namespace: str
    name: str
    phase: str
    message: str
    step_index: int | None
    step_count: int
    weight: int
    stable_hash: str
    canary_hash: str
    stable_version: str | None
    canary_version: str
    revision: int | None
    replicas: int
    in_progress: bool
    aborted: bool
    paused: bool
    observed: bool

    @property
    def line(self) -> str:
        """The plugin's `status` line."""
        return status_line(self.phase, self.message)

    @property
    def summary(self) -> str:
        stable = self.stable_version or "unknown"
        if self.aborted:
            return (
                f"aborted: the update to {self.canary_version} was stopped; stable {stable} "
                "serves all traffic"
            )
        if self.in_progress:
            step = (
                f" at step {self.step_index}/{self.step_count}"
                if self.step_index is not None
                else ""
            )
            return (
                f"canary {self.canary_version}{step} ({self.weight}% of pods), stable {stable}"
                f" — {self.line}"
            )
        return f"{self.canary_version} — {self.line}"


def _weight(rollout: _Rollout, steps: list[Mapping[str, Any]], index: int | None) -> int:
    """GetCurrentSetWeight: 0 aborted, 100 past the last step, else the last setWeight at or
    before the current step."""
    if rollout.status.get("abort") is True:
        return 0
    if index is None or index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        weight = _optional_int32(step.get("setWeight"))
        if weight is not None:
            return min(max(weight, 0), 100)
    return 0


def rollout_state(rollout_json: Any, replicasets_json: Any = None) -> RolloutState:
    """The Rollout's state; with its ReplicaSets listed, the stable version by its ReplicaSet.
    Raises RolloutRefused only for what is not a Rollout at all."""
    rollout = _read_rollout(rollout_json, need_uid=replicasets_json is not None)
    status = rollout.status
    phase, message = _phase(rollout)
    steps = _steps(rollout)
    raw_index = _optional_int32(status.get("currentStepIndex"))
    index: int | None = None
    if steps:
        index = min(max(raw_index if raw_index is not None else 0, 0), len(steps))
    template = rollout.spec.get("template")
    canary_version = (
        _safe_version(template)
        if isinstance(template, Mapping) and _shape_problem(template) is None
        else "unknown"
    )
    canary = _text(status.get("currentPodHash"), 64)
    stable = _text(status.get("stableRS"), 64)
    stable_version: str | None = canary_version if stable and stable == canary else None
    if replicasets_json is not None and stable:
        found = rollout_history(rollout_json, replicasets_json).by_hash(stable)
        if found is not None:
            stable_version = found.version
    aborted = status.get("abort") is True
    replicas = _optional_int32(rollout.spec.get("replicas"))
    return RolloutState(
        namespace=rollout.namespace,
        name=rollout.name,
        phase=phase,
        message=message,
        step_index=index,
        step_count=len(steps),
        weight=_weight(rollout, steps, index),
        stable_hash=stable,
        canary_hash=canary,
        stable_version=stable_version,
        canary_version=canary_version,
        revision=_revision_of_rollout(rollout),
        replicas=replicas if replicas is not None and replicas >= 0 else 1,
        in_progress=bool(canary) and canary != stable and not aborted,
        aborted=aborted,
        paused=phase == PAUSED,
        observed=_generation_observed(rollout),
    )


# ---------------------------------------------------------------------- abort


@dataclass(frozen=True)
class RolloutAbortPlan:
    """What `kubectl argo rollouts abort NAME` will do: `body()` as `content_type` on the
    `subresource` (sent again without it only when that answers 404, as the plugin does)."""

    namespace: str
    name: str
    resource_version: str
    stable_hash: str
    canary_hash: str
    stable_version: str
    canary_version: str
    revision: int | None
    step_index: int | None
    step_count: int
    replicas: int
    content_type: str = MERGE_PATCH
    subresource: str = STATUS_SUBRESOURCE
    retry_without_subresource: bool = True

    @property
    def effect(self) -> str:
        return f"traffic back to stable {self.stable_version} at once"

    @property
    def summary(self) -> str:
        step = (
            f" at step {self.step_index}/{self.step_count}" if self.step_index is not None else ""
        )
        return (
            f"{self.namespace}/{self.name}: abort the update to {self.canary_version}{step}: "
            f"{self.effect} (the canary scaled to 0, the stable back to {self.replicas} pods); "
            f"spec.template still says {self.canary_version}, so the Rollout stays Degraded "
            "until it is deployed again or undone"
        )

    @property
    def message(self) -> str:
        """The plugin's own answer."""
        return f"rollout '{self.name}' aborted"

    def body(self, *, precondition: bool = False) -> JsonDict:
        """The plugin's merge patch `{"status":{"abort":true}}`; with `precondition`, the
        resourceVersion read as well (a Rollout changed since answers 409 Conflict)."""
        result: JsonDict = {"status": {"abort": True}}
        if precondition:
            result["metadata"] = {"resourceVersion": self.resource_version}
        return result


def plan_abort(rollout_json: Any, replicasets_json: Any = None) -> RolloutAbortPlan:
    """Decide what the plugin's `abort` would do; RolloutRefused with a sentence when there is
    nothing to abort: already aborted, no stable version to go back to, or no update in progress
    (the current pod hash is the stable one, as when the phase is Healthy). With its ReplicaSets
    listed, the stable version is named by its ReplicaSet."""
    rollout = _read_rollout(rollout_json, need_uid=replicasets_json is not None)
    state = rollout_state(rollout_json, replicasets_json)
    where = _where(rollout)
    if state.aborted:
        raise RolloutRefused(
            f"{where} is already aborted ({state.line}): its stable version serves all traffic; "
            "deploy again or undo to leave that state"
        )
    if not state.stable_hash:
        raise RolloutRefused(
            f"{where} has no stable version yet (status.stableRS is empty): aborting would leave "
            "nothing to go back to"
        )
    if not state.canary_hash or state.canary_hash == state.stable_hash:
        raise RolloutRefused(
            f"nothing to abort: {where} is not updating, it runs its stable version "
            f"{state.stable_version or state.canary_version} ({state.line})"
        )
    stable_version = state.stable_version or f"ReplicaSet {rollout.name}-{state.stable_hash}"
    return RolloutAbortPlan(
        namespace=rollout.namespace,
        name=rollout.name,
        resource_version=rollout.resource_version,
        stable_hash=state.stable_hash,
        canary_hash=state.canary_hash,
        stable_version=stable_version,
        canary_version=state.canary_version,
        revision=state.revision,
        step_index=state.step_index,
        step_count=state.step_count,
        replicas=state.replicas,
    )


# ---------------------------------------------------------------------- progress


def _progress(rollout: _Rollout, phase: Phase, message: str) -> Progress:
    status = rollout.status
    replicas = _optional_int32(rollout.spec.get("replicas"))
    return Progress(
        phase=phase,
        message=message,
        desired=replicas if replicas is not None and replicas >= 0 else 1,
        updated=_count(status.get("updatedReplicas")),
        ready=_count(status.get("readyReplicas")),
        available=_count(status.get("availableReplicas")),
        total=_count(status.get("replicas")),
        revision=_revision_of_rollout(rollout),
    )


def rollout_progress(rollout_json: Any) -> Progress:
    """Where the Rollout's update stands, as a `progress.Progress` with the plugin's `status`
    words: the spec not yet observed → WAITING_FOR_OBSERVATION; Healthy with the current pod
    hash the stable one → COMPLETE ("Healthy"); Degraded (an abort, a progress deadline, an
    invalid spec) → FAILED ("The rollout is in a degraded state with message: ..."); Paused or
    Progressing (or anything else) → UPDATING ("Paused - CanaryPauseStep")."""
    rollout = _read_rollout(rollout_json, need_uid=False)
    phase, message = _phase(rollout)
    if not _generation_observed(rollout):
        return _progress(rollout, Phase.WAITING_FOR_OBSERVATION, status_line(phase, message))
    current = _text(rollout.status.get("currentPodHash"), 64)
    stable = _text(rollout.status.get("stableRS"), 64)
    if phase == HEALTHY and current and current == stable:
        return _progress(rollout, Phase.COMPLETE, HEALTHY)
    if phase == DEGRADED:
        return _progress(rollout, Phase.FAILED, DEGRADED_SENTENCE.format(message))
    if phase == HEALTHY:
        return _progress(
            rollout, Phase.UPDATING, status_line(PROGRESSING, "waiting for all steps to complete")
        )
    return _progress(rollout, Phase.UPDATING, status_line(phase, message))


def abort_progress(rollout_json: Any) -> Progress:
    """Where an abort stands: COMPLETE once the canary is scaled to 0 (no updated replicas) and
    the stable runs every replica, all available; TERMINATING_OLD while canary pods remain;
    BECOMING_AVAILABLE while the stable is short of available pods. A Rollout no longer aborted
    is COMPLETE when it runs its stable version, Healthy (someone undid the update), else FAILED
    (the abort was cleared before it finished: the update goes on)."""
    rollout = _read_rollout(rollout_json, need_uid=False)
    status = rollout.status
    phase, message = _phase(rollout)
    line = status_line(phase, message)
    progress = _progress(rollout, Phase.COMPLETE, line)
    current = _text(status.get("currentPodHash"), 64)
    stable = _text(status.get("stableRS"), 64)
    if status.get("abort") is not True:
        if phase == HEALTHY and current and current == stable:
            return _progress(rollout, Phase.COMPLETE, line)
        return _progress(
            rollout,
            Phase.FAILED,
            f"the Rollout is no longer aborted ({line}): the abort was cleared before it finished",
        )
    desired, updated = progress.desired, progress.updated
    if updated > 0:
        return _progress(
            rollout,
            Phase.TERMINATING_OLD,
            f"{line}: waiting for the canary to scale down: {updated} canary pods left",
        )
    if progress.total != desired or progress.available < desired:
        return _progress(
            rollout,
            Phase.BECOMING_AVAILABLE,
            f"{line}: waiting for the stable ReplicaSet: {progress.available} of {desired} pods "
            "available",
        )
    return _progress(
        rollout,
        Phase.COMPLETE,
        f"{line}: traffic is back on stable ({progress.available}/{desired} pods available, "
        "the canary scaled to 0)",
    )
