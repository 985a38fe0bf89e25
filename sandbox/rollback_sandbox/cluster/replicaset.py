"""The ReplicaSet controller and a make-believe kubelet: pods are created for each ReplicaSet,
become Ready a few simulated seconds later (or crash-loop when an image tag says `broken`), and
ReplicaSet status counts them the way the real controller does."""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Callable
from typing import Any

from rollback_sandbox.cluster import resources, selectors
from rollback_sandbox.cluster import rollout as ro
from rollback_sandbox.cluster.clock import Clock
from rollback_sandbox.cluster.defaults import image_tag
from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.registry import Registry

JsonDict = dict[str, Any]
RS = resources.REPLICASETS
PODS = resources.PODS
NODE = "sandbox-node"
# The simulated nodes: no Node objects are served; DaemonSets run one pod on each, StatefulSets
# spread their pods over them by ordinal, ReplicaSets keep everything on the first.
NODES = (NODE, "sandbox-node-2", "sandbox-node-3")
_HOST_IPS = {node: f"172.18.0.{i}" for i, node in enumerate(NODES, start=2)}


def node_labels(node: str) -> dict[str, str]:
    """The labels a kubelet registers its Node with, what a nodeSelector is matched against."""
    return {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node,
        "kubernetes.io/os": "linux",
    }


def host_ip(pod: JsonDict) -> str:
    return _HOST_IPS.get((pod.get("spec") or {}).get("nodeName") or NODE, _HOST_IPS[NODE])


def claim_pods(registry: Registry, owner: JsonDict, fits: Callable[[JsonDict], bool]) -> None:
    """PodControllerRefManager.ClaimPods for the StatefulSet and DaemonSet controllers: adopt
    the orphans that `fits` (the owner's selector, and whatever else the controller asks), and
    release the owned pods that no longer do (a pod relabelled out of the set is replaced)."""
    uid = owner["metadata"]["uid"]

    def relevant(pod: JsonDict) -> bool:
        ref = ro.controller_ref(pod)
        return (ref is None and fits(pod)) or (
            ref is not None and ref.get("uid") == uid and not fits(pod)
        )

    for pod in registry.list_where(PODS, owner["metadata"]["namespace"], relevant):
        refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        if ro.controller_ref(pod) is None:
            refs.append(ro.owner_reference(owner))
        if refs:
            pod["metadata"]["ownerReferences"] = refs
        else:
            pod["metadata"].pop("ownerReferences", None)
        meta = pod["metadata"]
        try:
            registry.update(PODS, meta["namespace"], meta["name"], pod)
        except ApiError:
            continue


def is_broken(pod_spec: JsonDict) -> list[str]:
    """Names of the containers whose image tag contains `broken`: those never get ready."""
    return [
        c["name"]
        for c in pod_spec.get("containers") or []
        if "broken" in image_tag(c.get("image", ""))
    ]


def _digest(image: str) -> str:
    return hashlib.sha256(image.encode()).hexdigest()


def _ready(pod: JsonDict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


class ReplicaSetController:
    def __init__(self, registry: Registry, clock: Clock, ready_after: float) -> None:
        self._r = registry
        self._clock = clock
        self.ready_after = ready_after
        # pod uid -> simulated time it was created / became ready
        self._born: dict[str, float] = {}
        self._ready_at: dict[str, float] = {}
        self._random = random.Random()  # noqa: S311 - pod IPs and names, not secrets

    # ------------------------------------------------------------------ loop hooks

    def sync_all(self) -> None:
        pods = self._r.view(PODS, None)
        live = {p["metadata"]["uid"] for p in pods}
        for uid in [u for u in self._born if u not in live]:
            self._forget(uid)
        for pod in pods:
            self._kubelet(pod)
        for rs in self._r.view(RS, None):
            try:
                self._sync(rs)
            except ApiError:
                continue

    def next_timer(self) -> float | None:
        """Simulated seconds until a pod becomes ready or available."""
        soonest: float | None = None
        for rs in self._r.view(RS, None):
            min_ready = rs["spec"].get("minReadySeconds", 0)
            for pod in self._owned(rs):
                left = self.pod_timer(pod, min_ready)
                if left is not None:
                    soonest = left if soonest is None else min(soonest, left)
        return soonest

    # ------------------------------------------------------------------ for other controllers

    def pod_timer(self, pod: JsonDict, min_ready: int) -> float | None:
        """Simulated seconds until `pod` becomes ready, or available after `min_ready` seconds
        ready; None when neither is coming (already there, or a broken image)."""
        now = self._clock.sim()
        uid = pod["metadata"]["uid"]
        if uid in self._ready_at:
            due = self._ready_at[uid] + min_ready if min_ready else None
        elif not is_broken(pod["spec"]):
            due = self._born.get(uid, now) + self.ready_after
        else:
            due = None
        if due is not None and due > now - 1e-9:
            return max(due - now, 0.0)
        return None

    def available(self, pod: JsonDict, min_ready: int) -> bool:
        """podutil.IsPodAvailable: ready, and for at least `min_ready` simulated seconds."""
        if not _ready(pod):
            return False
        if not min_ready:
            return True
        now = self._clock.sim()
        since = self._ready_at.get(pod["metadata"]["uid"], now - min_ready)
        return now - since >= min_ready - 1e-9

    def admit(self, namespace: str, pod: JsonDict) -> JsonDict:
        """Create `pod` and have the make-believe kubelet start it: Pending, containers being
        created, ready `ready_after` simulated seconds from now (never, for a broken image)."""
        created = self._r.create(PODS, namespace, pod)
        now_wall = self._clock.now()
        created["status"] = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_wall,
                }
            ],
            "hostIP": host_ip(created),
            "hostIPs": [{"ip": host_ip(created)}],
            "startTime": now_wall,
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
                for c in created["spec"].get("containers") or []
            ],
            "qosClass": created["status"].get("qosClass", "BestEffort"),
        }
        stored = self._r.update(
            PODS,
            created["metadata"]["namespace"],
            created["metadata"]["name"],
            created,
            subresource="status",
        )
        self._born[stored["metadata"]["uid"]] = self._clock.sim()
        return stored

    # ------------------------------------------------------------------ ReplicaSets

    def _owned(self, rs: JsonDict) -> list[JsonDict]:
        uid = rs["metadata"]["uid"]
        return [
            p
            for p in self._r.view(PODS, rs["metadata"]["namespace"])
            if (ro.controller_ref(p) or {}).get("uid") == uid
        ]

    def _sync(self, rs: JsonDict) -> None:
        pods = self._owned(rs)
        want = ro.replicas(rs)
        ns = rs["metadata"]["namespace"]
        if len(pods) < want:
            for _ in range(want - len(pods)):
                pods.append(self._create_pod(rs))
        elif len(pods) > want:
            # getPodsToDelete: not-ready before ready, then the newest first
            ranked = sorted(
                pods,
                key=lambda p: (_ready(p), self._born.get(p["metadata"]["uid"], 0.0) * -1),
            )
            for pod in ranked[: len(pods) - want]:
                self._r.delete(PODS, ns, pod["metadata"]["name"])
                self._forget(pod["metadata"]["uid"])
                pods.remove(pod)
        self._update_status(rs, pods)

    def _update_status(self, rs: JsonDict, pods: list[JsonDict]) -> None:
        template_labels = rs["spec"]["template"]["metadata"].get("labels") or {}
        labelled = selectors.from_label_selector({"matchLabels": template_labels})
        now = self._clock.sim()
        min_ready = rs["spec"].get("minReadySeconds", 0)
        counts = {
            "fullyLabeledReplicas": sum(
                1 for p in pods if selectors.matches(labelled, p["metadata"].get("labels"))
            ),
            "readyReplicas": sum(1 for p in pods if _ready(p)),
            "availableReplicas": sum(
                1
                for p in pods
                if _ready(p)
                and now - self._ready_at.get(p["metadata"]["uid"], now - min_ready)
                >= min_ready - 1e-9
            ),
            "observedGeneration": rs["metadata"].get("generation", 0),
        }
        # ReplicaSetStatus.replicas is always written; the other counts are omitempty
        status: JsonDict = {"replicas": len(pods)}
        status.update({k: v for k, v in counts.items() if v})
        if status != rs.get("status"):
            new = copy.deepcopy(rs)
            new["status"] = status
            meta = rs["metadata"]
            self._r.update(RS, meta["namespace"], meta["name"], new, subresource="status")

    # ------------------------------------------------------------------ pods

    def _create_pod(self, rs: JsonDict) -> JsonDict:
        template = copy.deepcopy(rs["spec"]["template"])
        meta = template.get("metadata") or {}
        meta.pop("creationTimestamp", None)
        meta["generateName"] = f"{rs['metadata']['name']}-"
        meta["ownerReferences"] = [ro.owner_reference(rs)]
        spec = template["spec"]
        spec["nodeName"] = NODE
        pod: JsonDict = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        return self.admit(rs["metadata"]["namespace"], pod)

    def _forget(self, uid: str) -> None:
        self._born.pop(uid, None)
        self._ready_at.pop(uid, None)

    def _kubelet(self, pod: JsonDict) -> None:
        uid = pod["metadata"]["uid"]
        if uid not in self._born:
            # a pod someone else created, or one from before a seed: it starts now
            self._born[uid] = self._clock.sim()
        if (pod.get("status") or {}).get("phase") not in (None, "Pending"):
            if _ready(pod):
                self._ready_at.setdefault(uid, self._clock.sim())
            return
        if self._clock.sim() - self._born[uid] < self.ready_after - 1e-9:
            return
        broken = is_broken(pod["spec"])
        now = self._clock.now()
        ready = "False" if broken else "True"
        cond_extra: JsonDict = (
            {
                "reason": "ContainersNotReady",
                "message": f"containers with unready status: [{' '.join(broken)}]",
            }
            if broken
            else {}
        )
        statuses = []
        for c in pod["spec"].get("containers") or []:
            image = c["image"]
            base: JsonDict = {
                "name": c["name"],
                "image": image,
                "imageID": f"{image.split(':')[0]}@sha256:{_digest(image)}",
                "containerID": f"containerd://{self._random.getrandbits(128):032x}",
            }
            if c["name"] in broken:
                base.update(
                    ready=False,
                    restartCount=1,
                    started=False,
                    lastState={
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "startedAt": now,
                            "finishedAt": now,
                            "containerID": base["containerID"],
                        }
                    },
                    state={
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off 10s restarting failed container={c['name']} "
                            f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}({uid})",
                        }
                    },
                )
            else:
                base.update(
                    ready=True, restartCount=0, started=True, state={"running": {"startedAt": now}}
                )
            statuses.append(base)
        ip = f"10.244.0.{self._random.randint(2, 254)}"
        new = copy.deepcopy(pod)
        new["status"] = {
            "phase": "Running",
            "conditions": [
                {
                    "type": "PodReadyToStartContainers",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                },
                {
                    "type": "Initialized",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                },
                {
                    "type": "Ready",
                    "status": ready,
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                    **cond_extra,
                },
                {
                    "type": "ContainersReady",
                    "status": ready,
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                    **cond_extra,
                },
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": pod["status"]["conditions"][0]["lastTransitionTime"]
                    if (pod.get("status") or {}).get("conditions")
                    else now,
                },
            ],
            "hostIP": host_ip(pod),
            "hostIPs": [{"ip": host_ip(pod)}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": (pod.get("status") or {}).get("startTime", now),
            "containerStatuses": statuses,
            "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
        }
        meta = pod["metadata"]
        self._r.update(PODS, meta["namespace"], meta["name"], new, subresource="status")
        if not broken:
            self._ready_at[uid] = self._clock.sim()
