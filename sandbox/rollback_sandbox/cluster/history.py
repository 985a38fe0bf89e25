"""ControllerRevisions, the history StatefulSets and DaemonSets keep, after
pkg/controller/history/controller_history.go and the controllers' `getPatch`.

A revision's `data` is a strategic merge patch that puts a pod template back whole:

    {"spec": {"template": {"$patch": "replace", "metadata": {...}, "spec": {...}}}}

written as Go's `json.Marshal` writes a `map[string]interface{}`: keys sorted at every level, no
spaces, `<`, `>` and `&` escaped. kubectl's `rollout undo` compares those bytes with the patch it
makes of the live template (`statefulsetMatch`, `daemonSetMatch`) to answer "skipped rollback",
and sends them as the PATCH body to roll back.

Naming: a StatefulSet revision is `<name>-<hash>`, the hash being `HashControllerRevision`: FNV-1
(32 bit, `hash/fnv.New32`, not FNV-1a) over the data's bytes followed by the decimal collision
count, printed in decimal and passed through `rand.SafeEncodeString`; the hash is also the label
`controller.kubernetes.io/hash`. A DaemonSet names its revisions after `controller.ComputeHash` of
the pod template instead: see `daemonset.py`.

Revision numbers: a new template gets the highest number + 1; a template that comes back (a
rollback) reuses its old ControllerRevision, renumbered to the highest + 1.

Limits: data is stored as a JSON value, and the API answers it with Python's JSON encoder
(`\\uXXXX` for non-ASCII, `<>&` unescaped), so a template holding such characters is stored
and hashed correctly but its bytes on the wire differ from Go's: kubectl then rolls back instead
of answering "skipped rollback". Values Go would drop as empty (`hostNetwork: false`,
`labels: {}`) are kept as sent.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from rollback_sandbox.cluster import resources, selectors
from rollback_sandbox.cluster import rollout as ro
from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.events import Recorder
from rollback_sandbox.cluster.registry import Registry
from rollback_sandbox.cluster.replicaset import ReplicaSetController

JsonDict = dict[str, Any]
CR = resources.CONTROLLERREVISIONS
HASH_LABEL = "controller.kubernetes.io/hash"  # on a StatefulSet's revisions: the hash
REVISION_LABEL = "controller-revision-hash"  # on pods (both kinds) and a DaemonSet's revisions
PATCH_DIRECTIVE = "$patch"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_NAME_PREFIX_MAX = 223  # ControllerRevisionName keeps names within 253 characters


def _go_value(value: Any) -> Any:
    """What a value becomes after Go's json.Unmarshal into interface{}: numbers are float64, so
    a whole number prints without a fraction."""
    if isinstance(value, dict):
        return {k: _go_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_value(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def go_json(value: Any) -> str:
    """encoding/json.Marshal of a map[string]interface{}: sorted keys, compact, HTML-safe."""
    text = json.dumps(_go_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def fnv1_32(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = (h * _FNV_PRIME) & 0xFFFFFFFF
        h ^= byte
    return h


def hash_revision(data: Any, collision_count: int | None) -> str:
    """HashControllerRevision: FNV-1 of the data's bytes, then of the collision count."""
    raw = go_json(data).encode()
    if collision_count is not None:
        raw += str(collision_count).encode()
    return ro.safe_encode(str(fnv1_32(raw)))


def revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:_NAME_PREFIX_MAX]}-{hash_}"


def restore_patch(template: JsonDict) -> JsonDict:
    """getPatch: the data of a revision of `template`, keys in Go's order."""
    patch = {"spec": {"template": {**copy.deepcopy(template), PATCH_DIRECTIVE: "replace"}}}
    result: JsonDict = json.loads(go_json(patch))
    return result


def template_of(revision: JsonDict) -> JsonDict:
    """The pod template a revision restores (ApplyRevision on a template's worth of object)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template"))
    if not isinstance(template, dict):
        return {}
    template.pop(PATCH_DIRECTIVE, None)
    return template


def same_data(a: Any, b: Any) -> bool:
    """bytes.Equal of two revisions' data, as Go would have written them."""
    return go_json(a) == go_json(b)


def number(revision: JsonDict) -> int:
    value = revision.get("revision", 0)
    return value if isinstance(value, int) else 0


def by_revision(revisions: list[JsonDict]) -> list[JsonDict]:
    """SortControllerRevisions: by revision, then creation time, then name."""
    return sorted(
        revisions,
        key=lambda r: (
            number(r),
            r["metadata"].get("creationTimestamp", ""),
            r["metadata"]["name"],
        ),
    )


def max_revision(revisions: list[JsonDict]) -> int:
    return max((number(r) for r in revisions), default=0)


class History:
    """The ControllerRevisions of one owner kind, read and written through the registry."""

    def __init__(self, registry: Registry) -> None:
        self._r = registry

    def owned(self, owner: JsonDict) -> list[JsonDict]:
        """The owner's revisions, adopting orphans its selector matches (ClaimControllerRevisions);
        sorted by revision."""
        uid = owner["metadata"]["uid"]
        ns = owner["metadata"]["namespace"]
        sel = selectors.from_label_selector(owner["spec"].get("selector"))
        found: list[JsonDict] = []
        for rev in self._r.list_where(
            CR,
            ns,
            lambda r: (
                (ro.controller_ref(r) or {}).get("uid") == uid
                or (
                    ro.controller_ref(r) is None
                    and selectors.matches(sel, r["metadata"].get("labels"))
                )
            ),
        ):
            if ro.controller_ref(rev) is None:
                rev["metadata"].setdefault("ownerReferences", []).append(ro.owner_reference(owner))
                try:
                    rev = self._r.update(CR, ns, rev["metadata"]["name"], rev)
                except ApiError:
                    continue
            found.append(rev)
        return by_revision(found)

    def new(
        self, owner: JsonDict, labels: dict[str, str], data: JsonDict, revision: int
    ) -> JsonDict:
        return {
            "apiVersion": CR.api_version,
            "kind": CR.kind,
            "metadata": {
                "namespace": owner["metadata"]["namespace"],
                "labels": dict(labels),
                "ownerReferences": [ro.owner_reference(owner)],
            },
            "data": data,
            "revision": revision,
        }

    def create(
        self, owner: JsonDict, revision: JsonDict, collision_count: int
    ) -> tuple[JsonDict, int]:
        """CreateControllerRevision: name it `<owner>-<hash>`; on a name taken by other data,
        count a collision and hash again. Returns the revision and the collision count."""
        ns = owner["metadata"]["namespace"]
        for _ in range(100):
            hash_ = hash_revision(revision["data"], collision_count)
            body = copy.deepcopy(revision)
            body["metadata"]["name"] = revision_name(owner["metadata"]["name"], hash_)
            body["metadata"]["labels"][HASH_LABEL] = hash_
            try:
                return self._r.create(CR, ns, body), collision_count
            except ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise
            existing = self._r.get(CR, ns, body["metadata"]["name"])
            if same_data(existing.get("data"), revision["data"]):
                return existing, collision_count
            collision_count += 1
        raise ApiError(
            500, f"too many ControllerRevision name collisions for {owner['metadata']['name']}"
        )

    def renumber(self, revision: JsonDict, new_number: int) -> JsonDict:
        """UpdateControllerRevision: only the revision number ever changes."""
        if number(revision) == new_number:
            return revision
        changed = copy.deepcopy(revision)
        changed["revision"] = new_number
        meta = revision["metadata"]
        return self._r.update(CR, meta["namespace"], meta["name"], changed)

    def delete(self, revision: JsonDict) -> None:
        meta = revision["metadata"]
        try:
            self._r.delete(CR, meta["namespace"], meta["name"])
        except ApiError:
            return  # already gone


class RevisionedController:
    """What the StatefulSet and DaemonSet controllers share: their objects of `kind` synced in
    each pass of the controller loop, their pods' readiness timers, and their ControllerRevision
    history. A subclass says how one object is synced and which pods are its own."""

    kind: resources.ResourceType

    def __init__(
        self, registry: Registry, recorder: Recorder, kubelet: ReplicaSetController
    ) -> None:
        self._r = registry
        self._events = recorder
        self._kubelet = kubelet
        self._history = History(registry)

    def sync_all(self) -> None:
        for obj in self._r.list(self.kind, None):
            try:
                self.sync(obj)
            except ApiError:
                continue  # a conflict or a vanished object: the next pass sees fresh state

    def next_timer(self) -> float | None:
        """Simulated seconds until one of their pods becomes ready or available."""
        soonest: float | None = None
        for obj in self._r.view(self.kind, None):
            min_ready = obj["spec"].get("minReadySeconds", 0)
            for pod in self._pods(obj):
                left = self._kubelet.pod_timer(pod, min_ready)
                if left is not None:
                    soonest = left if soonest is None else min(soonest, left)
        return soonest

    def sync(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def _pods(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError
