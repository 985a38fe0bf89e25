"""The EndpointSlice controller, after pkg/controller/endpointslice and k8s.io/endpointslice
(reconciler.go, utils.go): for every Service with a selector it keeps the `discovery.k8s.io/v1`
EndpointSlices that say which pods back it, which is what a blue-green switch is judged by
(the Service's selector changed, then the slices name the other colour's pods).

What it does, as the real one:

- A Service with a non-empty selector, of any type but ExternalName, gets slices named
  `<service>-<5 random characters>` (generateName), labelled `kubernetes.io/service-name` and
  `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io` (plus the Service's
  own labels, and `service.kubernetes.io/headless` for a headless one), owned by the Service
  (controller=true, so deleting the Service deletes them), `addressType: IPv4`.
- One endpoint per pod the selector matches in the Service's namespace that has an IP, is not
  being deleted and has not finished (Succeeded/Failed): `addresses` [its podIP],
  `conditions` ready/serving from the pod's Ready condition (ready is also true for every pod
  with `publishNotReadyAddresses`), terminating false, `targetRef` the pod, `nodeName`, and
  `hostname` when the pod names the Service as its subdomain (StatefulSet pods).
- `ports` are the Service's ports resolved against each pod: a numeric targetPort as is, a named
  one by the pod's container port of that name and protocol; a pod that lacks a named port gets
  no port for it, and pods with different resolved ports go to different slices. At most 100
  endpoints a slice.
- A Service whose selector matches no ready-to-list pod keeps one placeholder slice, with
  `endpoints` and `ports` null exactly as the real apiserver returns them (kubectl prints
  `<unset>`; the official Python client cannot deserialize it, kubernetes-client/python#2423).
- Existing slices are updated in place (their names stay), surplus ones deleted, and nothing is
  written when nothing changed, so watches see one event per real change. A managed slice that
  someone edits or deletes is put back.
- A Service without a selector gets no slice from this controller; one that loses its selector
  keeps the slices it had, unchanged, as in a real cluster (kubernetes/kubernetes#118376).

The make-believe kubelet (replicaset.py) gives a pod its IP when it starts running; a pod that
runs without one (its status written by someone else) is given a stable one here, derived from
its uid outside the kubelet's 10.244.0.0/24, so that it can be listed.

Limits: IPv4 only (the Services here are single-stack IPv4); no topology hints or zones; no
`endpoints.kubernetes.io/last-change-trigger-time` annotation; `metadata.generation` is not kept.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from rollback_sandbox.cluster import resources
from rollback_sandbox.cluster import rollout as ro
from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.registry import Registry
from rollback_sandbox.cluster.store import Event

JsonDict = dict[str, Any]
EPS = resources.ENDPOINTSLICES
SVC = resources.SERVICES
PODS = resources.PODS

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
MAX_ENDPOINTS_PER_SLICE = 100  # the controller's --max-endpoints-per-slice default
_RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)
_WATCHED = (SVC.key, PODS.key, EPS.key)


def routes_by_selector(svc: JsonDict) -> bool:
    """Whether the controller keeps slices for `svc`. An empty selector counts as none: the
    apiserver stores `selector: {}` as no selector at all."""
    spec = svc.get("spec") or {}
    selector = spec.get("selector")
    return bool(selector) and isinstance(selector, dict) and spec.get("type") != "ExternalName"


def pod_ready(pod: JsonDict) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def pod_ipv4(pod: JsonDict) -> str | None:
    status = pod.get("status") or {}
    candidates = [status.get("podIP")] + [
        ip.get("ip") for ip in status.get("podIPs") or [] if isinstance(ip, dict)
    ]
    return next((ip for ip in candidates if isinstance(ip, str) and ip.count(".") == 3), None)


def stable_ip(uid: str) -> str:
    """An address for a pod that runs without one: the same for the same pod, and outside
    10.244.0.0/24, where the make-believe kubelet picks its addresses."""
    h = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:4], "big")
    return f"10.244.{1 + h % 254}.{2 + (h >> 8) % 252}"


def _selects(selector: dict[str, Any], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def find_port(pod: JsonDict, svc_port: JsonDict) -> int | None:
    """podutil.FindPort: a numeric targetPort as is; a named one by the container port of that
    name and protocol (sidecar init containers too); None when the pod has no such port."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol", "TCP")
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + [
        c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
    ]
    for container in containers:
        for port in container.get("ports") or []:
            if (
                isinstance(port, dict)
                and port.get("name") == target
                and port.get("protocol", "TCP") == protocol
            ):
                value = port.get("containerPort")
                return value if isinstance(value, int) else None
    return None


def endpoint_ports(svc: JsonDict, pod: JsonDict) -> list[JsonDict]:
    out: list[JsonDict] = []
    for svc_port in (svc.get("spec") or {}).get("ports") or []:
        if not isinstance(svc_port, dict):
            continue  # the sandbox does not validate Services: one bad port must not stop all
        number = find_port(pod, svc_port)
        if number is None:
            continue  # as the real controller: the pod serves the others, not this one
        port: JsonDict = {
            "name": svc_port.get("name", ""),
            "protocol": svc_port.get("protocol", "TCP"),
            "port": number,
        }
        if svc_port.get("appProtocol"):
            port["appProtocol"] = svc_port["appProtocol"]
        out.append(port)
    return out


def endpoint(svc: JsonDict, pod: JsonDict, ip: str) -> JsonDict:
    """podToEndpoint, with the fields in the order the apiserver prints them."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    serving = pod_ready(pod)
    terminating = bool(meta.get("deletionTimestamp"))
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    ep: JsonDict = {
        "addresses": [ip],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
    }
    svc_meta = svc["metadata"]
    if (
        spec.get("hostname")
        and spec.get("subdomain") == svc_meta["name"]
        and meta.get("namespace") == svc_meta.get("namespace")
    ):
        ep["hostname"] = spec["hostname"]
    ep["targetRef"] = {
        "kind": "Pod",
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    return ep


def slice_labels(svc: JsonDict) -> dict[str, str]:
    """setEndpointSliceLabels: the Service's labels, then the controller's own."""
    labels = {
        k: v for k, v in (svc["metadata"].get("labels") or {}).items() if k not in _RESERVED_LABELS
    }
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = svc["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def _owner(svc: JsonDict) -> JsonDict:
    return ro.owner_reference({**svc, "apiVersion": "v1", "kind": "Service"})


def _content(obj: JsonDict) -> JsonDict:
    """What the controller decides of a slice: compared to know whether to write."""
    meta = obj.get("metadata") or {}
    return {
        "labels": meta.get("labels") or {},
        "ownerReferences": meta.get("ownerReferences") or [],
        "addressType": obj.get("addressType"),
        "ports": obj.get("ports"),
        "endpoints": obj.get("endpoints"),
    }


class EndpointSliceController:
    def __init__(self, registry: Registry) -> None:
        self._r = registry
        # namespaces whose Services, pods or slices changed since the last pass (None: all):
        # the loop runs every controller on every write, and most writes touch no Service
        self._dirty: set[str] | None = None
        registry.store.listeners.append(self._changed)

    def _changed(self, event: Event) -> None:
        if self._dirty is not None and event.key in _WATCHED:
            self._dirty.add(event.obj["metadata"].get("namespace", ""))

    # ------------------------------------------------------------------ entry points

    def sync_all(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if dirty is None:
            dirty = {
                o["metadata"].get("namespace", "")
                for rt in (SVC, EPS)
                for o in self._r.view(rt, None)
            }
        for namespace in sorted(dirty):
            self.sync_namespace(namespace)

    def sync_namespace(self, namespace: str) -> None:
        pods = self._r.view(PODS, namespace)
        managed: dict[str, list[JsonDict]] = {}
        for s in self._r.view(EPS, namespace):
            labels = s["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME and SERVICE_NAME_LABEL in labels:
                managed.setdefault(labels[SERVICE_NAME_LABEL], []).append(s)
        for svc in self._r.view(SVC, namespace):
            if not routes_by_selector(svc):
                continue
            try:
                self.sync_service(svc, pods, managed.get(svc["metadata"]["name"], []))
            except ApiError:
                # a conflict or a vanished object: look at this namespace again next pass
                if self._dirty is not None:
                    self._dirty.add(namespace)

    # ------------------------------------------------------------------ one Service

    def sync_service(self, svc: JsonDict, pods: list[JsonDict], existing: list[JsonDict]) -> None:
        groups = self._desired_groups(svc, pods)
        desired = [
            {**self._skeleton(svc), "ports": ports, "endpoints": chunk}
            for ports, endpoints in groups
            for chunk in (
                endpoints[i : i + MAX_ENDPOINTS_PER_SLICE]
                for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE)
            )
        ] or [{**self._skeleton(svc), "ports": None, "endpoints": None}]
        # Names stay stable, as the reconciler turns a create plus a delete into an update: a
        # slice with the same ports is reused first, then any other; the rest are deleted.
        left = sorted(existing, key=lambda s: s["metadata"]["name"])
        matches: list[JsonDict | None] = []
        for want in desired:
            same = next((s for s in left if s.get("ports") == want["ports"]), None)
            if same is not None:
                left.remove(same)
            matches.append(same)
        matches = [m if m is not None else (left.pop(0) if left else None) for m in matches]
        namespace = svc["metadata"]["namespace"]
        for unused in left:
            self._r.delete(EPS, namespace, unused["metadata"]["name"])
        for want, have in zip(desired, matches, strict=True):
            if have is None:
                self._r.create(EPS, namespace, want)
            elif _content(have) != _content(want):
                new = copy.deepcopy(have)
                new["metadata"]["labels"] = want["metadata"]["labels"]
                new["metadata"]["ownerReferences"] = want["metadata"]["ownerReferences"]
                for key in ("addressType", "ports", "endpoints"):
                    new[key] = want[key]
                self._r.update(EPS, namespace, have["metadata"]["name"], new)

    def _skeleton(self, svc: JsonDict) -> JsonDict:
        return {
            "apiVersion": EPS.api_version,
            "kind": EPS.kind,
            "metadata": {
                "generateName": f"{svc['metadata']['name']}-",
                "namespace": svc["metadata"]["namespace"],
                "labels": slice_labels(svc),
                "ownerReferences": [_owner(svc)],
            },
            "addressType": "IPv4",
        }

    def _desired_groups(
        self, svc: JsonDict, pods: list[JsonDict]
    ) -> list[tuple[list[JsonDict], list[JsonDict]]]:
        """The endpoints, grouped by the ports they resolve to, each group sorted by pod name."""
        selector = svc["spec"]["selector"]
        groups: dict[str, tuple[list[JsonDict], list[JsonDict]]] = {}
        for pod in pods:  # the store lists them by name: endpoints come in that order
            meta = pod["metadata"]
            phase = (pod.get("status") or {}).get("phase")
            if (
                not _selects(selector, meta.get("labels"))
                or meta.get("deletionTimestamp")
                or phase in ("Succeeded", "Failed")
            ):
                continue
            ip = pod_ipv4(pod)
            if ip is None and phase not in (None, "Pending"):
                ip = self._give_ip(pod)
            if ip is None:
                continue  # not started yet: no address to list, as in a real cluster
            ports = endpoint_ports(svc, pod)
            key = repr(ports)
            groups.setdefault(key, (ports, []))[1].append(endpoint(svc, pod, ip))
        return [groups[k] for k in sorted(groups)]

    def _give_ip(self, pod: JsonDict) -> str | None:
        ip = stable_ip(pod["metadata"].get("uid", pod["metadata"]["name"]))
        new = copy.deepcopy(pod)
        new["status"]["podIP"] = ip
        new["status"]["podIPs"] = [{"ip": ip}]
        meta = pod["metadata"]
        try:
            self._r.update(PODS, meta["namespace"], meta["name"], new, subresource="status")
        except ApiError:
            return None
        return ip
