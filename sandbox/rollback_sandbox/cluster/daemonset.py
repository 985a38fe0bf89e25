"""The DaemonSet controller, after pkg/controller/daemon (daemon_controller.go, update.go): one
`sync` per DaemonSet over a fixed set of simulated nodes, writing the ControllerRevisions, pods
and status fields the real controller writes, so `kubectl rollout history|undo|status ds/…`
work.

What it does, as the real one:

- History (`constructHistory`): the revision whose data (see `history.py`) equals the current
  template's patch is the current one; none is created as `<name>-<hash>` with the template's
  labels plus `controller-revision-hash: <hash>`, the DaemonSet's annotations (so
  `kubernetes.io/change-cause` shows in `rollout history`), owned by the DaemonSet; its number is
  the highest of the others + 1, and an older revision whose template comes back is renumbered
  so. Revisions beyond `revisionHistoryLimit` that no pod runs are deleted, oldest first.
- Pods, one per node the template's `nodeSelector` matches (every simulated node by default):
  `<name>-<random>`, labelled `controller-revision-hash` and `pod-template-generation` (the
  `deprecated.daemonset.template.generation` annotation the API server keeps on the DaemonSet),
  pinned to their node by node affinity, with the DaemonSet tolerations.
- RollingUpdate: with `maxSurge` 0, old pods are deleted while the unavailable count stays
  within `maxUnavailable` (rounded up from a percentage; an unavailable old pod always goes), the
  node then gets a new pod; with `maxSurge`, new pods start beside old ones, and each old pod goes
  once its replacement is available. OnDelete replaces nothing until a pod is deleted.
- Status: desired/current/updated numbers scheduled, numberReady, numberAvailable (after
  `minReadySeconds`), numberUnavailable, observedGeneration.
- A pod whose image tag contains `broken` never gets ready (replicaset.py's kubelet), so with
  maxUnavailable 1 the rollout stalls at that node while the other nodes keep their old pods.

Limits: the nodes are `replicaset.NODES` (three, no Node objects are served, none is tainted or
unschedulable); only `nodeSelector` chooses nodes (affinity is not evaluated); a revision's name
hashes the template with the sandbox's `rollout.template_hash` stand-in, since the real
`controller.ComputeHash` hashes Go's in-memory dump of the struct (the names have the real shape,
not the real characters); pods are deleted at once (no graceful termination); failed-pod backoff
and the creation slow-start are not simulated.
"""

from __future__ import annotations

import copy
from typing import Any

from rollback_sandbox.cluster import history as hist
from rollback_sandbox.cluster import resources, selectors
from rollback_sandbox.cluster import rollout as ro
from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.registry import TEMPLATE_GENERATION
from rollback_sandbox.cluster.replicaset import (
    NODES,
    claim_pods,
    node_labels,
)

JsonDict = dict[str, Any]
DS = resources.DAEMONSETS
PODS = resources.PODS
CR = resources.CONTROLLERREVISIONS
COMPONENT = "daemonset-controller"
GENERATION_LABEL = "pod-template-generation"
# AddOrUpdateDaemonPodTolerations: what every daemon pod tolerates
_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
_STATUS_ORDER = (
    "currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
    "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
    "collisionCount", "conditions",
)  # fmt: skip
_ALWAYS = ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady")


def _ready(pod: JsonDict) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _labels(obj: JsonDict) -> dict[str, str]:
    found: dict[str, str] = obj["metadata"].get("labels") or {}
    return found


def _template_generation(ds: JsonDict) -> str | None:
    found: str | None = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION)
    return found


def is_updated(ds: JsonDict, pod: JsonDict, hash_: str) -> bool:
    """util.IsPodUpdated: the pod has the current hash, or the current template generation."""
    generation = _template_generation(ds)
    labels = _labels(pod)
    return bool(
        (hash_ and labels.get(hist.REVISION_LABEL) == hash_)
        or (generation is not None and labels.get(GENERATION_LABEL) == generation)
    )


def _should_run(ds: JsonDict, node: str) -> bool:
    wanted = ((ds["spec"].get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    have = node_labels(node)
    return all(have.get(k) == v for k, v in wanted.items())


def _by_age(pods: list[JsonDict]) -> list[JsonDict]:
    """podByCreationTimestampAndPhase, roughly: oldest first, names break ties."""
    return sorted(pods, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))


class DaemonSetController(hist.RevisionedController):
    kind = DS

    # ------------------------------------------------------------------ one DaemonSet

    def sync(self, ds: JsonDict) -> None:
        sel = selectors.from_label_selector(ds["spec"].get("selector"))
        claim_pods(self._r, ds, lambda p: selectors.matches(sel, p["metadata"].get("labels")))
        cur, old = self._construct_history(ds)
        if cur is None:
            return  # a hash collision was counted: the next pass names the revision anew
        hash_ = _labels(cur).get(hist.REVISION_LABEL, "")
        changed = self._manage(ds, hash_)
        strategy = (ds["spec"].get("updateStrategy") or {}).get("type")
        if not changed and strategy == "RollingUpdate":
            # the real controller waits for its own creations and deletions to be observed
            self._rolling_update(ds, hash_)
        self._cleanup_history(ds, old)
        self._write_status(ds, hash_)

    def _pods(self, ds: JsonDict) -> list[JsonDict]:
        uid = ds["metadata"]["uid"]
        return [
            p
            for p in self._r.view(PODS, ds["metadata"]["namespace"])
            if (ro.controller_ref(p) or {}).get("uid") == uid
        ]

    def _by_node(self, ds: JsonDict) -> dict[str, list[JsonDict]]:
        out: dict[str, list[JsonDict]] = {}
        for pod in self._pods(ds):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            out.setdefault(node, []).append(copy.deepcopy(pod))
        return out

    # ------------------------------------------------------------------ history

    def _construct_history(self, ds: JsonDict) -> tuple[JsonDict | None, list[JsonDict]]:
        data = hist.restore_patch(ds["spec"]["template"])
        current: list[JsonDict] = []
        old: list[JsonDict] = []
        for revision in self._history.owned(ds):
            if hist.REVISION_LABEL not in _labels(revision):
                revision = copy.deepcopy(revision)
                revision["metadata"].setdefault("labels", {})[hist.REVISION_LABEL] = revision[
                    "metadata"
                ]["name"]
                meta = revision["metadata"]
                revision = self._r.update(CR, meta["namespace"], meta["name"], revision)
            (current if hist.same_data(revision.get("data"), data) else old).append(revision)
        next_number = hist.max_revision(old) + 1
        if not current:
            return self._snapshot(ds, data, next_number), old
        keep = self._dedup(ds, current)
        return self._history.renumber(keep, max(next_number, hist.number(keep))), old

    def _snapshot(self, ds: JsonDict, data: JsonDict, number: int) -> JsonDict | None:
        status = ds.get("status") or {}
        hash_ = ro.template_hash(ds["spec"]["template"], status.get("collisionCount"))
        name = f"{ds['metadata']['name']}-{hash_}"
        ns = ds["metadata"]["namespace"]
        labels = {**(ds["spec"]["template"].get("metadata", {}).get("labels") or {})}
        labels[hist.REVISION_LABEL] = hash_
        body = self._history.new(ds, labels, data, number)
        body["metadata"]["name"] = name
        if ds["metadata"].get("annotations"):
            body["metadata"]["annotations"] = dict(ds["metadata"]["annotations"])
        try:
            return self._r.create(CR, ns, body)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
        existing = self._r.get(CR, ns, name)
        if hist.same_data(existing.get("data"), data):
            return existing
        # a name taken by another template: count the collision, hash differently next time
        new = copy.deepcopy(ds)
        new["status"] = {**status, "collisionCount": int(status.get("collisionCount") or 0) + 1}
        self._r.update(DS, ns, ds["metadata"]["name"], new, subresource="status")
        return None

    def _dedup(self, ds: JsonDict, current: list[JsonDict]) -> JsonDict:
        """dedupCurHistories: keep the highest-numbered equal revision, relabel its pods."""
        keep = current[0]
        for revision in current:
            if hist.number(revision) >= hist.number(keep):
                keep = revision
        keep_hash = _labels(keep).get(hist.REVISION_LABEL, "")
        for revision in current:
            if revision is keep:
                continue
            for pod in self._pods(ds):
                if _labels(pod).get(hist.REVISION_LABEL) != keep_hash:
                    relabelled = copy.deepcopy(pod)
                    relabelled["metadata"].setdefault("labels", {})[hist.REVISION_LABEL] = keep_hash
                    meta = pod["metadata"]
                    self._r.update(PODS, meta["namespace"], meta["name"], relabelled)
            self._history.delete(revision)
        return keep

    def _cleanup_history(self, ds: JsonDict, old: list[JsonDict]) -> None:
        limit = ds["spec"].get("revisionHistoryLimit", 10)
        if not isinstance(limit, int):
            return
        to_kill = len(old) - limit
        if to_kill <= 0:
            return
        live = {_labels(p).get(hist.REVISION_LABEL) for p in self._pods(ds)}
        live.discard(None)
        for revision in hist.by_revision(old):
            if to_kill <= 0:
                break
            if _labels(revision).get(hist.REVISION_LABEL) in live:
                continue
            self._history.delete(revision)
            to_kill -= 1

    # ------------------------------------------------------------------ pods

    def _new_pod(self, ds: JsonDict, node: str, hash_: str) -> JsonDict:
        template = copy.deepcopy(ds["spec"]["template"])
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        generation = _template_generation(ds)
        if generation is not None:
            labels[GENERATION_LABEL] = generation
        labels[hist.REVISION_LABEL] = hash_
        meta: JsonDict = {
            "generateName": f"{ds['metadata']['name']}-",
            "labels": labels,
            "ownerReferences": [ro.owner_reference(ds)],
        }
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        spec: JsonDict = template.get("spec") or {}
        tolerations = list(spec.get("tolerations") or [])
        for key, effect in _TOLERATIONS:
            if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": effect})
        spec["tolerations"] = tolerations
        affinity = spec.setdefault("affinity", {})
        affinity["nodeAffinity"] = {
            **(affinity.get("nodeAffinity") or {}),
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            },
        }
        spec["nodeName"] = node  # what the scheduler then binds it to
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}

    def _create(self, ds: JsonDict, node: str, hash_: str) -> None:
        pod = self._kubelet.admit(ds["metadata"]["namespace"], self._new_pod(ds, node, hash_))
        self._events.event(
            ds, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}", COMPONENT
        )

    def _delete(self, ds: JsonDict, pod: JsonDict) -> None:
        try:
            self._r.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        except ApiError:
            return
        self._events.event(
            ds, "Normal", "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", COMPONENT
        )

    def _surge_and_unavailable(self, ds: JsonDict, desired: int) -> tuple[int, int]:
        rolling = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        try:
            surge = ro.scaled_value(rolling.get("maxSurge"), desired, round_up=True)
            unavailable = ro.scaled_value(rolling.get("maxUnavailable"), desired, round_up=True)
        except ValueError:
            surge, unavailable = 0, 1
        if desired > 0 and surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def _manage(self, ds: JsonDict, hash_: str) -> bool:
        """manage / podsShouldBeOnNode: a pod on each node that should run one, no more."""
        by_node = self._by_node(ds)
        surge, _ = self._surge_and_unavailable(ds, len(NODES))
        to_create: list[str] = []
        to_delete: list[JsonDict] = []
        for node in NODES:
            pods = by_node.pop(node, [])
            if not _should_run(ds, node):
                to_delete.extend(pods)
                continue
            running = []
            for pod in pods:
                if (pod.get("status") or {}).get("phase") == "Failed":
                    to_delete.append(pod)
                else:
                    running.append(pod)
            if not running:
                to_create.append(node)
                continue
            if len(running) == 1:
                continue
            running = _by_age(running)
            if not surge:
                to_delete.extend(running[1:])
                continue
            oldest_new: JsonDict | None = None
            oldest_old: JsonDict | None = None
            for pod in running:
                if _labels(pod).get(hist.REVISION_LABEL) == hash_:
                    if oldest_new is None:
                        oldest_new = pod
                        continue
                elif oldest_old is None:
                    oldest_old = pod
                    continue
                to_delete.append(pod)
            min_ready = int(ds["spec"].get("minReadySeconds", 0))
            if (
                oldest_new is not None
                and oldest_old is not None
                and (not _ready(oldest_old) or self._kubelet.available(oldest_new, min_ready))
            ):
                to_delete.append(oldest_old)
        for pods in by_node.values():  # on no node we know: misscheduled
            to_delete.extend(pods)
        for node in to_create:
            self._create(ds, node, hash_)
        for pod in to_delete:
            self._delete(ds, pod)
        return bool(to_create or to_delete)

    def _rolling_update(self, ds: JsonDict, hash_: str) -> None:
        by_node = {n: p for n, p in self._by_node(ds).items() if n in NODES and _should_run(ds, n)}
        desired = sum(1 for n in NODES if _should_run(ds, n))
        surge, max_unavailable = self._surge_and_unavailable(ds, desired)
        min_ready = int(ds["spec"].get("minReadySeconds", 0))
        to_delete: list[JsonDict] = []
        to_create: list[str] = []
        if surge == 0:
            unavailable = 0
            replace: list[JsonDict] = []
            candidates: list[JsonDict] = []
            for node in sorted(by_node):
                found = self._split(ds, by_node[node], hash_)
                if found is None:
                    unavailable += 1
                    continue
                new, old = found
                if (old is None) == (new is None):
                    unavailable += 1
                elif new is not None:
                    if not self._kubelet.available(new, min_ready):
                        unavailable += 1
                elif old is not None:
                    if not self._kubelet.available(old, min_ready):
                        replace.append(old)
                    elif unavailable < max_unavailable:
                        candidates.append(old)
            room = min(max(max_unavailable - unavailable, 0), len(candidates))
            to_delete = replace + candidates[:room]
        else:
            surged = 0
            for node in sorted(by_node):
                found = self._split(ds, by_node[node], hash_)
                if found is None:
                    continue
                new, old = found
                if old is None:
                    continue
                if new is None:
                    if not self._kubelet.available(old, min_ready):
                        to_create.append(node)
                    elif surged < surge:
                        surged += 1
                        to_create.append(node)
                elif not self._kubelet.available(new, min_ready):
                    surged += 1
                else:
                    to_delete.append(old)
        for node in to_create:
            self._create(ds, node, hash_)
        for pod in to_delete:
            self._delete(ds, pod)

    @staticmethod
    def _split(
        ds: JsonDict, pods: list[JsonDict], hash_: str
    ) -> tuple[JsonDict | None, JsonDict | None] | None:
        """findUpdatedPodsOnNode: (new pod, old pod), None when a node has two of either."""
        new: JsonDict | None = None
        old: JsonDict | None = None
        for pod in pods:
            if is_updated(ds, pod, hash_):
                if new is not None:
                    return None
                new = pod
            else:
                if old is not None:
                    return None
                old = pod
        return new, old

    # ------------------------------------------------------------------ status

    def _write_status(self, ds: JsonDict, hash_: str) -> None:
        by_node = self._by_node(ds)
        min_ready = int(ds["spec"].get("minReadySeconds", 0))
        counts = dict.fromkeys(
            ("desired", "current", "misscheduled", "ready", "available", "updated"), 0
        )
        for node in NODES:
            pods = by_node.pop(node, [])
            if not _should_run(ds, node):
                counts["misscheduled"] += 1 if pods else 0
                continue
            counts["desired"] += 1
            if not pods:
                continue
            counts["current"] += 1
            pod = _by_age(pods)[0]
            if _ready(pod):
                counts["ready"] += 1
                if self._kubelet.available(pod, min_ready):
                    counts["available"] += 1
            if is_updated(ds, pod, hash_):
                counts["updated"] += 1
        counts["misscheduled"] += len(by_node)
        old = ds.get("status") or {}
        fields: JsonDict = {
            "currentNumberScheduled": counts["current"],
            "numberMisscheduled": counts["misscheduled"],
            "desiredNumberScheduled": counts["desired"],
            "numberReady": counts["ready"],
            "observedGeneration": ds["metadata"].get("generation", 0),
            "updatedNumberScheduled": counts["updated"],
            "numberAvailable": counts["available"],
            "numberUnavailable": counts["desired"] - counts["available"],
        }
        if old.get("collisionCount") is not None:
            fields["collisionCount"] = old["collisionCount"]
        if old.get("conditions"):
            fields["conditions"] = copy.deepcopy(old["conditions"])
        status = {
            k: fields[k]
            for k in _STATUS_ORDER
            if k in fields and (k in _ALWAYS or k == "collisionCount" or fields[k])
        }
        if status == old:
            return
        new = copy.deepcopy(ds)
        new["status"] = status
        meta = ds["metadata"]
        self._r.update(DS, meta["namespace"], meta["name"], new, subresource="status")
