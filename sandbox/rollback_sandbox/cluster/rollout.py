"""Deployment helpers, the sandbox's reading of pkg/controller/deployment/util: revisions,
template hashes, surge arithmetic and conditions. Pure functions over JSON dicts."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

JsonDict = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
HASH_LABEL = "pod-template-hash"
# not copied from a Deployment to its ReplicaSets (annotationsToSkip)
SKIPPED_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
# the revision-history annotation is trimmed from the front past this length
MAX_REV_HISTORY_CHARS = 2000

# condition types and reasons
AVAILABLE = "Available"
PROGRESSING = "Progressing"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"

_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString: no vowels, no look-alikes


def safe_encode(text: str) -> str:
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in text)


def template_hash(template: JsonDict, collision_count: int | None) -> str:
    """A stable pod-template-hash: the template minus that label, plus the collision count."""
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    text = json.dumps(t, sort_keys=True, separators=(",", ":"))
    if collision_count:
        text += f"#{collision_count}"
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return safe_encode(str(digest))


def _normalized(template: JsonDict) -> JsonDict:
    t = copy.deepcopy(template)
    meta = t.get("metadata") or {}
    labels = meta.get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
        if not labels:
            meta.pop("labels")
    return t


def equal_ignore_hash(a: JsonDict, b: JsonDict) -> bool:
    return _normalized(a) == _normalized(b)


def revision(obj: JsonDict) -> int:
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
    try:
        return int(text)
    except ValueError:
        return 0


def max_revision(rss: list[JsonDict]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def replicas(obj: JsonDict) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def status_int(obj: JsonDict, field: str) -> int:
    return int((obj.get("status") or {}).get(field, 0))


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid type for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%") or not text[:-1].isdigit():
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    exact = int(text[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def is_rolling(d: JsonDict) -> bool:
    return bool(((d["spec"].get("strategy") or {}).get("type")) == "RollingUpdate")


def fenceposts(d: JsonDict) -> tuple[int, int]:
    rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(rolling.get("maxSurge"), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        # both zero would stall the rollout; validation forbids it, the controller guards it too
        unavailable = 1
    return surge, unavailable


def max_surge(d: JsonDict) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: JsonDict) -> int:
    desired = replicas(d)
    if not is_rolling(d) or desired == 0:
        return 0
    return min(fenceposts(d)[1], desired)


def has_progress_deadline(d: JsonDict) -> bool:
    deadline = d["spec"].get("progressDeadlineSeconds")
    return deadline is not None and deadline != 2**31 - 1


def condition(status: JsonDict, kind: str) -> JsonDict | None:
    for c in status.get("conditions") or []:
        if c.get("type") == kind:
            return c  # type: ignore[no-any-return]
    return None


def new_condition(kind: str, status: str, reason: str, message: str, now: str) -> JsonDict:
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(status: JsonDict, cond: JsonDict) -> None:
    """SetDeploymentCondition: same status and reason is a no-op; a changed one moves last."""
    current = condition(status, cond["type"])
    if (
        current is not None
        and current["status"] == cond["status"]
        and current.get("reason") == cond["reason"]
    ):
        return
    if current is not None and current["status"] == cond["status"]:
        cond = {**cond, "lastTransitionTime": current["lastTransitionTime"]}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: JsonDict, kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def by_creation(rss: list[JsonDict]) -> list[JsonDict]:
    """ReplicaSetsByCreationTimestamp: oldest first, names break ties."""
    return sorted(rss, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))


def by_revision(rss: list[JsonDict]) -> list[JsonDict]:
    return sorted(
        rss, key=lambda r: (revision(r), r["metadata"]["creationTimestamp"], r["metadata"]["name"])
    )


def is_controlled_by(obj: JsonDict, owner_uid: str) -> bool:
    return any(
        ref.get("controller") and ref.get("uid") == owner_uid
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def controller_ref(obj: JsonDict) -> JsonDict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def owner_reference(owner: JsonDict) -> JsonDict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
