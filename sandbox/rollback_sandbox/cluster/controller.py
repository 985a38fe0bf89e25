"""The deployment controller, after pkg/controller/deployment (sync.go, rolling.go,
recreate.go, progress.go): one `sync` per Deployment, writing through the registry exactly the
objects and fields the real controller writes."""

from __future__ import annotations

import copy
import math
from typing import Any

from rollback_sandbox.cluster import resources, selectors
from rollback_sandbox.cluster import rollout as ro
from rollback_sandbox.cluster.clock import Clock, parse_rfc3339
from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.events import Recorder
from rollback_sandbox.cluster.registry import Registry

JsonDict = dict[str, Any]
D = resources.DEPLOYMENTS
RS = resources.REPLICASETS
COMPONENT = "deployment-controller"


def _ann(obj: JsonDict) -> dict[str, str]:
    found: dict[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
    return found


def _set_ann(obj: JsonDict, key: str, value: str) -> None:
    obj["metadata"].setdefault("annotations", {})[key] = value


def _replace(target: JsonDict, new: JsonDict) -> None:
    target.clear()
    target.update(new)


def _round(x: float) -> int:
    """integer.RoundToInt32: half away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def _active(rss: list[JsonDict | None]) -> list[JsonDict]:
    return [rs for rs in rss if rs is not None and ro.replicas(rs) > 0]


def _sum(rss: list[JsonDict], field: str) -> int:
    return sum(ro.status_int(rs, field) for rs in rss)


def _spec_sum(rss: list[JsonDict]) -> int:
    return sum(ro.replicas(rs) for rs in rss)


def deployment_complete(d: JsonDict, status: JsonDict) -> bool:
    want = ro.replicas(d)
    return bool(
        status.get("updatedReplicas", 0) == want
        and status.get("replicas", 0) == want
        and status.get("availableReplicas", 0) == want
        and status.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
    )


def deployment_progressing(d: JsonDict, new: JsonDict) -> bool:
    old = d.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = new.get("replicas", 0) - new.get("updatedReplicas", 0)
    return bool(
        new.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
        or new_old < old_old
        or new.get("readyReplicas", 0) > old.get("readyReplicas", 0)
        or new.get("availableReplicas", 0) > old.get("availableReplicas", 0)
    )


def find_new_rs(d: JsonDict, rss: list[JsonDict]) -> JsonDict | None:
    """The oldest ReplicaSet whose template equals the Deployment's (hash label ignored)."""
    for rs in ro.by_creation(rss):
        if ro.equal_ignore_hash(rs["spec"]["template"], d["spec"]["template"]):
            return rs
    return None


def set_replicas_annotations(rs: JsonDict, desired: int, maximum: int) -> bool:
    changed = False
    for key, value in ((ro.DESIRED_REPLICAS, str(desired)), (ro.MAX_REPLICAS, str(maximum))):
        if _ann(rs).get(key) != value:
            _set_ann(rs, key, value)
            changed = True
    return changed


def set_new_rs_annotations(d: JsonDict, rs: JsonDict, new_revision: str, *, exists: bool) -> bool:
    changed = False
    for key, value in _ann(d).items():
        if key not in ro.SKIPPED_ANNOTATIONS and _ann(rs).get(key) != value:
            _set_ann(rs, key, value)
            changed = True
    old_revision = _ann(rs).get(ro.REVISION, "")
    try:
        old_int = int(old_revision) if old_revision else 0
    except ValueError:
        return False
    new_int = int(new_revision)
    if old_int < new_int:
        _set_ann(rs, ro.REVISION, new_revision)
        changed = True
    if old_revision and old_int < new_int:
        # a reused ReplicaSet remembers the revisions it had before
        history = _ann(rs).get(ro.REVISION_HISTORY, "")
        parts = history.split(",")
        if not parts[0]:
            _set_ann(rs, ro.REVISION_HISTORY, old_revision)
        else:
            total = len(history) + len(old_revision) + 1
            start = 0
            while total > ro.MAX_REV_HISTORY_CHARS and start < len(parts):
                total -= len(parts[start]) + 1
                start += 1
            _set_ann(rs, ro.REVISION_HISTORY, ",".join([*parts[start:], old_revision]))
    if not exists and set_replicas_annotations(
        rs, ro.replicas(d), ro.replicas(d) + ro.max_surge(d)
    ):
        changed = True
    return changed


def new_rs_new_replicas(d: JsonDict, all_rss: list[JsonDict], new_rs: JsonDict) -> int:
    if not ro.is_rolling(d):
        return ro.replicas(d)
    current = _spec_sum(all_rss)
    max_total = ro.replicas(d) + ro.max_surge(d)
    if current >= max_total:
        return ro.replicas(new_rs)
    scale_up = min(max_total - current, ro.replicas(d) - ro.replicas(new_rs))
    return ro.replicas(new_rs) + scale_up


def calculate_status(
    all_rss: list[JsonDict], new_rs: JsonDict | None, d: JsonDict, now: str
) -> JsonDict:
    available = _sum(all_rss, "availableReplicas")
    unavailable = max(_spec_sum(all_rss) - available, 0)
    old = d.get("status") or {}
    fields = {
        "observedGeneration": d["metadata"].get("generation", 0),
        "replicas": _sum(all_rss, "replicas"),
        "updatedReplicas": ro.status_int(new_rs, "replicas") if new_rs else 0,
        "readyReplicas": _sum(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
        "collisionCount": old.get("collisionCount", 0),
    }
    # DeploymentStatus fields are all omitempty
    status: JsonDict = {k: v for k, v in fields.items() if v}
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= ro.replicas(d) - ro.max_unavailable(d):
        cond = ro.new_condition(
            ro.AVAILABLE, "True", ro.MIN_AVAILABLE, "Deployment has minimum availability.", now
        )
    else:
        cond = ro.new_condition(
            ro.AVAILABLE,
            "False",
            ro.MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    ro.set_condition(status, cond)
    return _ordered_status(status)


def _ordered_status(status: JsonDict) -> JsonDict:
    order = (
        "observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
        "availableReplicas", "unavailableReplicas", "conditions", "collisionCount",
    )  # fmt: skip
    return {k: status[k] for k in order if k in status}


class DeploymentController:
    def __init__(self, registry: Registry, clock: Clock, recorder: Recorder) -> None:
        self._r = registry
        self._clock = clock
        self._events = recorder
        # uid -> (lastUpdateTime, simulated time) of the Progressing condition we last wrote:
        # timestamps have whole seconds, deadlines need simulated precision
        self._marks: dict[str, tuple[str, float]] = {}

    # ------------------------------------------------------------------ entry points

    def sync_all(self) -> None:
        for d in self._r.list(D, None):
            try:
                self.sync(d)
            except ApiError:
                continue  # a conflict or a vanished object: the next pass sees fresh state

    def next_deadline(self) -> float | None:
        """Simulated seconds until some Deployment could time out, for the loop's sleep."""
        soonest: float | None = None
        for d in self._r.list(D, None):
            cond = ro.condition(d.get("status") or {}, ro.PROGRESSING)
            if (
                cond is None
                or not ro.has_progress_deadline(d)
                or d["spec"].get("paused")
                or cond.get("reason") in (ro.NEW_RS_AVAILABLE, ro.TIMED_OUT, ro.PAUSED)
            ):
                continue
            left = d["spec"]["progressDeadlineSeconds"] - self._elapsed(d, cond)
            soonest = left if soonest is None else min(soonest, left)
        return soonest

    def sync(self, d: JsonDict) -> None:
        rs_list = self._claim(d)
        self._check_paused_conditions(d)
        if d["spec"].get("paused") or self._is_scaling_event(d, rs_list):
            self._sync_scale_only(d, rs_list)
        elif (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            self._rollout_recreate(d, rs_list)
        else:
            self._rollout_rolling(d, rs_list)

    # ------------------------------------------------------------------ writes

    def _update_rs(self, rs: JsonDict, new: JsonDict) -> None:
        meta = rs["metadata"]
        _replace(rs, self._r.update(RS, meta["namespace"], meta["name"], new))

    def _update_status(self, d: JsonDict) -> None:
        meta = d["metadata"]
        before = self._r.find(D, meta["namespace"], meta["name"])
        old_cond = ro.condition((before or {}).get("status") or {}, ro.PROGRESSING)
        new_cond = ro.condition(d.get("status") or {}, ro.PROGRESSING)
        _replace(d, self._r.update(D, meta["namespace"], meta["name"], d, subresource="status"))
        if new_cond is not None and new_cond != old_cond:
            self._marks[meta["uid"]] = (new_cond["lastUpdateTime"], self._clock.sim())

    def _scale_rs(self, rs: JsonDict, new_scale: int, d: JsonDict) -> bool:
        old_scale = ro.replicas(rs)
        size_changed = old_scale != new_scale
        desired, maximum = ro.replicas(d), ro.replicas(d) + ro.max_surge(d)
        if (
            not size_changed
            and _ann(rs).get(ro.DESIRED_REPLICAS) == str(desired)
            and _ann(rs).get(ro.MAX_REPLICAS) == str(maximum)
        ):
            return False
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = new_scale
        set_replicas_annotations(new, desired, maximum)
        self._update_rs(rs, new)
        if size_changed:
            way = "up" if old_scale < new_scale else "down"
            self._events.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {way} replica set {rs['metadata']['name']} "
                f"from {old_scale} to {new_scale}",
                COMPONENT,
            )
        return size_changed

    # ------------------------------------------------------------------ ReplicaSets

    def _claim(self, d: JsonDict) -> list[JsonDict]:
        """ControllerRefManager: adopt matching orphans, release owned ones that stop matching."""
        sel = selectors.from_label_selector(d["spec"].get("selector"))
        uid = d["metadata"]["uid"]
        owned: list[JsonDict] = []

        def relevant(rs: JsonDict) -> bool:
            ref = ro.controller_ref(rs)
            return (ref is not None and ref.get("uid") == uid) or (
                ref is None and selectors.matches(sel, rs["metadata"].get("labels"))
            )

        for rs in self._r.list_where(RS, d["metadata"]["namespace"], relevant):
            ref = ro.controller_ref(rs)
            fits = selectors.matches(sel, rs["metadata"].get("labels"))
            if ref is not None and ref.get("uid") == uid:
                if fits:
                    owned.append(rs)
                else:
                    new = copy.deepcopy(rs)
                    new["metadata"]["ownerReferences"] = [
                        r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid
                    ] or None
                    if new["metadata"]["ownerReferences"] is None:
                        del new["metadata"]["ownerReferences"]
                    self._update_rs(rs, new)
            elif ref is None and fits:
                new = copy.deepcopy(rs)
                new["metadata"].setdefault("ownerReferences", []).append(ro.owner_reference(d))
                self._update_rs(rs, new)
                owned.append(rs)
        return owned

    def _get_all(
        self, d: JsonDict, rs_list: list[JsonDict], create: bool
    ) -> tuple[JsonDict | None, list[JsonDict]]:
        current = find_new_rs(d, rs_list)
        old = [rs for rs in rs_list if current is None or rs is not current]
        return self._get_new_rs(d, rs_list, old, create), old

    def _get_new_rs(
        self, d: JsonDict, rs_list: list[JsonDict], old_rss: list[JsonDict], create: bool
    ) -> JsonDict | None:
        existing = find_new_rs(d, rs_list)
        new_revision = str(ro.max_revision(old_rss) + 1)
        now = self._clock.now()
        if existing is not None:
            new = copy.deepcopy(existing)
            changed = set_new_rs_annotations(d, new, new_revision, exists=True)
            min_ready = d["spec"].get("minReadySeconds", 0)
            if new["spec"].get("minReadySeconds", 0) != min_ready:
                if min_ready:
                    new["spec"]["minReadySeconds"] = min_ready
                else:
                    new["spec"].pop("minReadySeconds", None)
                changed = True
            if changed:
                self._update_rs(existing, new)
            needs_update = self._set_revision(d, _ann(existing).get(ro.REVISION, ""))
            status = d.setdefault("status", {})
            if ro.has_progress_deadline(d) and ro.condition(status, ro.PROGRESSING) is None:
                msg = f'Found new replica set "{existing["metadata"]["name"]}"'
                ro.set_condition(
                    status, ro.new_condition(ro.PROGRESSING, "True", ro.FOUND_NEW_RS, msg, now)
                )
                needs_update = True
            if needs_update:
                self._update_status(d)
            return existing
        if not create:
            return None

        template = copy.deepcopy(d["spec"]["template"])
        collisions = (d.get("status") or {}).get("collisionCount")
        pod_hash = ro.template_hash(template, collisions)
        labels = {**(template["metadata"].get("labels") or {}), ro.HASH_LABEL: pod_hash}
        template["metadata"]["labels"] = labels
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[ro.HASH_LABEL] = pod_hash
        ns = d["metadata"]["namespace"]
        spec: JsonDict = {"replicas": 0, "selector": selector, "template": template}
        if d["spec"].get("minReadySeconds"):
            spec["minReadySeconds"] = d["spec"]["minReadySeconds"]
        new_rs: JsonDict = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{pod_hash}",
                "namespace": ns,
                "labels": dict(labels),
                "ownerReferences": [ro.owner_reference(d)],
            },
            "spec": spec,
        }
        spec["replicas"] = new_rs_new_replicas(d, [*old_rss, new_rs], new_rs)
        set_new_rs_annotations(d, new_rs, new_revision, exists=False)
        already_exists = False
        try:
            created = self._r.create(RS, ns, new_rs)
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
            found = self._r.get(RS, ns, new_rs["metadata"]["name"])
            if ro.is_controlled_by(found, d["metadata"]["uid"]) and ro.equal_ignore_hash(
                found["spec"]["template"], d["spec"]["template"]
            ):
                created, already_exists = found, True
            else:
                # a hash collision: bump collisionCount so the next pass hashes differently
                status = d.setdefault("status", {})
                status["collisionCount"] = status.get("collisionCount", 0) + 1
                self._update_status(d)
                return None
        if not already_exists and ro.replicas(created) > 0:
            self._events.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {created['metadata']['name']} "
                f"from 0 to {ro.replicas(created)}",
                COMPONENT,
            )
        needs_update = self._set_revision(d, new_revision)
        if not already_exists and ro.has_progress_deadline(d):
            msg = f'Created new replica set "{created["metadata"]["name"]}"'
            ro.set_condition(
                d.setdefault("status", {}),
                ro.new_condition(ro.PROGRESSING, "True", ro.NEW_RS_CREATED, msg, now),
            )
            needs_update = True
        if needs_update:
            self._update_status(d)
        rs_list.append(created)
        return created

    @staticmethod
    def _set_revision(d: JsonDict, revision: str) -> bool:
        if _ann(d).get(ro.REVISION) == revision:
            return False
        _set_ann(d, ro.REVISION, revision)
        return True

    # ------------------------------------------------------------------ strategies

    def _rollout_rolling(self, d: JsonDict, rs_list: list[JsonDict]) -> None:
        new_rs, old_rss = self._get_all(d, rs_list, True)
        if new_rs is None:
            return
        all_rss = [*old_rss, new_rs]
        if self._reconcile_new_rs(all_rss, new_rs, d):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if self._reconcile_old_rss(all_rss, _active(list(old_rss)), new_rs, d):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if deployment_complete(d, d.get("status") or {}):
            self._cleanup(old_rss, d)
        self._sync_rollout_status(all_rss, new_rs, d)

    def _reconcile_new_rs(self, all_rss: list[JsonDict], new_rs: JsonDict, d: JsonDict) -> bool:
        want = ro.replicas(d)
        if ro.replicas(new_rs) == want:
            return False
        if ro.replicas(new_rs) > want:
            return self._scale_rs(new_rs, want, d)
        return self._scale_rs(new_rs, new_rs_new_replicas(d, all_rss, new_rs), d)

    def _reconcile_old_rss(
        self, all_rss: list[JsonDict], old_rss: list[JsonDict], new_rs: JsonDict, d: JsonDict
    ) -> bool:
        if _spec_sum(old_rss) == 0:
            return False
        min_available = ro.replicas(d) - ro.max_unavailable(d)
        new_unavailable = ro.replicas(new_rs) - ro.status_int(new_rs, "availableReplicas")
        max_scaled_down = _spec_sum(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = self._cleanup_unhealthy(old_rss, d, max_scaled_down)
        scaled = self._scale_down_old(all_rss, old_rss, d)
        return cleaned + scaled > 0

    def _cleanup_unhealthy(self, old_rss: list[JsonDict], d: JsonDict, limit: int) -> int:
        total = 0
        for rs in ro.by_creation(old_rss):
            if total >= limit:
                break
            spec, available = ro.replicas(rs), ro.status_int(rs, "availableReplicas")
            if spec == 0 or spec == available:
                continue
            count = min(limit - total, spec - available)
            self._scale_rs(rs, spec - count, d)
            total += count
        return total

    def _scale_down_old(self, all_rss: list[JsonDict], old_rss: list[JsonDict], d: JsonDict) -> int:
        min_available = ro.replicas(d) - ro.max_unavailable(d)
        available = _sum(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        want = available - min_available
        total = 0
        for rs in ro.by_creation(old_rss):
            if total >= want:
                break
            if ro.replicas(rs) == 0:
                continue
            count = min(ro.replicas(rs), want - total)
            self._scale_rs(rs, ro.replicas(rs) - count, d)
            total += count
        return total

    def _rollout_recreate(self, d: JsonDict, rs_list: list[JsonDict]) -> None:
        new_rs, old_rss = self._get_all(d, rs_list, False)
        all_rss = [*old_rss, *([new_rs] if new_rs else [])]
        scaled_down = False
        for rs in _active(list(old_rss)):
            scaled_down = self._scale_rs(rs, 0, d) or scaled_down
        if scaled_down:
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if self._old_pods_running(old_rss):
            self._sync_rollout_status(all_rss, new_rs, d)
            return
        if new_rs is None:
            new_rs, old_rss = self._get_all(d, rs_list, True)
            if new_rs is None:
                return
            all_rss = [*old_rss, new_rs]
        self._scale_rs(new_rs, ro.replicas(d), d)
        if deployment_complete(d, d.get("status") or {}):
            self._cleanup(old_rss, d)
        self._sync_rollout_status(all_rss, new_rs, d)

    def _old_pods_running(self, old_rss: list[JsonDict]) -> bool:
        if _sum(old_rss, "replicas") > 0:
            return True
        uids = {rs["metadata"]["uid"] for rs in old_rss}
        namespaces = {rs["metadata"]["namespace"] for rs in old_rss}
        return any(
            (ro.controller_ref(p) or {}).get("uid") in uids
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            for ns in namespaces
            for p in self._r.list(resources.PODS, ns)
        )

    # ------------------------------------------------------------------ scaling (sync.go)

    def _is_scaling_event(self, d: JsonDict, rs_list: list[JsonDict]) -> bool:
        new_rs, old_rss = self._get_all(d, rs_list, False)
        for rs in _active([*old_rss, new_rs]):
            desired = _ann(rs).get(ro.DESIRED_REPLICAS)
            if desired is not None and desired != str(ro.replicas(d)):
                return True
        return False

    def _sync_scale_only(self, d: JsonDict, rs_list: list[JsonDict]) -> None:
        new_rs, old_rss = self._get_all(d, rs_list, False)
        self._scale(d, new_rs, old_rss)
        if d["spec"].get("paused"):
            self._cleanup(old_rss, d)
        all_rss = [*old_rss, *([new_rs] if new_rs else [])]
        status = calculate_status(all_rss, new_rs, d, self._clock.now())
        if status != (d.get("status") or {}):
            d["status"] = status
            self._update_status(d)

    def _scale(self, d: JsonDict, new_rs: JsonDict | None, old_rss: list[JsonDict]) -> None:
        want = ro.replicas(d)
        target = self._active_or_latest(new_rs, old_rss)
        if target is not None:
            if ro.replicas(target) != want:
                self._scale_rs(target, want, d)
            return
        if new_rs is not None and self._saturated(d, new_rs):
            for rs in _active(list(old_rss)):
                self._scale_rs(rs, 0, d)
            return
        if not ro.is_rolling(d):
            return
        active = _active([*old_rss, new_rs])
        allowed = want + ro.max_surge(d) if want > 0 else 0
        to_add = allowed - _spec_sum(active)
        if to_add > 0:  # larger first; among equals, newer first
            active.sort(
                key=lambda r: (ro.replicas(r), r["metadata"]["creationTimestamp"]), reverse=True
            )
        elif to_add < 0:  # larger first; among equals, older first
            active.sort(key=lambda r: (-ro.replicas(r), r["metadata"]["creationTimestamp"]))
        added = 0
        sizes: dict[str, int] = {}
        for rs in active:
            name = rs["metadata"]["name"]
            if to_add != 0:
                share = self._proportion(rs, d, to_add, added)
                sizes[name] = ro.replicas(rs) + share
                added += share
            else:
                sizes[name] = ro.replicas(rs)
        for i, rs in enumerate(active):
            name = rs["metadata"]["name"]
            if i == 0 and to_add != 0:
                sizes[name] = max(sizes[name] + to_add - added, 0)
            self._scale_rs(rs, sizes[name], d)

    @staticmethod
    def _proportion(rs: JsonDict, d: JsonDict, to_add: int, added: int) -> int:
        if ro.replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        if ro.replicas(d) == 0:
            fraction = -ro.replicas(rs)
        else:
            max_now = ro.replicas(d) + ro.max_surge(d)
            try:
                before = int(_ann(rs).get(ro.MAX_REPLICAS, ""))
            except ValueError:
                before = ro.status_int(d, "replicas")
            if before == 0:
                return 0
            fraction = _round(ro.replicas(rs) * max_now / before) - ro.replicas(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    @staticmethod
    def _active_or_latest(new_rs: JsonDict | None, old_rss: list[JsonDict]) -> JsonDict | None:
        if new_rs is None and not old_rss:
            return None
        newest_first = list(reversed(ro.by_creation(old_rss)))
        active = _active([*newest_first, new_rs])
        if not active:
            return new_rs if new_rs is not None else newest_first[0]
        return active[0] if len(active) == 1 else None

    @staticmethod
    def _saturated(d: JsonDict, rs: JsonDict) -> bool:
        want = ro.replicas(d)
        return (
            _ann(rs).get(ro.DESIRED_REPLICAS) == str(want)
            and ro.replicas(rs) == want
            and ro.status_int(rs, "availableReplicas") == want
        )

    def _cleanup(self, old_rss: list[JsonDict], d: JsonDict) -> None:
        """Delete the oldest idle ReplicaSets beyond revisionHistoryLimit."""
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        excess = len(old_rss) - limit
        if excess <= 0:
            return
        for rs in ro.by_revision(old_rss)[:excess]:
            status = rs.get("status") or {}
            if (
                status.get("replicas", 0) != 0
                or ro.replicas(rs) != 0
                or rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0)
            ):
                continue
            meta = rs["metadata"]
            try:
                self._r.delete(RS, meta["namespace"], meta["name"])
            except ApiError:
                continue

    # ------------------------------------------------------------------ status (progress.go)

    def _check_paused_conditions(self, d: JsonDict) -> None:
        if not ro.has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = ro.condition(status, ro.PROGRESSING)
        if cond is not None and cond.get("reason") == ro.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == ro.PAUSED
        now = self._clock.now()
        if d["spec"].get("paused") and not paused_cond:
            new = ro.new_condition(
                ro.PROGRESSING, "Unknown", ro.PAUSED, "Deployment is paused", now
            )
        elif not d["spec"].get("paused") and paused_cond:
            new = ro.new_condition(
                ro.PROGRESSING, "Unknown", ro.RESUMED, "Deployment is resumed", now
            )
        else:
            return
        ro.set_condition(status, new)
        self._update_status(d)

    def _sync_rollout_status(
        self, all_rss: list[JsonDict], new_rs: JsonDict | None, d: JsonDict
    ) -> None:
        now = self._clock.now()
        status = calculate_status(all_rss, new_rs, d, now)
        if not ro.has_progress_deadline(d):
            ro.remove_condition(status, ro.PROGRESSING)
        current = ro.condition(d.get("status") or {}, ro.PROGRESSING)
        complete_already = (
            status.get("replicas", 0) == status.get("updatedReplicas", 0)
            and current is not None
            and current.get("reason") == ro.NEW_RS_AVAILABLE
        )
        if ro.has_progress_deadline(d) and not complete_already:
            subject = (
                f'ReplicaSet "{new_rs["metadata"]["name"]}"'
                if new_rs is not None
                else f'Deployment "{d["metadata"]["name"]}"'
            )
            if deployment_complete(d, status):
                ro.set_condition(
                    status,
                    ro.new_condition(
                        ro.PROGRESSING,
                        "True",
                        ro.NEW_RS_AVAILABLE,
                        f"{subject} has successfully progressed.",
                        now,
                    ),
                )
            elif deployment_progressing(d, status):
                cond = ro.new_condition(
                    ro.PROGRESSING, "True", ro.RS_UPDATED, f"{subject} is progressing.", now
                )
                if current is not None:
                    if current["status"] == "True":
                        cond["lastTransitionTime"] = current["lastTransitionTime"]
                    ro.remove_condition(status, ro.PROGRESSING)
                ro.set_condition(status, cond)
            elif self._timed_out(d, status):
                ro.set_condition(
                    status,
                    ro.new_condition(
                        ro.PROGRESSING,
                        "False",
                        ro.TIMED_OUT,
                        f"{subject} has timed out progressing.",
                        now,
                    ),
                )
        status = _ordered_status(status)
        if status == (d.get("status") or {}):
            return
        d["status"] = status
        self._update_status(d)

    def _elapsed(self, d: JsonDict, cond: JsonDict) -> float:
        mark = self._marks.get(d["metadata"]["uid"])
        if mark is not None and mark[0] == cond.get("lastUpdateTime"):
            return self._clock.sim() - mark[1]
        since = parse_rfc3339(cond["lastUpdateTime"])
        return (self._clock.wall() - since).total_seconds() * self._clock.speed

    def _timed_out(self, d: JsonDict, status: JsonDict) -> bool:
        cond = ro.condition(status, ro.PROGRESSING)
        if cond is None or cond.get("reason") == ro.NEW_RS_AVAILABLE:
            return False
        if cond.get("reason") == ro.TIMED_OUT:
            return True
        return self._elapsed(d, cond) > float(d["spec"]["progressDeadlineSeconds"])
