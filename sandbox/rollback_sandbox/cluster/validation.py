"""The validation rules clients actually run into (apps and core validation, abridged)."""

from __future__ import annotations

import json
import re
from typing import Any

from rollback_sandbox.cluster import selectors
from rollback_sandbox.cluster.errors import ApiError, invalid
from rollback_sandbox.cluster.resources import ResourceType

JsonDict = dict[str, Any]
Causes = list[tuple[str, str]]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def _go(value: Any) -> str:
    """Values quoted roughly as Go's %v/%q print them in field errors."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in value.items())
        return f"map[string]string{{{inner}}}"
    return json.dumps(value)


def _name(rt: ResourceType, name: str, causes: Causes) -> None:
    if rt.kind == "Namespace" or rt.kind == "Service":
        if not (_LABEL.match(name) and len(name) <= 63):
            causes.append(("metadata.name", f"Invalid value: {_go(name)}: {_LABEL_MSG}"))
    elif not (_SUBDOMAIN.match(name) and len(name) <= 253):
        causes.append(("metadata.name", f"Invalid value: {_go(name)}: {_SUBDOMAIN_MSG}"))


def _containers(spec: JsonDict, path: str, causes: Causes) -> None:
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{path}.containers", "Required value"))
        return
    seen: set[str] = set()
    for i, c in enumerate(containers):
        where = f"{path}.containers[{i}]"
        name = c.get("name")
        if not name:
            causes.append((f"{where}.name", "Required value"))
        elif name in seen:
            causes.append((f"{where}.name", f"Duplicate value: {_go(name)}"))
        else:
            seen.add(name)
        if not c.get("image"):
            causes.append((f"{where}.image", "Required value"))


def _int_or_percent(value: Any, replicas: int, round_up: bool) -> int:
    from rollback_sandbox.cluster.rollout import scaled_value

    return scaled_value(value, replicas, round_up=round_up)


def _workload(obj: JsonDict, causes: Causes) -> None:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(("spec.selector", "Required value"))
    elif not selectors.from_label_selector(selector):
        causes.append(
            ("spec.selector", 'Invalid value: "{}": empty selector is invalid for deployment')
        )
    elif not selectors.matches(selectors.from_label_selector(selector), labels):
        causes.append(
            (
                "spec.template.metadata.labels",
                f"Invalid value: {_go(labels)}: `selector` does not match template `labels`",
            )
        )
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(
            ("spec.replicas", f"Invalid value: {_go(replicas)}: must be greater than or equal to 0")
        )
    pod_spec = template.get("spec") or {}
    _containers(pod_spec, "spec.template.spec", causes)
    if pod_spec.get("restartPolicy", "Always") != "Always":
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: {_go(pod_spec["restartPolicy"])}: supported values: "Always"',
            )
        )
    if obj.get("kind") != "Deployment":
        return
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "Recreate"):
        causes.append(
            (
                "spec.strategy.type",
                f'Unsupported value: {_go(kind)}: supported values: "Recreate", "RollingUpdate"',
            )
        )
    elif kind == "Recreate" and strategy.get("rollingUpdate") is not None:
        causes.append(
            (
                "spec.strategy.rollingUpdate",
                "Forbidden: may not be specified when strategy `type` is 'Recreate'",
            )
        )
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        try:
            surge = _int_or_percent(rolling.get("maxSurge"), 100, True)
            unavailable = _int_or_percent(rolling.get("maxUnavailable"), 100, False)
        except ValueError as exc:
            causes.append(("spec.strategy.rollingUpdate", f"Invalid value: {exc}"))
        else:
            if surge == 0 and unavailable == 0:
                causes.append(
                    (
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        "Invalid value: 0: may not be 0 when `maxSurge` is 0",
                    )
                )
    for field in ("revisionHistoryLimit", "minReadySeconds"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(
                (
                    f"spec.{field}",
                    f"Invalid value: {_go(value)}: must be greater than or equal to 0",
                )
            )
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None and deadline <= spec.get("minReadySeconds", 0):
        causes.append(
            (
                "spec.progressDeadlineSeconds",
                f"Invalid value: {_go(deadline)}: must be greater than minReadySeconds",
            )
        )


def validate(rt: ResourceType, obj: JsonDict, old: JsonDict | None = None) -> None:
    """Raise 422 Invalid with every problem found, like a field.ErrorList."""
    causes: Causes = []
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    _name(rt, name, causes)
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str):
            causes.append(
                (f"metadata.labels.{key}", f"Invalid value: {_go(value)}: must be a string")
            )
    if rt.kind in ("Deployment", "ReplicaSet"):
        _workload(obj, causes)
        if old is not None and (obj.get("spec") or {}).get("selector") != (
            old.get("spec") or {}
        ).get("selector"):
            causes.append(
                (
                    "spec.selector",
                    f"Invalid value: {_go(obj['spec'].get('selector'))}: field is immutable",
                )
            )
    elif rt.kind == "Pod":
        _containers(obj.get("spec") or {}, "spec", causes)
    if causes:
        raise invalid(rt.kind, rt.group, name, causes)


def require_object(body: Any) -> JsonDict:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if not isinstance(body.get("metadata", {}), dict):
        raise ApiError(400, "metadata must be a JSON object")
    return body
