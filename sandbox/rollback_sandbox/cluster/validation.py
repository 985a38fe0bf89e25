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
        # the apiserver says "deployment" for ReplicaSets too
        noun = obj.get("kind", "").lower() if obj.get("kind") in _OWN_NOUN else "deployment"
        causes.append(
            ("spec.selector", f'Invalid value: "{{}}": empty selector is invalid for {noun}')
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
    if obj.get("kind") == "StatefulSet":
        _statefulset(spec, causes)
    if obj.get("kind") == "DaemonSet":
        _daemonset(spec, causes)
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


_OWN_NOUN = ("StatefulSet", "DaemonSet")
# ValidateStatefulSetUpdate: what an update may change in a StatefulSet's spec
_STS_MUTABLE = (
    "replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
    "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy",
)  # fmt: skip
_STS_FORBIDDEN = (
    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
    "'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' "
    "and 'minReadySeconds' are forbidden"
)


def _non_negative(spec: JsonDict, fields: tuple[str, ...], path: str, causes: Causes) -> None:
    for field in fields:
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or value < 0):
            causes.append(
                (
                    f"{path}.{field}",
                    f"Invalid value: {_go(value)}: must be greater than or equal to 0",
                )
            )


def _statefulset(spec: JsonDict, causes: Causes) -> None:
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "OnDelete"):
        causes.append(
            (
                "spec.updateStrategy.type",
                f'Unsupported value: {_go(kind)}: supported values: "OnDelete", "RollingUpdate"',
            )
        )
    elif kind == "OnDelete" and strategy.get("rollingUpdate") is not None:
        causes.append(
            (
                "spec.updateStrategy.rollingUpdate",
                f"Invalid value: {_go(strategy['rollingUpdate'])}: only allowed for "
                "updateStrategy 'RollingUpdate'",
            )
        )
    elif isinstance(strategy.get("rollingUpdate"), dict):
        _non_negative(
            strategy["rollingUpdate"], ("partition",), "spec.updateStrategy.rollingUpdate", causes
        )
    policy = spec.get("podManagementPolicy")
    if policy not in ("OrderedReady", "Parallel"):
        causes.append(
            (
                "spec.podManagementPolicy",
                f'Unsupported value: {_go(policy)}: supported values: "OrderedReady", "Parallel"',
            )
        )
    _non_negative(spec, ("revisionHistoryLimit", "minReadySeconds"), "spec", causes)
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        _non_negative(ordinals, ("start",), "spec.ordinals", causes)


def _daemonset(spec: JsonDict, causes: Causes) -> None:
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "OnDelete"):
        causes.append(
            (
                "spec.updateStrategy.type",
                f'Unsupported value: {_go(kind)}: supported values: "OnDelete", "RollingUpdate"',
            )
        )
    elif kind == "RollingUpdate":
        rolling = strategy.get("rollingUpdate") or {}
        path = "spec.updateStrategy.rollingUpdate"
        try:
            unavailable = _int_or_percent(rolling.get("maxUnavailable"), 100, True)
            surge = _int_or_percent(rolling.get("maxSurge"), 100, True)
        except ValueError as exc:
            causes.append((path, f"Invalid value: {exc}"))
        else:
            if unavailable and surge:
                causes.append(
                    (
                        f"{path}.maxSurge",
                        f"Invalid value: {_go(rolling.get('maxSurge'))}: may not be set when "
                        "maxUnavailable is non-zero",
                    )
                )
            elif not unavailable and not surge:
                causes.append(
                    (f"{path}.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0")
                )
    _non_negative(spec, ("revisionHistoryLimit", "minReadySeconds"), "spec", causes)


def _controller_revision(obj: JsonDict, old: JsonDict | None, causes: Causes) -> None:
    if obj.get("data") is None:
        causes.append(("data", "Required value"))
    revision = obj.get("revision", 0)
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        causes.append(
            ("revision", f"Invalid value: {_go(revision)}: must be greater than or equal to 0")
        )
    if old is not None and obj.get("data") != old.get("data"):
        causes.append(("data", f"Invalid value: {_go(obj.get('data'))}: field is immutable"))


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
    if rt.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        _workload(obj, causes)
        if rt.kind == "StatefulSet" and old is not None:
            kept = {k: v for k, v in (obj.get("spec") or {}).items() if k not in _STS_MUTABLE}
            was = {k: v for k, v in (old.get("spec") or {}).items() if k not in _STS_MUTABLE}
            if kept != was:
                causes.append(("spec", _STS_FORBIDDEN))
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
    elif rt.kind == "ControllerRevision":
        _controller_revision(obj, old, causes)
    if causes:
        raise invalid(rt.kind, rt.group, name, causes)


def require_object(body: Any) -> JsonDict:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    if not isinstance(body.get("metadata", {}), dict):
        raise ApiError(400, "metadata must be a JSON object")
    return body
