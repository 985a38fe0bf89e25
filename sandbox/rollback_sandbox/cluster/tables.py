"""meta.k8s.io/v1 Tables, the server-side printing `kubectl get` asks for, with the columns of
the real apiserver's printers (pkg/printers/internalversion)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rollback_sandbox.cluster import rollout as ro
from rollback_sandbox.cluster import selectors
from rollback_sandbox.cluster.clock import parse_rfc3339
from rollback_sandbox.cluster.resources import ResourceType

JsonDict = dict[str, Any]
Column = tuple[str, str, str, int]  # name, type, format, priority

_NAME: Column = ("Name", "string", "name", 0)
_AGE: Column = ("Age", "string", "", 0)
_DESCRIPTIONS = {
    "Name": "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an appropriate "
    "name automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "Age": "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.",
}

# a custom resource's printer columns carry their CRD's descriptions
_KIND_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "Rollout": {
        "Desired": "Number of desired pods",
        "Current": "Total number of non-terminated pods targeted by this rollout",
        "Up-to-date": "Total number of non-terminated pods targeted by this rollout that have "
        "the desired template spec",
        "Available": "Total number of available pods (ready for at least minReadySeconds) "
        "targeted by this rollout",
        "Age": "Time since resource was created",
    },
}

COLUMNS: dict[str, list[Column]] = {
    "Deployment": [
        _NAME, ("Ready", "string", "", 0), ("Up-to-date", "integer", "", 0),
        ("Available", "integer", "", 0), _AGE, ("Containers", "string", "", 1),
        ("Images", "string", "", 1), ("Selector", "string", "", 1),
    ],
    "ReplicaSet": [
        _NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0),
        ("Ready", "integer", "", 0), _AGE, ("Containers", "string", "", 1),
        ("Images", "string", "", 1), ("Selector", "string", "", 1),
    ],
    "StatefulSet": [
        _NAME, ("Ready", "string", "", 0), _AGE, ("Containers", "string", "", 1),
        ("Images", "string", "", 1),
    ],
    "DaemonSet": [
        _NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0),
        ("Ready", "integer", "", 0), ("Up-to-date", "integer", "", 0),
        ("Available", "integer", "", 0), ("Node Selector", "string", "", 0), _AGE,
        ("Containers", "string", "", 1), ("Images", "string", "", 1),
        ("Selector", "string", "", 1),
    ],
    "ControllerRevision": [
        _NAME, ("Controller", "string", "", 0), ("Revision", "integer", "", 0), _AGE,
    ],
    "Pod": [
        _NAME, ("Ready", "string", "", 0), ("Status", "string", "", 0),
        ("Restarts", "string", "", 0), _AGE, ("IP", "string", "", 1),
        ("Node", "string", "", 1), ("Nominated Node", "string", "", 1),
        ("Readiness Gates", "string", "", 1),
    ],
    "Namespace": [_NAME, ("Status", "string", "", 0), _AGE],
    "Service": [
        _NAME, ("Type", "string", "", 0), ("Cluster-IP", "string", "", 0),
        ("External-IP", "string", "", 0), ("Port(s)", "string", "", 0), _AGE,
        ("Selector", "string", "", 1),
    ],
    "Event": [
        ("Last Seen", "string", "", 0), ("Type", "string", "", 0), ("Reason", "string", "", 0),
        ("Object", "string", "", 0), ("Message", "string", "", 0),
    ],
    "ConfigMap": [_NAME, ("Data", "string", "", 0), _AGE],
    "Lease": [_NAME, ("Holder", "string", "", 0), _AGE],
    # the Rollout CRD's additionalPrinterColumns (argo-rollouts manifests/crds/rollout-crd.yaml)
    "Rollout": [
        _NAME, ("Desired", "integer", "", 0), ("Current", "integer", "", 0),
        ("Up-to-date", "integer", "", 0), ("Available", "integer", "", 0),
        ("Age", "date", "", 0),
    ],
    "EndpointSlice": [
        _NAME, ("AddressType", "string", "", 0), ("Ports", "string", "", 0),
        ("Endpoints", "string", "", 0), _AGE,
    ],
}  # fmt: skip


def human_duration(seconds: float) -> str:
    """duration.HumanDuration, as AGE columns print it."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(ts: str | None, now: datetime) -> str:
    if not ts:
        return "<unknown>"
    return human_duration((now - parse_rfc3339(ts)).total_seconds())


def _containers(obj: JsonDict) -> tuple[str, str]:
    cs = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _pod_status(pod: JsonDict) -> tuple[str, int, int, int]:
    """(reason, ready containers, total containers, restarts), as printPod works them out."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    statuses = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    for c in reversed(statuses):
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason, ready, total, restarts


def _ports(svc: JsonDict) -> str:
    ports = (svc.get("spec") or {}).get("ports") or []
    if not ports:
        return "<none>"
    return ",".join(
        f"{p['port']}/{p.get('protocol', 'TCP')}"
        if not p.get("nodePort")
        else f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        for p in ports
    )


def _first_three(items: list[str]) -> str:
    """listWithMoreString: three items, then "+ N more...", and `<unset>` for none."""
    if len(items) > 3:
        return f"{','.join(items[:3])} + {len(items) - 3} more..."
    return ",".join(items) or "<unset>"


def _slice_ports(eps: JsonDict) -> str:
    """formatDiscoveryPorts: the port number, else its name, else `*`."""
    ports = [p for p in eps.get("ports") or [] if isinstance(p, dict)]
    return _first_three(
        [str(p["port"] if p.get("port") is not None else p.get("name", "*")) for p in ports]
    )


def _slice_endpoints(eps: JsonDict) -> str:
    """formatDiscoveryEndpoints: every address of every endpoint, ready or not."""
    return _first_three(
        [
            str(address)
            for ep in eps.get("endpoints") or []
            if isinstance(ep, dict)
            for address in ep.get("addresses") or []
        ]
    )


def _cells(obj: JsonDict, now: datetime) -> list[Any]:
    kind = obj.get("kind", "")
    meta = obj["metadata"]
    name = meta["name"]
    age = _age(meta.get("creationTimestamp"), now)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if kind == "Deployment":
        containers, images = _containers(obj)
        return [
            name, f"{status.get('readyReplicas', 0)}/{ro.replicas(obj)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age,
            containers, images, selectors.selector_string(spec.get("selector")) or "<none>",
        ]  # fmt: skip
    if kind == "ReplicaSet":
        containers, images = _containers(obj)
        return [
            name, ro.replicas(obj), status.get("replicas", 0), status.get("readyReplicas", 0),
            age, containers, images, selectors.selector_string(spec.get("selector")) or "<none>",
        ]  # fmt: skip
    if kind == "StatefulSet":
        containers, images = _containers(obj)
        return [
            name, f"{status.get('readyReplicas', 0)}/{ro.replicas(obj)}", age, containers, images,
        ]  # fmt: skip
    if kind == "DaemonSet":
        containers, images = _containers(obj)
        node_selector = (spec.get("template") or {}).get("spec", {}).get("nodeSelector") or {}
        return [
            name, status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0),
            status.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or "<none>", age,
            containers, images, selectors.selector_string(spec.get("selector")) or "<none>",
        ]  # fmt: skip
    if kind == "ControllerRevision":
        owner = ro.controller_ref(obj)
        controller = "<none>"
        if owner is not None:
            group = str(owner.get("apiVersion", "")).rpartition("/")[0]
            kind_ = str(owner.get("kind", "")).lower()
            qualified = f"{kind_}.{group}" if group else kind_
            controller = f"{qualified}/{owner.get('name', '')}"
        return [name, controller, obj.get("revision", 0), age]
    if kind == "Pod":
        reason, ready, total, restarts = _pod_status(obj)
        return [
            name, f"{ready}/{total}", reason, str(restarts), age,
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>", "<none>",
        ]  # fmt: skip
    if kind == "Namespace":
        return [name, status.get("phase", ""), age]
    if kind == "Service":
        sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
        return [
            name, spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", "<none>",
            _ports(obj), age, sel or "<none>",
        ]  # fmt: skip
    if kind == "Event":
        involved = obj.get("involvedObject") or {}
        seen = obj.get("lastTimestamp") or obj.get("eventTime") or meta.get("creationTimestamp")
        return [
            _age(seen[:19] + "Z" if seen else None, now), obj.get("type", ""),
            obj.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            obj.get("message", ""),
        ]  # fmt: skip
    if kind == "ConfigMap":
        return [name, len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age]
    if kind == "EndpointSlice":
        return [
            name, obj.get("addressType", ""), _slice_ports(obj), _slice_endpoints(obj), age,
        ]  # fmt: skip
    if kind == "Lease":
        return [name, spec.get("holderIdentity", ""), age]
    if kind == "Rollout":
        # a custom resource's columns are JSONPaths: a field not set is a null cell
        return [
            name, spec.get("replicas"), status.get("replicas"), status.get("updatedReplicas"),
            status.get("availableReplicas"), age,
        ]  # fmt: skip
    return [name, age]


def _partial(obj: JsonDict) -> JsonDict:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }


def table(
    rt: ResourceType,
    objects: list[JsonDict],
    now: datetime,
    *,
    resource_version: str | None,
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> JsonDict:
    columns = COLUMNS.get(rt.kind, [_NAME, _AGE])
    rows = []
    for obj in objects:
        row: JsonDict = {"cells": _cells(obj, now)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial(obj)
        rows.append(row)
    meta: JsonDict = {}
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": [
            {
                "name": name,
                "type": type_,
                "format": fmt,
                "description": _KIND_DESCRIPTIONS.get(rt.kind, {}).get(name)
                or _DESCRIPTIONS.get(name, name),
                "priority": priority,
            }
            for name, type_, fmt, priority in columns
        ]
        if with_columns
        else [],
        "rows": rows,
    }
