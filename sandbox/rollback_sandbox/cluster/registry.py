"""REST semantics over the store, shared by the HTTP API and the controllers: the generic
registry plus each kind's strategy (status reset, generation, defaulting, validation)."""

from __future__ import annotations

import builtins
import copy
import secrets
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from rollback_sandbox.cluster import resources, selectors
from rollback_sandbox.cluster.clock import Clock
from rollback_sandbox.cluster.defaults import apply_defaults
from rollback_sandbox.cluster.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from rollback_sandbox.cluster.patching import apply_patch
from rollback_sandbox.cluster.resources import ResourceType
from rollback_sandbox.cluster.rollout import safe_encode
from rollback_sandbox.cluster.store import Store
from rollback_sandbox.cluster.validation import require_object, validate

JsonDict = dict[str, Any]

_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "generation", "namespace", "name")


def _random_suffix(n: int = 5) -> str:
    return safe_encode(secrets.token_hex(n))[:n]


def _meta(obj: JsonDict) -> JsonDict:
    return obj.setdefault("metadata", {})  # type: ignore[no-any-return]


# DaemonSetSpec.TemplateGeneration as apps/v1 shows it: 1 on create, +1 on each template change
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _status_of_new(rt: ResourceType) -> JsonDict | None:
    if rt.kind in ("Deployment", "ReplicaSet"):
        return {}
    # the status fields Go marshals even when zero (no omitempty)
    if rt.kind == "StatefulSet":
        return {"replicas": 0, "availableReplicas": 0}
    if rt.kind == "DaemonSet":
        return {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }
    if rt.kind == "Pod":
        return {"phase": "Pending"}
    return None


def _qos_class(pod: JsonDict) -> str:
    resources_ = [c.get("resources") or {} for c in pod["spec"].get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in resources_):
        return "BestEffort"
    guaranteed = all(
        r.get("limits")
        and set(r["limits"]) >= {"cpu", "memory"}
        and (r.get("requests") or r["limits"]) == r["limits"]
        for r in resources_
    )
    return "Guaranteed" if guaranteed else "Burstable"


class Registry:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._next_ip = 10

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, namespace: str, name: str) -> JsonDict:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return copy.deepcopy(obj)

    def find(self, rt: ResourceType, namespace: str, name: str) -> JsonDict | None:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: selectors.Selector = (),
        fields: tuple[selectors.FieldRequirement, ...] = (),
    ) -> list[JsonDict]:
        return [
            copy.deepcopy(o)
            for o in self.store.objects(rt.key, namespace if rt.namespaced else None)
            if selectors.matches(labels, o["metadata"].get("labels"))
            and all(f.matches(o) for f in fields)
        ]

    def view(self, rt: ResourceType, namespace: str | None) -> builtins.list[JsonDict]:
        """The stored objects themselves, for controllers that only read them and copy before
        writing: a namespace crowded with thousands of objects must not be deep-copied on every
        pass."""
        return self.store.objects(rt.key, namespace if rt.namespaced else None)

    def list_where(
        self, rt: ResourceType, namespace: str | None, keep: Callable[[JsonDict], bool]
    ) -> builtins.list[JsonDict]:
        """Copies of only the objects `keep` accepts: a controller scanning a crowded namespace
        must not pay for deep-copying every object it then ignores."""
        return [
            copy.deepcopy(o)
            for o in self.store.objects(rt.key, namespace if rt.namespaced else None)
            if keep(o)
        ]

    # ------------------------------------------------------------------ create

    def create(
        self, rt: ResourceType, namespace: str, body: Any, *, dry_run: bool = False
    ) -> JsonDict:
        obj = copy.deepcopy(require_object(body))
        self._check_type(rt, obj)
        meta = _meta(obj)
        if rt.namespaced:
            self._check_namespace(obj, namespace)
            meta["namespace"] = namespace
            if self.store.get(resources.NAMESPACES.key, "", namespace) is None:
                raise not_found("namespaces", "", namespace)
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{_random_suffix()}"
            else:
                raise invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                )
        name = meta["name"]
        if self.store.get(rt.key, meta.get("namespace", ""), name) is not None:
            raise already_exists(rt.plural, rt.group, name)
        for key in ("resourceVersion", "deletionTimestamp", "managedFields", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock.now()
        if rt.tracks_generation:
            meta["generation"] = 1
        status = _status_of_new(rt)
        if status is not None:
            obj["status"] = status
        apply_defaults(rt.kind, obj)
        if rt.kind == "DaemonSet":
            meta.setdefault("annotations", {})[TEMPLATE_GENERATION] = "1"
        if rt.kind == "Pod":
            obj["status"]["qosClass"] = _qos_class(obj)
        if rt.kind == "Service":
            self._allocate_cluster_ip(obj)
        validate(rt, obj)
        if dry_run:
            return obj
        return copy.deepcopy(self.store.put(rt.key, obj))

    # ------------------------------------------------------------------ update

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> JsonDict:
        old = self.get(rt, namespace, name)
        new = copy.deepcopy(require_object(body))
        self._check_type(rt, new)
        meta = _meta(new)
        if meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        if rt.namespaced:
            self._check_namespace(new, namespace)
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        for key in _SYSTEM_META:
            if key in old["metadata"]:
                meta[key] = old["metadata"][key]
            else:
                meta.pop(key, None)
        for key in ("managedFields", "selfLink"):
            meta.pop(key, None)
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if subresource == "status":
            # status strategy: spec and labels stay; status and other metadata come from the body
            if "spec" in old:
                new["spec"] = old["spec"]
            else:
                new.pop("spec", None)
            if "labels" in old["metadata"]:
                meta["labels"] = old["metadata"]["labels"]
            else:
                meta.pop("labels", None)
        elif "status" in rt.subresources:
            # kept from the stored object; a kind without a status subresource (an Argo CD
            # Application) takes the body's, as the real apiserver does
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        apply_defaults(rt.kind, new)
        if rt.kind == "DaemonSet":
            self._template_generation(old, new)
        if rt.kind == "Service":
            new["spec"]["clusterIP"] = old["spec"].get("clusterIP")
            new["spec"]["clusterIPs"] = old["spec"].get("clusterIPs")
        validate(rt, new, old)
        if rt.tracks_generation and subresource != "status":
            changed = new.get("spec") != old.get("spec")
            if rt.kind == "Deployment":
                # annotations are copied to ReplicaSets, so they count as a change too
                changed = changed or (meta.get("annotations") or {}) != (
                    old["metadata"].get("annotations") or {}
                )
            if changed:
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if new == old or dry_run:
            # the apiserver skips writing an unchanged object: no new resourceVersion, no event
            return new
        return copy.deepcopy(self.store.put(rt.key, new))

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> JsonDict:
        old = self.get(rt, namespace, name)
        if subresource == "scale":
            patched_scale = apply_patch(self.scale(rt, old), content_type, patch, "Scale")
            return self.update_scale(rt, namespace, name, patched_scale, dry_run=dry_run)
        patched = apply_patch(old, content_type, patch, rt.kind)
        # a resourceVersion the patch brings is a precondition, exactly as for an update
        if "resourceVersion" not in (patched.get("metadata") or {}):
            _meta(patched)["resourceVersion"] = ""
        return self.update(rt, namespace, name, patched, subresource=subresource, dry_run=dry_run)

    # ------------------------------------------------------------------ scale

    def scale(self, rt: ResourceType, obj: JsonDict) -> JsonDict:
        meta = obj["metadata"]
        spec: JsonDict = {}
        if replicas := obj["spec"].get("replicas", 0):
            spec["replicas"] = replicas
        status: JsonDict = {"replicas": (obj.get("status") or {}).get("replicas", 0)}
        if selector := selectors.selector_string(obj["spec"].get("selector")):
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": spec,
            "status": status,
        }

    def update_scale(
        self, rt: ResourceType, namespace: str, name: str, body: Any, *, dry_run: bool = False
    ) -> JsonDict:
        scale = require_object(body)
        old = self.get(rt, namespace, name)
        sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                name,
                [
                    (
                        "spec.replicas",
                        f"Invalid value: {replicas}: must be greater than or equal to 0",
                    )
                ],
            )
        new = copy.deepcopy(old)
        new["spec"]["replicas"] = replicas
        return self.scale(rt, self.update(rt, namespace, name, new, dry_run=dry_run))

    # ------------------------------------------------------------------ delete

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: JsonDict | None = None,
        *,
        dry_run: bool = False,
    ) -> JsonDict:
        """Delete now; dependents by ownerReference go too unless propagation is Orphan.

        Returns what the apiserver answers: the object for kinds that return it, else a Status.
        """
        options = options or {}
        old = self.get(rt, namespace, name)
        pre = options.get("preconditions") or {}
        for field in ("uid", "resourceVersion"):
            want = pre.get(field)
            have = old["metadata"].get(field)
            if want and want != have:
                label = "UID" if field == "uid" else "ResourceVersion"
                raise ApiError(
                    409,
                    f"Precondition failed: {label} in precondition: {want}, "
                    f"{label} in object meta: {have}",
                    reason="Conflict",
                    details={"name": name, "group": rt.group, "kind": rt.plural},
                )
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is True:
            policy = "Orphan"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise bad_request(f"Unsupported propagationPolicy: {policy}")
        if not dry_run:
            uid = old["metadata"]["uid"]
            if rt.kind == "Namespace":
                for other in resources.ALL:
                    if other.namespaced:
                        for obj in self.store.objects(other.key, name):
                            self.store.remove(other.key, name, obj["metadata"]["name"])
            elif policy == "Orphan":
                self._orphan(uid, namespace)
            else:
                self._delete_dependents(uid, namespace)
            self.store.remove(rt.key, namespace if rt.namespaced else "", name)
        if rt.kind == "Namespace":
            old["metadata"]["deletionTimestamp"] = self.clock.now()
            old["status"] = {"phase": "Terminating"}
        if rt.returns_deleted:
            return old
        details: JsonDict = {"name": name, "kind": rt.plural, "uid": old["metadata"]["uid"]}
        if rt.group:
            details["group"] = rt.group
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def _dependents(self, uid: str, namespace: str) -> Iterable[tuple[ResourceType, JsonDict]]:
        for rt in resources.ALL:
            if not rt.namespaced:
                continue
            for obj in self.store.objects(rt.key, namespace):
                if any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or []):
                    yield rt, obj

    def _delete_dependents(self, uid: str, namespace: str) -> None:
        for rt, obj in list(self._dependents(uid, namespace)):
            self._delete_dependents(obj["metadata"]["uid"], namespace)
            self.store.remove(rt.key, namespace, obj["metadata"]["name"])

    def _orphan(self, uid: str, namespace: str) -> None:
        for rt, obj in list(self._dependents(uid, namespace)):
            changed = copy.deepcopy(obj)
            refs = [r for r in changed["metadata"]["ownerReferences"] if r.get("uid") != uid]
            if refs:
                changed["metadata"]["ownerReferences"] = refs
            else:
                del changed["metadata"]["ownerReferences"]
            self.store.put(rt.key, changed)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_type(rt: ResourceType, obj: JsonDict) -> None:
        api_version = obj.get("apiVersion")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version

    @staticmethod
    def _check_namespace(obj: JsonDict, namespace: str) -> None:
        sent = obj.get("metadata", {}).get("namespace")
        if sent and sent != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )

    @staticmethod
    def _template_generation(old: JsonDict, new: JsonDict) -> None:
        """The DaemonSet strategy: the template generation is the server's to keep, one more
        whenever the template changes (the annotation is how apps/v1 shows it)."""
        text = (old["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION)
        if text is None:
            return
        generation = int(text) if text.isdigit() else 1
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        _meta(new).setdefault("annotations", {})[TEMPLATE_GENERATION] = str(generation)

    def _allocate_cluster_ip(self, svc: JsonDict) -> None:
        spec = svc["spec"]
        if spec.get("clusterIP") in (None, ""):
            self._next_ip += 1
            spec["clusterIP"] = f"10.96.{self._next_ip // 250}.{self._next_ip % 250 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
