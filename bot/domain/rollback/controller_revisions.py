"""The history of a StatefulSet or a DaemonSet: its ControllerRevisions, as kubectl reads them.

Reference: kubectl pkg/polymorphichelpers/history.go (`controlledHistory`, `printHistory`) and
rollback.go (`findHistory`, `getStatefulSetPatch`, `getDaemonSetPatch`); the controllers'
`getPatch` (pkg/controller/statefulset/stateful_set_utils.go, pkg/controller/daemon/update.go).

A ControllerRevision's `data` is what the controller wrote when that template went out: the
workload's pod template, marked to replace the whole template, as a strategic merge patch:

    {"spec": {"template": {"$patch": "replace", "metadata": {...}, "spec": {...}}}}

Its `revision` is a number the controller moves up when an old template comes back (a rollback
reuses the old ControllerRevision and renumbers it), so a revision's creation time is when that
template first went out, not when it last did.

The history is read from outside and treated as hostile: a ControllerRevision that is not of the
shape the controller writes is refused with a sentence saying why, never sent to the API server.
Pure: JSON in, frozen values out.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.json_bounds import (
    json_problem,
    json_type,
    short,
)
from bot.domain.rollback.models import (
    CHANGE_CAUSE_ANNOTATION,
    Container,
    JsonDict,
    Revision,
)
from bot.domain.rollback.versions import containers_of, version_of
from bot.domain.times import parse_time

PATCH_DIRECTIVE = "$patch"
REPLACE = "replace"
# Strategic merge patch's directives: a key that is one (or starts with one) inside the template
# would be kept verbatim by the server's replace, which no controller ever writes.
_DIRECTIVE_KEYS = frozenset({PATCH_DIRECTIVE, "$retainKeys"})
_DIRECTIVE_PREFIXES = ("$setElementOrder/", "$deleteFromPrimitiveList/")

MAX_REVISION = 2**63 - 1  # ControllerRevision.revision is an int64, never negative
MAX_REVISIONS = 10_000  # ControllerRevisions looked at for one workload's history
MAX_NAME = 253


class InvalidControllerRevision(RollbackRefused):
    """A ControllerRevision (or the workload it belongs to) is not of the shape the API server
    and the controllers give: it is never used, and the sentence says why."""


@dataclass(frozen=True)
class ControllerRevisionInfo:
    """One ControllerRevision of a StatefulSet or DaemonSet, as `kubectl rollout history` lists it.

    `data` is the stored strategic merge patch (a deep copy, checked to be of the controller's
    shape); `template` is the pod template it restores: the data's `spec.template` without the
    `$patch` directive, which the server puts in place of the whole current template."""

    name: str
    namespace: str
    number: int
    created_at: datetime | None
    owner_uid: str
    owner_kind: str
    owner_name: str
    change_cause: str | None
    data: JsonDict = field(compare=False, repr=False)
    template: JsonDict = field(compare=False, repr=False)
    annotations: Mapping[str, str] = field(compare=False, repr=False)

    @property
    def version(self) -> str:
        return version_of(self.template)

    @property
    def containers(self) -> tuple[Container, ...]:
        return containers_of(self.template)


def parse_controller_revision(obj: Any) -> ControllerRevisionInfo:
    """A ControllerRevision from the API's JSON, or InvalidControllerRevision saying why not:
    not an object, no name, a revision that is not a whole number from 0 to 2^63-1, data that is
    not an object of the controller's shape (`check_revision_data`), no controller owner."""
    if not isinstance(obj, Mapping):
        raise InvalidControllerRevision(
            f"a ControllerRevision must be a JSON object, not {json_type(obj)}"
        )
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        raise InvalidControllerRevision("a ControllerRevision has no metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise InvalidControllerRevision("a ControllerRevision has no usable name")
    where = f"ControllerRevision {_quoted(name)}"
    number = _revision_number(obj.get("revision"), where)
    owner = controller_of(obj)
    if owner is None:
        raise InvalidControllerRevision(
            f"{where} has no controller owner reference: it belongs to no workload"
        )
    data = obj.get("data")
    template = check_revision_data(data, where=where)
    raw_annotations = metadata.get("annotations")
    annotations = (
        {str(k): str(v) for k, v in raw_annotations.items()}
        if isinstance(raw_annotations, Mapping)
        else {}
    )
    namespace = metadata.get("namespace")
    return ControllerRevisionInfo(
        name=name,
        namespace=namespace if isinstance(namespace, str) else "",
        number=number,
        created_at=parse_time(metadata.get("creationTimestamp")),
        owner_uid=owner[0],
        owner_kind=owner[1],
        owner_name=owner[2],
        change_cause=annotations.get(CHANGE_CAUSE_ANNOTATION),
        data=restore_patch(template),  # the data, checked to be exactly this
        template=template,
        annotations=annotations,
    )


def controller_of(obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The object's controller (uid, kind, name) as metav1.GetControllerOf finds it: the first
    owner reference marked `controller: true`; None when there is none or it has no uid."""
    metadata = obj.get("metadata")
    refs = metadata.get("ownerReferences") if isinstance(metadata, Mapping) else None
    if not isinstance(refs, list):
        return None
    for ref in refs[:MAX_REVISIONS]:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            uid, kind, name = ref.get("uid"), ref.get("kind"), ref.get("name")
            if not isinstance(uid, str) or not uid:
                return None
            return uid, kind if isinstance(kind, str) else "", name if isinstance(name, str) else ""
    return None


def workload_uid(workload: Mapping[str, Any]) -> str:
    """The workload's uid, which its ControllerRevisions' controller reference names."""
    metadata = workload.get("metadata") if isinstance(workload, Mapping) else None
    uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    if not isinstance(uid, str) or not uid:
        raise InvalidControllerRevision("the workload has no uid: its history cannot be told")
    return uid


def owned_history(workload: Mapping[str, Any], revisions: Any) -> list[ControllerRevisionInfo]:
    """The workload's history as kubectl's `controlledHistory` keeps it: of the ControllerRevisions
    listed (by the workload's selector; a List response or its `items`), those whose controller
    owner reference names the workload's uid (metav1.IsControlledBy), sorted by revision (then
    name, the API's list order). Others' revisions, and objects without a controller, are left
    out; one of the workload's own that is malformed refuses the whole history
    (InvalidControllerRevision), as kubectl's typed read of the list fails."""
    uid = workload_uid(workload)
    items: Iterable[Any] = (
        revisions.get("items") or [] if isinstance(revisions, Mapping) else revisions
    )
    owned: list[ControllerRevisionInfo] = []
    for count, item in enumerate(items):
        if count >= MAX_REVISIONS:
            raise InvalidControllerRevision(
                f"more than {MAX_REVISIONS} ControllerRevisions were listed: refusing to read "
                "a history that large"
            )
        if not isinstance(item, Mapping):
            continue
        controller = controller_of(item)
        if controller is not None and controller[0] == uid:
            owned.append(parse_controller_revision(item))
    owned.sort(key=lambda r: (r.number, r.name))
    return owned


def check_revision_data(data: Any, *, where: str = "the revision's data") -> JsonDict:
    """The pod template a ControllerRevision's data restores (a deep copy, without `$patch`), or
    InvalidControllerRevision when the data is not exactly what the controllers write: an object
    holding only `spec.template`, the template marked `"$patch": "replace"` and holding no other
    patch directive, within bounds (size, depth, numbers JSON and int64 can hold).

    kubectl would send any data as it is; anything else there (`spec.replicas`, `metadata`,
    `"$patch": "delete"`, a `$retainKeys` deep in the template) would change more than the pod
    template, or keep what the revision does not hold, so the bot refuses it."""
    if not isinstance(data, Mapping):
        raise InvalidControllerRevision(
            f"{where}: its data is {json_type(data)}, not a JSON object"
        )
    _check_bounds(data, where)
    if set(data) != {"spec"}:
        raise InvalidControllerRevision(
            f"{where}: its data holds {_keys(set(data) - {'spec'}) or 'no spec'}; the controller "
            "writes only spec.template"
        )
    spec = data["spec"]
    if not isinstance(spec, Mapping) or set(spec) != {"template"}:
        what = _keys(set(spec) - {"template"}) if isinstance(spec, Mapping) else ""
        raise InvalidControllerRevision(
            f"{where}: its data's spec holds {what or 'no template'}; the controller writes only "
            "spec.template"
        )
    template = spec["template"]
    if not isinstance(template, Mapping):
        raise InvalidControllerRevision(
            f"{where}: its spec.template is {json_type(template)}, not a JSON object"
        )
    directive = template.get(PATCH_DIRECTIVE)
    if directive != REPLACE:
        said = "no $patch" if directive is None else f"$patch {_quoted(directive)}"
        raise InvalidControllerRevision(
            f'{where}: its spec.template says {said}, not $patch "replace": applied, it would '
            "not restore that template"
        )
    restored = {k: copy.deepcopy(v) for k, v in template.items() if k != PATCH_DIRECTIVE}
    found = _directive_in(restored)
    if found is not None:
        raise InvalidControllerRevision(
            f"{where}: its spec.template holds the patch directive {found}; the controller never "
            "writes one there"
        )
    return restored


def restore_patch(template: Mapping[str, Any]) -> JsonDict:
    """What the controller's `getPatch` (and kubectl's getStatefulSetPatch/getDaemonSetPatch)
    make of a pod template: the data a ControllerRevision of it holds."""
    return {"spec": {"template": {**copy.deepcopy(dict(template)), PATCH_DIRECTIVE: REPLACE}}}


def pod_template(workload: Mapping[str, Any]) -> JsonDict:
    """The workload's `spec.template`, or InvalidControllerRevision when it has none."""
    spec = workload.get("spec") if isinstance(workload, Mapping) else None
    template = spec.get("template") if isinstance(spec, Mapping) else None
    if not isinstance(template, Mapping):
        raise InvalidControllerRevision("the workload has no pod template (spec.template)")
    return dict(template)


def template_matches(workload: Mapping[str, Any], revision: ControllerRevisionInfo) -> bool:
    """kubectl's statefulsetMatch / daemonSetMatch (and the controllers' Match): the patch made of
    the workload's current template equals the revision's stored data.

    kubectl compares bytes: both sides are Go's JSON of a map (keys sorted, numbers through
    float64), so equal bytes are equal JSON values, compared here strictly (a bool is not a
    number, a null is not a missing field; 1 and 1.0 are the same number)."""
    return json_equal(restore_patch(pod_template(workload)), revision.data)


def current_revision(
    workload: Mapping[str, Any], history: Sequence[ControllerRevisionInfo]
) -> ControllerRevisionInfo | None:
    """The revision the workload's template is now: the newest whose data matches it (the
    controller's Match); for a StatefulSet whose template matches none, the one its
    `status.updateRevision` names. None when neither is known (the controller has not yet
    written the new template's revision)."""
    template = pod_template(workload)
    expected = restore_patch(template)
    for revision in sorted(history, key=lambda r: (r.number, r.name), reverse=True):
        if json_equal(expected, revision.data):
            return revision
    status = workload.get("status")
    update = status.get("updateRevision") if isinstance(status, Mapping) else None
    if isinstance(update, str) and update:
        return next((r for r in history if r.name == update), None)
    return None


def as_revision(revision: ControllerRevisionInfo, *, current: bool) -> Revision:
    """The domain's `Revision` for a ControllerRevision, for the views that show a History:
    `replicaset` holds the ControllerRevision's name; pods are not counted per revision."""
    return Revision(
        number=revision.number,
        replicaset=revision.name,
        version=revision.version,
        containers=revision.containers,
        change_cause=revision.change_cause,
        created_at=revision.created_at,
        replicas=0,
        ready_replicas=0,
        current=current,
        template=revision.template,
        annotations=revision.annotations,
    )


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values: True is not 1, null is not absent; numbers by value (Go reads
    every number of a map as a float64, so 1 and 1.0 write the same). Iterative: no depth
    limit of its own beyond what the data's checks allow."""
    stack: list[tuple[Any, Any]] = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, bool) or isinstance(y, bool):
            if not (isinstance(x, bool) and isinstance(y, bool) and x == y):
                return False
        elif isinstance(x, int | float) and isinstance(y, int | float):
            if not _same_number(x, y):
                return False
        elif isinstance(x, str) or isinstance(y, str) or x is None or y is None:
            if type(x) is not type(y) or x != y:
                return False
        elif isinstance(x, Mapping) and isinstance(y, Mapping):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list | tuple) and isinstance(y, list | tuple):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        else:
            return False
    return True


def _same_number(x: int | float, y: int | float) -> bool:
    try:
        return float(x) == float(y)
    except OverflowError:  # beyond a float64: Go could not read it; only the same number
        return x == y


def _revision_number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        shown = _quoted(value) if isinstance(value, str) else short(value)
        raise InvalidControllerRevision(f"{where}: its revision {shown} is not a whole number")
    if not 0 <= value <= MAX_REVISION:
        raise InvalidControllerRevision(
            f"{where}: its revision {short(value)} is out of range (0 to {MAX_REVISION})"
        )
    return value


def _check_bounds(data: Mapping[str, Any], where: str) -> None:
    problem = json_problem(data)
    if problem is not None:
        raise InvalidControllerRevision(f"{where}: its data {problem}")


def _directive_in(template: Mapping[str, Any]) -> str | None:
    """The first patch directive found as a key anywhere in the template, with its path."""
    stack: list[tuple[Any, str]] = [(template, "spec.template")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in _DIRECTIVE_KEYS or key.startswith(_DIRECTIVE_PREFIXES):
                    return f"{_quoted(key)} at {path}"
                stack.append((item, f"{path}.{key}"))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
    return None


def _keys(keys: Iterable[Any]) -> str:
    return ", ".join(_quoted(k) for k in sorted(str(k) for k in keys)[:5])


def _quoted(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return json.dumps(text[:MAX_NAME])
