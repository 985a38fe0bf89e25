"""The StatefulSet controller, after pkg/controller/statefulset (stateful_set_control.go,
stateful_set_utils.go): one `sync` per StatefulSet, writing the ControllerRevisions, pods and
status fields the real controller writes, so `kubectl rollout history|undo|status sts/…` work.

What it does, as the real one:

- History: the revision of the current template is `<name>-<hash>` (see `history.py`), labelled
  with the template's labels and `controller.kubernetes.io/hash`, owned by the StatefulSet
  (controller=true). A new template gets max+1; a template that returns (a rollback) reuses its
  old revision renumbered to max+1. `status.currentRevision`/`updateRevision` name them;
  revisions beyond `revisionHistoryLimit` that no pod, nor the current or update revision, uses
  are deleted, oldest first.
- Pods `<name>-<ordinal>` carry `controller-revision-hash` (the revision's name),
  `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, hostname and
  subdomain (`serviceName`). OrderedReady (the default) creates them in ordinal order, each once
  its predecessors are Running and Ready (and available after `minReadySeconds`), and removes
  surplus ones from the highest ordinal down; Parallel does both at once.
- RollingUpdate deletes the highest-ordinal pod not at the update revision, one at a time, down
  to `rollingUpdate.partition`, waiting for each replacement to be Running and Ready; pods below
  the partition are (re)created at the current revision. OnDelete replaces nothing: a pod takes
  the new template when someone deletes it. With every pod updated and ready, `currentRevision`
  becomes the update revision (never under OnDelete, as in a real cluster).
- A pod whose image tag contains `broken` crash-loops and never gets ready (the make-believe
  kubelet's convention, replicaset.py), so the rollout stalls there, as a real one does; and as
  in a real cluster, rolling the template back does not replace that pod (OrderedReady waits for
  it to get ready): it has to be deleted for the rollback to go on.
- Orphaned pods `<name>-<n>` and ControllerRevisions the selector matches are adopted (a
  StatefulSet deleted with `--cascade=orphan` and created again takes them back); an owned pod
  relabelled out of the selector is released and replaced.

Limits: no PersistentVolumeClaims are created (pods name their claims' volumes only); pods are
deleted at once (no graceful termination, so never seen "Terminating"); the alpha
`maxUnavailable` of a rolling update is ignored (one pod at a time); no conditions are written;
pods are spread over the simulated nodes by ordinal, not scheduled.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from rollback_sandbox.cluster import history as hist
from rollback_sandbox.cluster import resources, selectors
from rollback_sandbox.cluster import rollout as ro
from rollback_sandbox.cluster.replicaset import NODES, claim_pods

JsonDict = dict[str, Any]
STS = resources.STATEFULSETS
PODS = resources.PODS
COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")
# StatefulSetStatus: these are marshalled even when zero
_ALWAYS = ("replicas", "availableReplicas")
_STATUS_ORDER = (
    "observedGeneration", "replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
    "currentRevision", "updateRevision", "collisionCount", "conditions", "availableReplicas",
)  # fmt: skip


def ordinal(pod: JsonDict, set_name: str) -> int:
    """getParentNameAndOrdinal: -1 for a pod that is not `<set>-<n>`."""
    found = _ORDINAL.match(pod["metadata"]["name"])
    if found is None or found.group(1) != set_name:
        return -1
    return int(found.group(2))


def pod_revision(pod: JsonDict) -> str:
    labels: dict[str, str] = pod["metadata"].get("labels") or {}
    return labels.get(hist.REVISION_LABEL, "")


def _phase(pod: JsonDict) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def running_and_ready(pod: JsonDict) -> bool:
    if _phase(pod) != "Running":
        return False
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _start(sts: JsonDict) -> int:
    start = (sts["spec"].get("ordinals") or {}).get("start", 0)
    return start if isinstance(start, int) else 0


def _strategy(sts: JsonDict) -> JsonDict:
    found: JsonDict = sts["spec"].get("updateStrategy") or {}
    return found


def _partition(sts: JsonDict) -> int | None:
    rolling = _strategy(sts).get("rollingUpdate")
    if not isinstance(rolling, dict):
        return None
    value = rolling.get("partition", 0)
    return value if isinstance(value, int) else 0


class StatefulSetController(hist.RevisionedController):
    kind = STS

    # ------------------------------------------------------------------ one StatefulSet

    def sync(self, sts: JsonDict) -> None:
        name = sts["metadata"]["name"]
        sel = selectors.from_label_selector(sts["spec"].get("selector"))
        claim_pods(
            self._r,
            sts,
            lambda p: ordinal(p, name) >= 0 and selectors.matches(sel, p["metadata"].get("labels")),
        )
        revisions = self._history.owned(sts)
        current, update, collisions = self._revisions(sts, revisions)
        self._update_pods(sts, current, update)
        pods = self._pods(sts)
        self._write_status(sts, current, update, collisions, pods)
        self._truncate_history(sts, pods, revisions, current, update)

    def _pods(self, sts: JsonDict) -> list[JsonDict]:
        uid = sts["metadata"]["uid"]
        return [
            p
            for p in self._r.view(PODS, sts["metadata"]["namespace"])
            if (ro.controller_ref(p) or {}).get("uid") == uid
        ]

    def _revisions(
        self, sts: JsonDict, revisions: list[JsonDict]
    ) -> tuple[JsonDict, JsonDict, int]:
        """getStatefulSetRevisions: the current and update revisions, creating or renumbering."""
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        data = hist.restore_patch(sts["spec"]["template"])
        next_number = hist.max_revision(revisions) + 1
        equal = [r for r in revisions if hist.same_data(r.get("data"), data)]
        if equal and revisions and equal[-1] is revisions[-1]:
            update = revisions[-1]  # the newest revision already is this template
        elif equal:
            update = self._history.renumber(equal[-1], next_number)
        else:
            labels = dict(sts["spec"]["template"].get("metadata", {}).get("labels") or {})
            body = self._history.new(sts, labels, data, next_number)
            update, collisions = self._history.create(sts, body, collisions)
        wanted = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == wanted), update)
        return current, update, collisions

    # ------------------------------------------------------------------ pods

    def _new_pod(self, sts: JsonDict, revision: JsonDict, index: int) -> JsonDict:
        """newVersionedStatefulSetPod for one ordinal, from the template `revision` holds."""
        template = hist.template_of(revision)
        tmeta = template.get("metadata") or {}
        set_name = sts["metadata"]["name"]
        name = f"{set_name}-{index}"
        labels = {
            **(tmeta.get("labels") or {}),
            hist.REVISION_LABEL: revision["metadata"]["name"],
            POD_NAME_LABEL: name,
            POD_INDEX_LABEL: str(index),
        }
        meta: JsonDict = {
            "name": name,
            "generateName": f"{set_name}-",
            "labels": labels,
            "ownerReferences": [ro.owner_reference(sts)],
        }
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        if tmeta.get("finalizers"):
            meta["finalizers"] = list(tmeta["finalizers"])
        spec: JsonDict = copy.deepcopy(template.get("spec") or {})
        spec["hostname"] = name
        if sts["spec"].get("serviceName"):
            spec["subdomain"] = sts["spec"]["serviceName"]
        claims = [
            c["metadata"]["name"]
            for c in sts["spec"].get("volumeClaimTemplates") or []
            if isinstance(c, dict) and (c.get("metadata") or {}).get("name")
        ]
        if claims:
            others = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
            spec["volumes"] = [
                {
                    "name": claim,
                    "persistentVolumeClaim": {"claimName": f"{claim}-{set_name}-{index}"},
                }
                for claim in claims
            ] + others
        spec["nodeName"] = NODES[index % len(NODES)]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}

    def _create(self, sts: JsonDict, revision: JsonDict, index: int) -> JsonDict:
        pod = self._kubelet.admit(sts["metadata"]["namespace"], self._new_pod(sts, revision, index))
        self._events.event(
            sts,
            "Normal",
            "SuccessfulCreate",
            f"create Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} "
            "successful",
            COMPONENT,
        )
        return pod

    def _delete(self, sts: JsonDict, pod: JsonDict) -> None:
        self._r.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        self._events.event(
            sts,
            "Normal",
            "SuccessfulDelete",
            f"delete Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} "
            "successful",
            COMPONENT,
        )

    def _healthy(self, pod: JsonDict, min_ready: int) -> bool:
        return running_and_ready(pod) and self._kubelet.available(pod, min_ready)

    def _update_pods(self, sts: JsonDict, current: JsonDict, update: JsonDict) -> None:
        """updateStatefulSet: at most one step per pass under OrderedReady."""
        name = sts["metadata"]["name"]
        count = ro.replicas(sts)
        start = _start(sts)
        min_ready = int(sts["spec"].get("minReadySeconds", 0))
        monotonic = sts["spec"].get("podManagementPolicy", "OrderedReady") != "Parallel"
        partition = _partition(sts)
        rolling = _strategy(sts).get("type") == "RollingUpdate"
        replicas: list[JsonDict | None] = [None] * count
        condemned: list[JsonDict] = []
        for member in self._pods(sts):
            index = ordinal(member, name)
            if start <= index < start + count:
                replicas[index - start] = copy.deepcopy(member)
            elif index >= 0:
                condemned.append(copy.deepcopy(member))
        condemned.sort(key=lambda p: ordinal(p, name), reverse=True)

        def revision_for(index: int) -> JsonDict:
            # newVersionedStatefulSetPod: below the partition, pods stay at the current revision
            below = (partition is not None and index < start + partition) or (
                rolling
                and partition is None
                and index < start + int((sts.get("status") or {}).get("currentReplicas", 0))
            )
            return current if below else update

        unhealthy = [p for p in replicas if p is not None and not self._healthy(p, min_ready)]
        unhealthy += [p for p in reversed(condemned) if not self._healthy(p, min_ready)]
        first_unhealthy = unhealthy[0]["metadata"]["name"] if unhealthy else None

        for i in range(count):
            slot = replicas[i]
            if slot is not None and _phase(slot) in ("Failed", "Succeeded"):
                self._delete(sts, slot)
                if monotonic:
                    return
                slot = None
            if slot is None:
                replicas[i] = self._create(sts, revision_for(start + i), start + i)
                if monotonic:
                    return
                continue
            if monotonic and not self._healthy(slot, min_ready):
                return
        for pod in condemned:
            if (
                monotonic
                and not self._healthy(pod, min_ready)
                and pod["metadata"]["name"] != first_unhealthy
            ):
                return
            self._delete(sts, pod)
            if monotonic:
                return
        if not rolling:
            return  # OnDelete: pods take the new template only when deleted
        for target in range(count - 1, (partition or 0) - 1, -1):
            replica = replicas[target]
            if replica is None:
                return
            if pod_revision(replica) != update["metadata"]["name"]:
                self._delete(sts, replica)
                return
            if not self._healthy(replica, min_ready):
                return  # wait for the replacement before the next one

    # ------------------------------------------------------------------ status and history

    def _write_status(
        self,
        sts: JsonDict,
        current: JsonDict,
        update: JsonDict,
        collisions: int,
        pods: list[JsonDict],
    ) -> None:
        min_ready = int(sts["spec"].get("minReadySeconds", 0))
        name = sts["metadata"]["name"]
        members = [p for p in pods if ordinal(p, name) >= 0]
        current_name, update_name = current["metadata"]["name"], update["metadata"]["name"]
        ready = [p for p in members if running_and_ready(p)]
        fields: JsonDict = {
            "observedGeneration": sts["metadata"].get("generation", 0),
            "replicas": len(members),
            "readyReplicas": len(ready),
            "currentReplicas": sum(1 for p in members if pod_revision(p) == current_name),
            "updatedReplicas": sum(1 for p in members if pod_revision(p) == update_name),
            "currentRevision": current_name,
            "updateRevision": update_name,
            "collisionCount": collisions,
            "availableReplicas": sum(1 for p in ready if self._kubelet.available(p, min_ready)),
        }
        # completeRollingUpdate
        if (
            _strategy(sts).get("type") == "RollingUpdate"
            and fields["updatedReplicas"] == fields["replicas"]
            and fields["readyReplicas"] == fields["replicas"]
        ):
            fields["currentReplicas"] = fields["updatedReplicas"]
            fields["currentRevision"] = update_name
        old = sts.get("status") or {}
        if old.get("conditions"):
            fields["conditions"] = copy.deepcopy(old["conditions"])
        status = {
            k: fields[k]
            for k in _STATUS_ORDER
            if k in fields and (k in _ALWAYS or k == "collisionCount" or fields[k])
        }
        if status == old:
            return
        new = copy.deepcopy(sts)
        new["status"] = status
        meta = sts["metadata"]
        self._r.update(STS, meta["namespace"], meta["name"], new, subresource="status")

    def _truncate_history(
        self,
        sts: JsonDict,
        pods: list[JsonDict],
        revisions: list[JsonDict],
        current: JsonDict,
        update: JsonDict,
    ) -> None:
        live = {current["metadata"]["name"], update["metadata"]["name"]}
        live.update(pod_revision(p) for p in pods)
        old = [r for r in revisions if r["metadata"]["name"] not in live]
        limit = sts["spec"].get("revisionHistoryLimit", 10)
        if not isinstance(limit, int) or len(old) <= limit:
            return
        for revision in old[: len(old) - limit]:
            self._history.delete(revision)
