"""A minimal Argo Rollouts controller, after argoproj/argo-rollouts (rollout/canary.go, sync.go,
pause.go, replicaset.go; utils/replicaset/canary.go, utils/rollout/rolloututil.go,
utils/conditions, utils/annotations): one `sync` per `argoproj.io/v1alpha1` Rollout, writing the
ReplicaSets, annotations and status fields the real controller writes, so `kubectl get ro`, the
`kubectl argo rollouts` plugin's `undo` (a JSON patch of `spec.template`) and `abort` (a merge
patch `{"status":{"abort":true}}` on the status subresource) behave as against a real cluster.

What it does, as the real one:

- ReplicaSets: one per pod template, owned by the Rollout (controller=true), named
  `<rollout>-<hash>`, labelled (and selected) with `rollouts-pod-template-hash`; the hash is
  FNV-1a over the Rollout's template (the template as the Rollout holds it, not defaulted) and
  the collision count, through `rand.SafeEncodeString`. The ReplicaSet of the current template
  is found by that hash, else by template equality with the Rollout's template defaulted (which
  is how a template put back by `undo`, copied from a defaulted ReplicaSet, finds its old
  ReplicaSet again). Pods come from the ReplicaSet controller (replicaset.py).
- Revisions: `rollout.argoproj.io/revision` on each ReplicaSet and on the Rollout, numbered like
  a Deployment's: a new template gets the highest revision + 1; an old template that comes back
  (an undo) reuses its ReplicaSet renumbered to the highest + 1, the numbers it had before kept
  in `rollout.argoproj.io/revision-history`. The Rollout's annotations (but the revision ones
  and `kubectl.kubernetes.io/last-applied-configuration`) are copied to the ReplicaSet, and
  `rollout.argoproj.io/desired-replicas` is set on it.
- The canary strategy (basic canary: no traffic router), steps `setWeight` and `pause`: a
  weight is realised as replica counts, the canary `ceil(weight% × replicas)` and the stable
  the rest; a `setWeight` step is done when both ReplicaSets are at their counts with the
  canary's pods available, a `pause: {duration: D}` D simulated seconds after the controller
  paused (status.pauseConditions `CanaryPauseStep`, controllerPause), a `pause: {}` when
  someone clears the pause conditions (the plugin's `promote`). `status.currentStepIndex`
  advances one step at a time; after the last one (weight 100) the canary becomes the stable
  (`status.stableRS`) once all its pods are available. `status.promoteFull` (`promote --full`)
  skips the remaining steps. The first template of a new Rollout goes straight to stable
  ("Initial deploy").
- Scaling: scale-ups happen at once; the stable is scaled down only as far as the pods
  available keep `replicas - maxUnavailable` (canary.maxUnavailable, 25% by default) running, as
  the real basic canary does; a canary being scaled down (an abort) goes at once, as do
  ReplicaSets that are neither the canary nor the stable.
- Abort (`status.abort: true`): the weight drops to 0 at once, so the canary ReplicaSet is
  scaled to 0 and the stable back to all replicas; `currentStepIndex` goes back to 0, the pause
  conditions are dropped, `abortedAt` is set, the Progressing condition becomes False
  `RolloutAborted` "Rollout aborted update to revision N", and the phase Degraded with message
  "RolloutAborted: Rollout aborted update to revision N". Clearing `status.abort` (the plugin's
  `retry`) starts the steps again.
- A template change (a new deploy, or an undo) clears the abort and the pause conditions and
  starts the steps from the first one; a template equal to the stable ReplicaSet's goes straight
  to stable (all steps skipped: the controller's "Rollback to stable ReplicaSets").
- Status: `phase` (Progressing, Paused, Healthy, Degraded) and `message` as the controller's
  CalculateRolloutPhase works them out, `stableRS`, `currentPodHash`, `currentStepHash`,
  `currentStepIndex`, `observedGeneration` (a string, as the CRD has it), `replicas`,
  `updatedReplicas`, `readyReplicas`, `availableReplicas`, `HPAReplicas`, `selector`, `abort`,
  `abortedAt`, `pauseConditions`, `controllerPause`, `collisionCount`, and the conditions
  Progressing, Available, Completed, Healthy and Paused with the controller's reasons and
  messages. Events: ScalingReplicaSet, NewReplicaSetCreated, RolloutUpdated,
  RolloutStepCompleted, RolloutPaused, RolloutCompleted, RolloutAborted, SkipSteps.
- A pod whose image tag contains `broken` never gets ready (replicaset.py), so the canary stalls
  at its `setWeight` step (phase Progressing) until `progressDeadlineSeconds` (600 by default,
  simulated) pass without progress: then Progressing False `ProgressDeadlineExceeded` and phase
  Degraded, as a real controller does (it does not abort on its own: progressDeadlineAbort is
  not simulated).
- Old ReplicaSets beyond `revisionHistoryLimit` (10 by default), scaled to 0 and neither the
  canary nor the stable, are deleted, oldest first.
- A Rollout whose spec the controller cannot work with (no selector, a selector that does not
  match the template's labels, no containers, a blueGreen strategy or a workloadRef, which are
  not simulated) gets the InvalidSpec condition and phase Degraded "InvalidSpec: ...".

Limits: no traffic routers (Istio, SMI, ALB, Nginx...) and no Services are touched (stable and
canary Services, ping-pong); no AnalysisRuns or Experiments (analysis, experiment, setCanaryScale,
setHeaderRoute, setMirrorRoute and plugin steps are passed over as done); no blueGreen strategy;
no workloadRef; no anti-affinity injection, ephemeral canary/stable metadata, scaleDownDelay,
rollbackWindow, restartAt, dynamicStableScale or HPA; maxSurge is not enforced (scale-ups are
immediate) and the counts of a weight are the plain ceiling, not the controller's
approximation with surge; the hash is FNV-1a over sorted JSON, not over Go's struct encoding, so
the hashes differ from a real controller's; orphaned ReplicaSets are not adopted; the status is
written whole (not as the controller's two-way merge patch); a status sent on create is kept
until the first sync replaces it. The real apiserver refuses a strategic merge patch of a custom
resource (415); the sandbox applies it as it would to any object.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from rollback_sandbox.cluster import resources, selectors
from rollback_sandbox.cluster import rollout as dep
from rollback_sandbox.cluster.clock import Clock, parse_rfc3339
from rollback_sandbox.cluster.defaults import default_pod_template
from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.events import Recorder
from rollback_sandbox.cluster.registry import Registry

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
RO = resources.ROLLOUTS
RS = resources.REPLICASETS
COMPONENT = "rollouts-controller"

HASH_LABEL = "rollouts-pod-template-hash"
REVISION = "rollout.argoproj.io/revision"
REVISION_HISTORY = "rollout.argoproj.io/revision-history"
DESIRED_REPLICAS = "rollout.argoproj.io/desired-replicas"
# not copied from a Rollout to its ReplicaSets (utils/annotations annotationsToSkip)
SKIPPED_ANNOTATIONS = frozenset(
    {dep.LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
     "notified.notifications.argoproj.io"}
)  # fmt: skip

PAUSE_STEP = "CanaryPauseStep"
DEFAULT_HISTORY_LIMIT = 10
DEFAULT_PROGRESS_DEADLINE = 600
# condition types
PROGRESSING = "Progressing"
AVAILABLE = "Available"
COMPLETED = "Completed"
HEALTHY = "Healthy"
PAUSED = "Paused"
INVALID_SPEC = "InvalidSpec"
# reasons and messages (utils/conditions)
NEW_RS_CREATED = "NewReplicaSetCreated"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
ABORTED = "RolloutAborted"
RETRY = "RolloutRetry"
PAUSED_REASON = "RolloutPaused"
RESUMED = "RolloutResumed"
COMPLETED_REASON = "RolloutCompleted"
HEALTHY_REASON = "RolloutHealthy"
AVAILABLE_REASON = "AvailableReason"
ABORTED_MESSAGE = "Rollout aborted update to revision {}"

_STATUS_ORDER = (
    "abort", "pauseConditions", "controllerPause", "abortedAt", "currentPodHash",
    "currentStepHash", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
    "currentStepIndex", "collisionCount", "observedGeneration", "conditions", "canary",
    "blueGreen", "HPAReplicas", "selector", "stableRS", "promoteFull", "phase", "message",
)  # fmt: skip
# written even when empty or zero: Go's omitempty keeps structs, and these are pointers
_ALWAYS = frozenset({"canary", "blueGreen", "currentStepIndex", "collisionCount"})


# ---------------------------------------------------------------------- pure helpers


def fnv1a_32(data: bytes) -> int:
    """hash/fnv.New32a, as ComputePodTemplateHash uses it."""
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def pod_template_hash(template: JsonDict, collision_count: int | None) -> str:
    """The `rollouts-pod-template-hash` of a template: FNV-1a over it (without that label), then
    the collision count as 8 little-endian bytes when there is one, safe-encoded."""
    clean = copy.deepcopy(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    data = _canonical(clean)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return dep.safe_encode(str(fnv1a_32(data)))


def step_hash(steps: list[JsonDict]) -> str:
    """ComputeStepHash: FNV-1a over the canary steps."""
    return dep.safe_encode(str(fnv1a_32(_canonical(steps))))


_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(pause: Any) -> int | None:
    """RolloutPause.DurationSeconds: None for an indefinite pause (no duration); whole seconds for
    a number, a string of digits or a Go duration ("30s", "1m30s"); -1 for anything else (which
    the real controller treats as already over)."""
    if not isinstance(pause, dict) or pause.get("duration") is None:
        return None
    value = pause["duration"]
    if isinstance(value, bool):
        return -1
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return -1
    text = value.strip()
    if re.fullmatch(r"[+-]?[0-9]+", text):
        return int(text)
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0
    parts = _GO_DURATION.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        return -1
    return int(sign * sum(float(n) * _UNITS[u] for n, u in parts))


def _labels(obj: JsonDict) -> dict[str, str]:
    found: dict[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return found


def _ann(obj: JsonDict) -> dict[str, str]:
    found: dict[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
    return found


def pod_hash(rs: JsonDict | None) -> str:
    return _labels(rs).get(HASH_LABEL, "") if rs is not None else ""


def revision_of(obj: JsonDict) -> int:
    text = _ann(obj).get(REVISION, "")
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def max_revision(rss: list[JsonDict]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _equal_ignore_hash(a: JsonDict, b: JsonDict) -> bool:
    def normalized(template: JsonDict) -> JsonDict:
        t = copy.deepcopy(template)
        meta = t.get("metadata") or {}
        labels = meta.get("labels")
        if isinstance(labels, dict):
            labels.pop(HASH_LABEL, None)
            if not labels:
                meta.pop("labels")
        return t

    return normalized(a) == normalized(b)


def canary_steps(rollout: JsonDict) -> list[JsonDict]:
    canary = ((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}
    steps = canary.get("steps") or []
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []


def step_text(step: JsonDict) -> str:
    """CanaryStepString, as the RolloutStepCompleted event names a step."""
    if "setWeight" in step:
        return f"setWeight: {step['setWeight']}"
    if "pause" in step:
        pause = step["pause"]
        duration = pause.get("duration") if isinstance(pause, dict) else None
        return "pause" if duration is None else f"pause: {duration}"
    return next(iter(step), "invalid")


def invalid_spec(rollout: JsonDict) -> str | None:
    """Why the controller cannot work with this Rollout's spec, or None."""
    spec = rollout.get("spec")
    if not isinstance(spec, dict):
        return "Rollout has missing field 'spec'"
    if spec.get("workloadRef") is not None:
        return "spec.workloadRef is not simulated by the sandbox's Rollout controller"
    strategy = spec.get("strategy")
    if not isinstance(strategy, dict) or not isinstance(strategy.get("canary"), dict):
        if isinstance(strategy, dict) and strategy.get("blueGreen") is not None:
            return "the blueGreen strategy is not simulated by the sandbox's Rollout controller"
        return "Rollout has missing field '.spec.strategy.canary'"
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return "This rollout is selecting all pods. A non-empty selector is required."
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return "Rollout has missing field '.spec.template'"
    containers = template["spec"].get("containers")
    if not isinstance(containers, list) or not containers:
        return "Rollout has missing field '.spec.template.spec.containers'"
    for c in containers:
        if not (
            isinstance(c, dict)
            and isinstance(c.get("name"), str)
            and isinstance(c.get("image"), str)
        ):
            return "every container of spec.template needs a name and an image"
    try:
        sel = selectors.from_label_selector(selector)
    except (ApiError, ValueError, TypeError, AttributeError, KeyError):
        return "spec.selector is not a valid label selector"
    labels = (template.get("metadata") or {}).get("labels")
    if not isinstance(labels, dict) or not selectors.matches(sel, labels):
        return (
            "spec.template.metadata.labels: Invalid value: "
            f"{json.dumps(labels, sort_keys=True)}: `selector` does not match template `labels`"
        )
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        return "spec.replicas must be a whole number of 0 or more"
    for step in canary_steps(rollout):
        weight = step.get("setWeight")
        if "setWeight" in step and (
            not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100
        ):
            return "a setWeight step needs a weight from 0 to 100"
    return None


def calculate_phase(rollout: JsonDict, status: JsonDict) -> tuple[str, str]:
    """CalculateRolloutPhase for a basic canary: (phase, message)."""
    spec = rollout.get("spec") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == INVALID_SPEC:
            return "Degraded", f"{INVALID_SPEC}: {cond.get('message', '')}"
        if cond.get("reason") in (ABORTED, TIMED_OUT):
            return "Degraded", f"{cond['reason']}: {cond.get('message', '')}"
    if spec.get("paused") is True:
        return "Paused", "manually paused"
    for pause in status.get("pauseConditions") or []:
        return "Paused", str(pause.get("reason", ""))
    replicas = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    if updated < replicas:
        return "Progressing", "more replicas need to be updated"
    if _int(status.get("availableReplicas")) < updated:
        return "Progressing", "updated replicas are still becoming available"
    if _int(status.get("replicas")) > updated:
        return "Progressing", "old replicas are pending termination"
    stable = status.get("stableRS") or ""
    if not stable or stable != status.get("currentPodHash"):
        return "Progressing", "waiting for all steps to complete"
    return "Healthy", ""


# ---------------------------------------------------------------------- the controller


@dataclass
class _Context:
    """One Rollout being synced: its ReplicaSets and what the status write has to say."""

    ro: JsonDict
    replicas: int
    steps: list[JsonDict]
    new_rs: JsonDict
    stable_rs: JsonDict | None
    others: list[JsonDict]
    all_rss: list[JsonDict]
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def status(self) -> JsonDict:
        found: JsonDict = self.ro.get("status") or {}
        return found

    @property
    def uid(self) -> str:
        return str(self.ro["metadata"]["uid"])

    @property
    def is_canary_with_stable(self) -> bool:
        return self.stable_rs is not None and self.stable_rs is not self.new_rs

    def step_index(self) -> int:
        index = _int(self.status.get("currentStepIndex"))
        return min(max(index, 0), len(self.steps))

    def current_step(self) -> JsonDict | None:
        index = self.step_index()
        return self.steps[index] if index < len(self.steps) else None


class ArgoRolloutController:
    """Reconciles every Rollout each pass, as the sandbox's other controllers do."""

    def __init__(self, registry: Registry, clock: Clock, recorder: Recorder) -> None:
        self._r = registry
        self._clock = clock
        self._events = recorder
        # (uid, pause startTime) -> simulated time the controller paused: timestamps have whole
        # seconds, pauses need simulated precision
        self._paused_at: dict[tuple[str, str], float] = {}
        # uid -> (Progressing lastUpdateTime, simulated time) of the last progress written
        self._progress_at: dict[str, tuple[str, float]] = {}

    # ------------------------------------------------------------------ entry points

    def sync_all(self) -> None:
        live: set[str] = set()
        for ro in self._r.list(RO, None):
            live.add(str(ro["metadata"].get("uid")))
            try:
                self.sync(ro)
            except ApiError:
                continue  # a conflict or a vanished object: the next pass sees fresh state
            except Exception:  # a malformed Rollout must not stop the other controllers
                log.exception(
                    "Rollout %s/%s", ro["metadata"].get("namespace"), ro["metadata"]["name"]
                )
        self._paused_at = {k: v for k, v in self._paused_at.items() if k[0] in live}
        self._progress_at = {k: v for k, v in self._progress_at.items() if k in live}

    def next_timer(self) -> float | None:
        """Simulated seconds until a pause ends or a progress deadline passes."""
        soonest: float | None = None
        now = self._clock.sim()
        for ro in self._r.view(RO, None):
            try:
                due = self._due(ro, now)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            for left in due:
                if left > 1e-9:
                    soonest = left if soonest is None else min(soonest, left)
        return soonest

    def _due(self, ro: JsonDict, now: float) -> list[float]:
        spec, status = ro.get("spec") or {}, ro.get("status") or {}
        if spec.get("paused") is True or status.get("abort") is True:
            return []
        out: list[float] = []
        steps = canary_steps(ro)
        index = _int(status.get("currentStepIndex"))
        step = steps[index] if 0 <= index < len(steps) else None
        seconds = duration_seconds(step.get("pause")) if step and "pause" in step else None
        for cond in status.get("pauseConditions") or []:
            if cond.get("reason") == PAUSE_STEP and seconds is not None:
                out.append(seconds - self._pause_elapsed(ro, cond))
        progressing = dep.condition(status, PROGRESSING)
        indefinite = step is not None and "pause" in step and seconds is None
        if (
            progressing is not None
            and progressing.get("reason")
            not in (NEW_RS_AVAILABLE, TIMED_OUT, PAUSED_REASON, ABORTED)
            and not indefinite
            and not status.get("pauseConditions")
        ):
            deadline = _int(spec.get("progressDeadlineSeconds"), DEFAULT_PROGRESS_DEADLINE)
            out.append(deadline - self._progress_elapsed(ro, progressing) + 0.01)
        return out

    # ------------------------------------------------------------------ one Rollout

    def sync(self, ro: JsonDict) -> None:
        problem = invalid_spec(ro)
        if problem is not None:
            self._write_invalid(ro, problem)
            return
        rss = self._owned(ro)
        new_rs = self._find_new_rs(ro, rss)
        if new_rs is None:
            new_rs = self._create_rs(ro, rss)
            if new_rs is None:
                return
            rss.append(new_rs)
        else:
            self._sync_revision(ro, new_rs, rss)
        ro = self._set_rollout_revision(ro, _ann(new_rs).get(REVISION, ""))
        stable_hash = (ro.get("status") or {}).get("stableRS") or ""
        stable_rs = next((rs for rs in rss if stable_hash and pod_hash(rs) == stable_hash), None)
        ctx = _Context(
            ro=ro,
            replicas=_int(ro["spec"].get("replicas"), 1),
            steps=canary_steps(ro),
            new_rs=new_rs,
            stable_rs=stable_rs,
            others=[rs for rs in rss if rs is not new_rs and rs is not stable_rs],
            all_rss=rss,
        )
        status = ctx.status
        if status.get("currentPodHash") != pod_hash(new_rs) or status.get(
            "currentStepHash"
        ) != step_hash(ctx.steps):
            self._persist(ctx, reset=True)
            return
        scaled = self._reconcile_replicasets(ctx)
        if not scaled:
            self._cleanup(ctx)
        self._persist(ctx, add_pause=not scaled and self._pause_needed(ctx))

    # ------------------------------------------------------------------ ReplicaSets

    def _owned(self, ro: JsonDict) -> list[JsonDict]:
        uid = ro["metadata"]["uid"]
        return self._r.list_where(
            RS,
            ro["metadata"]["namespace"],
            lambda rs: (dep.controller_ref(rs) or {}).get("uid") == uid,
        )

    @staticmethod
    def _find_new_rs(ro: JsonDict, rss: list[JsonDict]) -> JsonDict | None:
        """FindNewReplicaSet: by the template's hash, else by equality with the template
        defaulted as the API server defaults a ReplicaSet's."""
        template = ro["spec"]["template"]
        collisions = (ro.get("status") or {}).get("collisionCount")
        want = pod_template_hash(template, collisions if isinstance(collisions, int) else None)
        ordered = dep.by_creation(rss)
        for rs in ordered:
            if pod_hash(rs) == want:
                return rs
        desired = copy.deepcopy(template)
        default_pod_template(desired)
        for rs in ordered:
            if _equal_ignore_hash(rs["spec"]["template"], desired):
                return rs
        return None

    def _create_rs(self, ro: JsonDict, rss: list[JsonDict]) -> JsonDict | None:
        meta = ro["metadata"]
        status = ro.get("status") or {}
        collisions = status.get("collisionCount")
        template = copy.deepcopy(ro["spec"]["template"])
        rs_hash = pod_template_hash(template, collisions if isinstance(collisions, int) else None)
        labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: rs_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(ro["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = rs_hash
        revision = max_revision(rss) + 1
        annotations = {k: v for k, v in _ann(ro).items() if k not in SKIPPED_ANNOTATIONS}
        annotations[REVISION] = str(revision)
        annotations[DESIRED_REPLICAS] = str(_int(ro["spec"].get("replicas"), 1))
        spec: JsonDict = {"replicas": 0, "selector": selector, "template": template}
        if _int(ro["spec"].get("minReadySeconds")):
            spec["minReadySeconds"] = ro["spec"]["minReadySeconds"]
        body: JsonDict = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{rs_hash}",
                "namespace": meta["namespace"],
                "labels": dict(labels),
                "annotations": annotations,
                "ownerReferences": [dep.owner_reference(ro)],
            },
            "spec": spec,
        }
        try:
            created = self._r.create(RS, meta["namespace"], body)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
            found = self._r.get(RS, meta["namespace"], body["metadata"]["name"])
            desired = copy.deepcopy(ro["spec"]["template"])
            default_pod_template(desired)
            if dep.is_controlled_by(found, meta["uid"]) and _equal_ignore_hash(
                found["spec"]["template"], desired
            ):
                return found
            # a hash collision: count it, so the next pass hashes differently
            new = copy.deepcopy(ro)
            new.setdefault("status", {})["collisionCount"] = _int(collisions) + 1
            self._r.update(RO, meta["namespace"], meta["name"], new, subresource="status")
            return None
        self._event(
            ro,
            "Normal",
            NEW_RS_CREATED,
            f"Created ReplicaSet {created['metadata']['name']} (revision {revision})",
        )
        new = copy.deepcopy(ro)
        dep.set_condition(
            new.setdefault("status", {}),
            dep.new_condition(
                PROGRESSING,
                "True",
                NEW_RS_CREATED,
                f'Created new replica set "{created["metadata"]["name"]}"',
                self._clock.now(),
            ),
        )
        self._mark_progress(new)
        stored = self._r.update(RO, meta["namespace"], meta["name"], new, subresource="status")
        ro.clear()
        ro.update(stored)
        return created

    def _sync_revision(self, ro: JsonDict, rs: JsonDict, rss: list[JsonDict]) -> None:
        """SetNewReplicaSetAnnotations for the ReplicaSet of the current template: the Rollout's
        annotations, and the revision moved up to the highest + 1 (remembering the old one)."""
        new = copy.deepcopy(rs)
        annotations = new["metadata"].setdefault("annotations", {})
        for key, value in _ann(ro).items():
            if key not in SKIPPED_ANNOTATIONS:
                annotations[key] = value
        want = max_revision([r for r in rss if r is not rs]) + 1
        old_text = annotations.get(REVISION, "")
        if old_text and not old_text.isdigit():
            return
        old = int(old_text) if old_text else 0
        if old < want:
            annotations[REVISION] = str(want)
            if old_text:
                history = annotations.get(REVISION_HISTORY, "")
                annotations[REVISION_HISTORY] = f"{history},{old_text}" if history else old_text
        min_ready = _int(ro["spec"].get("minReadySeconds"))
        if _int(new["spec"].get("minReadySeconds")) != min_ready:
            if min_ready:
                new["spec"]["minReadySeconds"] = min_ready
            else:
                new["spec"].pop("minReadySeconds", None)
        if new != rs:
            meta = rs["metadata"]
            stored = self._r.update(RS, meta["namespace"], meta["name"], new)
            rs.clear()
            rs.update(stored)

    def _set_rollout_revision(self, ro: JsonDict, revision: str) -> JsonDict:
        if not revision or _ann(ro).get(REVISION) == revision:
            return ro
        new = copy.deepcopy(ro)
        new["metadata"].setdefault("annotations", {})[REVISION] = revision
        meta = ro["metadata"]
        stored = self._r.update(RO, meta["namespace"], meta["name"], new)
        self._event(stored, "Normal", "RolloutUpdated", f"Rollout updated to revision {revision}")
        return stored

    def _scale(self, ctx: _Context, rs: JsonDict, count: int) -> bool:
        before = dep.replicas(rs)
        desired = str(ctx.replicas)
        if before == count and _ann(rs).get(DESIRED_REPLICAS) == desired:
            return False
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = count
        new["metadata"].setdefault("annotations", {})[DESIRED_REPLICAS] = desired
        meta = rs["metadata"]
        stored = self._r.update(RS, meta["namespace"], meta["name"], new)
        rs.clear()
        rs.update(stored)
        if before == count:
            return False
        way = "up" if count > before else "down"
        ctx.events.append(
            (
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {way} ReplicaSet {meta['name']} (revision {revision_of(rs)}) "
                f"from {before} to {count}",
            )
        )
        return True

    def weight(self, ctx: _Context) -> int:
        """GetCurrentSetWeight: 0 when aborted, 100 past the last step, else the last setWeight
        at or before the current step."""
        if ctx.status.get("abort") is True:
            return 0
        if ctx.status.get("promoteFull") is True or ctx.current_step() is None:
            return 100
        for step in reversed(ctx.steps[: ctx.step_index() + 1]):
            if "setWeight" in step:
                return _int(step["setWeight"])
        return 0

    def desired_counts(self, ctx: _Context) -> tuple[int, int]:
        """(canary, stable) replicas for the current weight."""
        if not ctx.is_canary_with_stable:
            return ctx.replicas, 0
        canary = min(ctx.replicas, math.ceil(ctx.replicas * self.weight(ctx) / 100))
        return canary, ctx.replicas - canary

    def _max_unavailable(self, ctx: _Context) -> int:
        canary = ctx.ro["spec"]["strategy"]["canary"]
        try:
            unavailable = dep.scaled_value(
                canary.get("maxUnavailable", "25%"), ctx.replicas, round_up=False
            )
            surge = dep.scaled_value(canary.get("maxSurge", "25%"), ctx.replicas, round_up=True)
        except ValueError:
            unavailable, surge = ctx.replicas // 4, 1
        if unavailable == 0 and surge == 0:
            unavailable = 1
        return min(max(unavailable, 0), ctx.replicas)

    def _reconcile_replicasets(self, ctx: _Context) -> bool:
        canary, stable = self.desired_counts(ctx)
        scaled = False
        for rs in ctx.others:
            scaled = self._scale(ctx, rs, 0) or scaled
        scaled = self._scale(ctx, ctx.new_rs, canary) or scaled
        if ctx.stable_rs is not None and ctx.is_canary_with_stable:
            current = dep.replicas(ctx.stable_rs)
            if stable < current:
                # keep replicas - maxUnavailable pods available while the stable goes down
                available = sum(dep.status_int(rs, "availableReplicas") for rs in ctx.all_rss)
                floor = ctx.replicas - self._max_unavailable(ctx)
                unavailable = max(current - dep.status_int(ctx.stable_rs, "availableReplicas"), 0)
                stable = max(stable, current - unavailable - max(available - floor, 0))
            scaled = self._scale(ctx, ctx.stable_rs, stable) or scaled
        return scaled

    def _at_desired_counts(self, ctx: _Context) -> bool:
        canary, stable = self.desired_counts(ctx)
        new = ctx.new_rs
        if not (
            dep.replicas(new) == canary
            and dep.status_int(new, "replicas") == canary
            and dep.status_int(new, "availableReplicas") >= canary
        ):
            return False
        if (
            ctx.stable_rs is not None
            and ctx.is_canary_with_stable
            and not (
                dep.replicas(ctx.stable_rs) == stable
                and dep.status_int(ctx.stable_rs, "replicas") == stable
            )
        ):
            return False
        return all(dep.status_int(rs, "availableReplicas") == 0 for rs in ctx.others)

    def _cleanup(self, ctx: _Context) -> None:
        """reconcileRevisionHistoryLimit: the oldest idle ReplicaSets beyond the limit go."""
        limit = ctx.ro["spec"].get("revisionHistoryLimit", DEFAULT_HISTORY_LIMIT)
        if not isinstance(limit, int) or isinstance(limit, bool):
            limit = DEFAULT_HISTORY_LIMIT
        excess = len(ctx.others) - max(limit, 0)
        # oldest first by creation; timestamps have whole seconds and simulated time runs fast,
        # so ties go by revision (the order they were created in, unless one was reused)
        oldest_first = sorted(
            ctx.others,
            key=lambda rs: (
                rs["metadata"]["creationTimestamp"],
                revision_of(rs),
                rs["metadata"]["name"],
            ),
        )
        for rs in oldest_first[: max(excess, 0)]:
            status = rs.get("status") or {}
            if (
                status.get("replicas", 0) != 0
                or dep.replicas(rs) != 0
                or rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0)
            ):
                continue
            try:
                self._r.delete(RS, rs["metadata"]["namespace"], rs["metadata"]["name"])
            except ApiError:
                continue

    # ------------------------------------------------------------------ steps and pauses

    def _pause_needed(self, ctx: _Context) -> bool:
        """reconcileCanaryPause: at a pause step without its pause condition, pause."""
        status = ctx.status
        step = ctx.current_step()
        if (
            ctx.ro["spec"].get("paused") is True
            or status.get("promoteFull") is True
            or status.get("abort") is True
            or step is None
            or "pause" not in step
        ):
            return False
        has_condition = any(
            c.get("reason") == PAUSE_STEP for c in status.get("pauseConditions") or []
        )
        return not has_condition and status.get("controllerPause") is not True

    def _pause_elapsed(self, ro: JsonDict, cond: JsonDict) -> float:
        start = str(cond.get("startTime", ""))
        mark = self._paused_at.get((str(ro["metadata"].get("uid")), start))
        if mark is not None:
            return self._clock.sim() - mark
        try:
            since = parse_rfc3339(start)
        except ValueError:
            return math.inf
        return (self._clock.wall() - since).total_seconds() * self._clock.speed

    def _step_completed(
        self, ctx: _Context, pauses: list[JsonDict], controller_pause: bool
    ) -> bool:
        """completedCurrentCanaryStep."""
        if ctx.ro["spec"].get("paused") is True:
            return False
        step = ctx.current_step()
        if step is None:
            return False
        if "pause" in step:
            cond = next((c for c in pauses if c.get("reason") == PAUSE_STEP), None)
            if controller_pause and cond is None:
                return True  # someone cleared the pause conditions: the plugin's promote
            seconds = duration_seconds(step["pause"])
            return (
                seconds is not None
                and cond is not None
                and self._pause_elapsed(ctx.ro, cond) >= seconds - 1e-9
            )
        if "setWeight" in step:
            return self._at_desired_counts(ctx)
        return True  # analysis, experiments and the rest are not simulated: passed over

    def _full_promote_reason(self, ctx: _Context, aborted: bool, index: int | None) -> str:
        """shouldFullPromote for a canary."""
        if ctx.stable_rs is None:
            return "Initial deploy"
        if aborted:
            return ""
        if dep.status_int(ctx.new_rs, "availableReplicas") < ctx.replicas:
            return ""
        if ctx.status.get("promoteFull") is True:
            return "Full promotion requested"
        if not ctx.steps or index == len(ctx.steps):
            return f"Completed all {len(ctx.steps)} canary steps"
        return ""

    # ------------------------------------------------------------------ status

    def _persist(self, ctx: _Context, *, reset: bool = False, add_pause: bool = False) -> None:
        """syncRolloutStatusCanary and persistRolloutStatus."""
        ro, old = ctx.ro, ctx.status
        now = self._clock.now()
        current = pod_hash(ctx.new_rs)
        stable = old.get("stableRS") if isinstance(old.get("stableRS"), str) else ""
        pauses = [
            copy.deepcopy(c)
            for c in old.get("pauseConditions") or []
            if isinstance(c, dict) and isinstance(c.get("reason"), str)
        ]
        controller_pause = old.get("controllerPause") is True
        aborted = old.get("abort") is True
        promote_full = old.get("promoteFull") is True and current != stable
        count = len(ctx.steps)
        index: int | None = ctx.step_index() if ctx.steps else None
        if reset:
            pauses, aborted, promote_full = [], False, False
            index = 0 if ctx.steps else None
            if ctx.steps and stable and stable == current:
                index = count
                ctx.events.append(("Normal", "SkipSteps", "Rollback to stable ReplicaSets"))
        else:
            if promote_full:
                pauses, aborted = [], False
                index = count if ctx.steps else None
            reason = self._full_promote_reason(ctx, aborted, index)
            if reason:
                pauses, aborted, promote_full = [], False, False
                index = count if ctx.steps else None
                if stable != current:
                    stable = current
                    ctx.events.append(
                        (
                            "Normal",
                            COMPLETED_REASON,
                            f"Rollout completed update to revision {revision_of(ro)} "
                            f"({current}): {reason}",
                        )
                    )
            elif aborted:
                if ctx.steps:
                    index = count if stable == current else 0
            elif add_pause:
                pauses.append({"reason": PAUSE_STEP, "startTime": now})
                controller_pause = True
                self._paused_at[(ctx.uid, now)] = self._clock.sim()
                ctx.events.append(("Normal", PAUSED_REASON, f"Rollout is paused ({PAUSE_STEP})"))
            elif (
                not promote_full
                and index is not None
                and index < count
                and self._step_completed(ctx, pauses, controller_pause)
            ):
                step = ctx.steps[index]
                index += 1
                pauses = [c for c in pauses if c.get("reason") != PAUSE_STEP]
                ctx.events.append(
                    (
                        "Normal",
                        "RolloutStepCompleted",
                        f"Rollout step {index}/{count} completed ({step_text(step)})",
                    )
                )
        new: JsonDict = {}
        if aborted:
            new["abort"] = True
            new["abortedAt"] = old.get("abortedAt") or now
        elif pauses:
            new["pauseConditions"] = pauses
            new["controllerPause"] = controller_pause
        all_rss = ctx.all_rss
        new.update(
            currentPodHash=current,
            currentStepHash=step_hash(ctx.steps),
            replicas=sum(dep.status_int(rs, "replicas") for rs in all_rss),
            updatedReplicas=dep.status_int(ctx.new_rs, "replicas"),
            readyReplicas=sum(dep.status_int(rs, "readyReplicas") for rs in all_rss),
            availableReplicas=sum(dep.status_int(rs, "availableReplicas") for rs in all_rss),
            observedGeneration=str(ro["metadata"].get("generation", 0)),
            canary={},
            blueGreen={},
            selector=selectors.selector_string(ro["spec"].get("selector")) or "",
            stableRS=stable,
            promoteFull=promote_full,
        )
        new["HPAReplicas"] = new["replicas"]
        if index is not None:
            new["currentStepIndex"] = index
        if isinstance(old.get("collisionCount"), int):
            new["collisionCount"] = old["collisionCount"]
        new["conditions"] = self._conditions(ctx, new, aborted, pauses)
        new["phase"], new["message"] = calculate_phase(ro, new)
        status = {
            k: new[k]
            for k in _STATUS_ORDER
            if k in new and (k in _ALWAYS or new[k] not in (None, "", 0, False, []))
        }
        self._write_status(ctx, status)

    def _conditions(
        self, ctx: _Context, new: JsonDict, aborted: bool, pauses: list[JsonDict]
    ) -> list[JsonDict]:
        """calculateRolloutConditions and checkPausedConditions."""
        ro, old = ctx.ro, ctx.status
        now = self._clock.now()
        status: JsonDict = {
            "conditions": [
                copy.deepcopy(c)
                for c in old.get("conditions") or []
                if isinstance(c, dict) and c.get("type") not in (INVALID_SPEC, None)
            ]
        }
        paused = bool(pauses) or ro["spec"].get("paused") is True
        name = ctx.new_rs["metadata"]["name"]
        healthy = not paused and self._healthy(ctx, new)
        became_unhealthy = False
        if healthy:
            dep.set_condition(
                status,
                dep.new_condition(HEALTHY, "True", HEALTHY_REASON, "Rollout is healthy", now),
            )
        elif dep.condition(status, HEALTHY) is not None:
            was = dep.condition(status, HEALTHY)
            became_unhealthy = was is not None and was.get("status") == "True"
            dep.set_condition(
                status,
                dep.new_condition(HEALTHY, "False", HEALTHY_REASON, "Rollout is not healthy", now),
            )
        progressing = dep.condition(status, PROGRESSING)
        if aborted:
            message = ABORTED_MESSAGE.format(revision_of(ro))
            if progressing is None or progressing.get("reason") != ABORTED:
                ctx.events.append(("Warning", ABORTED, message))
            dep.set_condition(
                status, dep.new_condition(PROGRESSING, "False", ABORTED, message, now)
            )
        else:
            if progressing is not None and progressing.get("reason") == ABORTED:
                self._progress(
                    ctx,
                    status,
                    dep.new_condition(
                        PROGRESSING, "Unknown", RETRY, "Retrying Rollout after abort", now
                    ),
                )
            if healthy:
                cond = dep.new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE,
                    f'ReplicaSet "{name}" has successfully progressed.',
                    now,
                )
                before = dep.condition(status, PROGRESSING)
                dep.set_condition(status, cond)
                if before != dep.condition(status, PROGRESSING):
                    self._mark_progress(ro, cond)
            elif self._made_progress(old, new) or became_unhealthy:
                cond = dep.new_condition(
                    PROGRESSING, "True", RS_UPDATED, f'ReplicaSet "{name}" is progressing.', now
                )
                current = dep.condition(status, PROGRESSING)
                if current is not None and current.get("status") == "True":
                    cond["lastTransitionTime"] = current["lastTransitionTime"]
                dep.remove_condition(status, PROGRESSING)
                self._progress(ctx, status, cond)
            elif not self._indefinite_step(ctx) and self._timed_out(ctx, status):
                dep.set_condition(
                    status,
                    dep.new_condition(
                        PROGRESSING,
                        "False",
                        TIMED_OUT,
                        f'ReplicaSet "{name}" has timed out progressing.',
                        now,
                    ),
                )
            completed = bool(new.get("stableRS")) and new["stableRS"] == new["currentPodHash"]
            progressing = dep.condition(status, PROGRESSING)
            paused_reason = progressing is not None and progressing.get("reason") == PAUSED_REASON
            if paused and not paused_reason and not completed:
                self._progress(
                    ctx,
                    status,
                    dep.new_condition(
                        PROGRESSING, "Unknown", PAUSED_REASON, "Rollout is paused", now
                    ),
                )
            elif not paused and paused_reason:
                self._progress(
                    ctx,
                    status,
                    dep.new_condition(PROGRESSING, "Unknown", RESUMED, "Rollout is resumed", now),
                )
            pause_cond = dep.condition(status, PAUSED)
            if paused != (pause_cond is not None and pause_cond.get("status") == "True"):
                dep.set_condition(
                    status,
                    dep.new_condition(
                        PAUSED,
                        "True" if paused else "False",
                        PAUSED_REASON if paused else RESUMED,
                        "Rollout is paused" if paused else "Rollout is resumed",
                        now,
                    ),
                )
        if new["availableReplicas"] >= ctx.replicas:
            available = dep.new_condition(
                AVAILABLE, "True", AVAILABLE_REASON, "Rollout has minimum availability", now
            )
        else:
            available = dep.new_condition(
                AVAILABLE,
                "False",
                AVAILABLE_REASON,
                "Rollout does not have minimum availability",
                now,
            )
        dep.set_condition(status, available)
        done = bool(new.get("stableRS")) and new["stableRS"] == new["currentPodHash"]
        dep.set_condition(
            status,
            dep.new_condition(
                COMPLETED, "True" if done else "False", COMPLETED_REASON, COMPLETED_REASON, now
            ),
        )
        found: list[JsonDict] = status.get("conditions") or []
        return found

    def _progress(self, ctx: _Context, status: JsonDict, cond: JsonDict) -> None:
        """Write a Progressing condition that counts as progress (the deadline starts again)."""
        dep.remove_condition(status, PROGRESSING)
        status.setdefault("conditions", []).append(cond)
        self._mark_progress(ctx.ro, cond)

    def _mark_progress(self, ro: JsonDict, cond: JsonDict | None = None) -> None:
        cond = cond or dep.condition(ro.get("status") or {}, PROGRESSING)
        if cond is not None:
            self._progress_at[str(ro["metadata"]["uid"])] = (
                str(cond.get("lastUpdateTime")),
                self._clock.sim(),
            )

    def _progress_elapsed(self, ro: JsonDict, cond: JsonDict) -> float:
        mark = self._progress_at.get(str(ro["metadata"].get("uid")))
        if mark is not None and mark[0] == str(cond.get("lastUpdateTime")):
            return self._clock.sim() - mark[1]
        try:
            since = parse_rfc3339(str(cond.get("lastUpdateTime")))
        except ValueError:
            return 0.0
        return (self._clock.wall() - since).total_seconds() * self._clock.speed

    def _timed_out(self, ctx: _Context, status: JsonDict) -> bool:
        cond = dep.condition(status, PROGRESSING)
        if cond is None or cond.get("reason") in (ABORTED, PAUSED_REASON, NEW_RS_AVAILABLE):
            return False
        if cond.get("reason") == TIMED_OUT:
            return True
        deadline = _int(ctx.ro["spec"].get("progressDeadlineSeconds"), DEFAULT_PROGRESS_DEADLINE)
        return self._progress_elapsed(ctx.ro, cond) > deadline

    @staticmethod
    def _indefinite_step(ctx: _Context) -> bool:
        step = ctx.current_step()
        return step is not None and "pause" in step and duration_seconds(step["pause"]) is None

    @staticmethod
    def _made_progress(old: JsonDict, new: JsonDict) -> bool:
        """conditions.RolloutProgressing for a canary."""
        old_old = _int(old.get("replicas")) - _int(old.get("updatedReplicas"))
        new_old = new["replicas"] - new["updatedReplicas"]
        step_moved = (
            isinstance(old.get("currentStepIndex"), int)
            and "currentStepIndex" in new
            and old["currentStepIndex"] != new["currentStepIndex"]
        )
        return bool(
            new["updatedReplicas"] != _int(old.get("updatedReplicas"))
            or new_old < old_old
            or new["readyReplicas"] > _int(old.get("readyReplicas"))
            or new["availableReplicas"] > _int(old.get("availableReplicas"))
            or new["stableRS"] != (old.get("stableRS") or "")
            or step_moved
            or new["currentStepHash"] != old.get("currentStepHash")
        )

    @staticmethod
    def _healthy(ctx: _Context, new: JsonDict) -> bool:
        """conditions.RolloutHealthy for a canary (the generation as the old status saw it)."""
        replicas = ctx.replicas
        generation = str(ctx.ro["metadata"].get("generation", 0))
        all_steps = not ctx.steps or new.get("currentStepIndex") == len(ctx.steps)
        return bool(
            new["updatedReplicas"] == replicas
            and new["availableReplicas"] == replicas
            and ctx.status.get("observedGeneration") == generation
            and all_steps
            and new["stableRS"]
            and new["stableRS"] == new["currentPodHash"]
            and new["replicas"] == replicas
        )

    def _write_status(self, ctx: _Context, status: JsonDict) -> None:
        ro = ctx.ro
        for kind, reason, message in ctx.events:
            self._event(ro, kind, reason, message)
        ctx.events.clear()
        if status == (ro.get("status") or {}):
            return
        new = copy.deepcopy(ro)
        new["status"] = status
        meta = ro["metadata"]
        stored = self._r.update(RO, meta["namespace"], meta["name"], new, subresource="status")
        ro.clear()
        ro.update(stored)

    def _write_invalid(self, ro: JsonDict, problem: str) -> None:
        now = self._clock.now()
        old = ro.get("status") if isinstance(ro.get("status"), dict) else {}
        status: JsonDict = copy.deepcopy(old) if isinstance(old, dict) else {}
        if not isinstance(status.get("conditions"), list):
            status["conditions"] = []
        status["conditions"] = [
            c
            for c in status["conditions"]
            if isinstance(c, dict) and isinstance(c.get("type"), str)
        ]
        dep.set_condition(
            status, dep.new_condition(INVALID_SPEC, "True", INVALID_SPEC, problem, now)
        )
        status["observedGeneration"] = str(ro["metadata"].get("generation", 0))
        status["phase"], status["message"] = "Degraded", f"{INVALID_SPEC}: {problem}"
        if status == ro.get("status"):
            return
        new = copy.deepcopy(ro)
        new["status"] = status
        meta = ro["metadata"]
        self._r.update(RO, meta["namespace"], meta["name"], new, subresource="status")

    def _event(self, ro: JsonDict, kind: str, reason: str, message: str) -> None:
        self._events.event(ro, kind, reason, message, COMPONENT)
