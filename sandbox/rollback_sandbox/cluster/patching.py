"""The three patch types of the Kubernetes API: JSON Patch (RFC 6902), JSON Merge Patch
(RFC 7386) and strategic merge patch, with the merge keys of the built-in types served here.

Pure functions over JSON values; they never mutate their arguments.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from rollback_sandbox.cluster.errors import ApiError, bad_request

JsonDict = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class PatchFailed(ApiError):
    """A patch that is well formed but does not apply: 422 like the apiserver."""

    def __init__(self, message: str) -> None:
        super().__init__(422, message)


# ---------------------------------------------------------------- JSON Patch (RFC 6902)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchFailed(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if token == "-" and for_add:  # noqa: S105 - the JSON Pointer end-of-array token
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchFailed(f"invalid array index: {token!r}")
    idx = int(token)
    limit = len(container) if for_add else len(container) - 1
    if idx > limit:
        raise PatchFailed(f"array index out of bounds: {idx}")
    return idx


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    cur = doc
    for tok in tokens[:-1]:
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, for_add=False)]
        else:
            raise PatchFailed(f"{op} operation does not apply: doc is missing path: {path}")
    return cur


def _get(doc: Any, path: str, op: str) -> Any:
    cur = doc
    for tok in _pointer(path):
        if isinstance(cur, dict) and tok in cur:
            cur = cur[tok]
        elif isinstance(cur, list):
            cur = cur[_index(cur, tok, for_add=False)]
        else:
            raise PatchFailed(f"{op} operation does not apply: doc is missing path: {path}")
    return cur


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), value)
    else:
        raise PatchFailed(f"{op} operation does not apply: doc is missing path: {path}")
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchFailed(f"{op} operation does not apply: cannot remove the root")
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, for_add=False))
    raise PatchFailed(f"{op} operation does not apply: doc is missing key: {path}")


def apply_json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    result = copy.deepcopy(doc)
    for raw in ops:
        if not isinstance(raw, dict) or "op" not in raw:
            raise bad_request(f"invalid JSON Patch operation: {raw!r}")
        op, path = raw["op"], raw.get("path")
        if not isinstance(path, str):
            raise bad_request(f"invalid JSON Patch operation, missing path: {raw!r}")
        if op in ("add", "replace", "test") and "value" not in raw:
            raise bad_request(f"invalid JSON Patch operation, missing value: {raw!r}")
        value = copy.deepcopy(raw.get("value"))
        if op == "add":
            result = _add(result, path, value)
        elif op == "remove":
            _remove(result, path)
        elif op == "replace":
            _get(result, path, "replace")  # replace requires the target to exist
            if _pointer(path):
                _remove(result, path, "replace")
            result = _add(result, path, value, "replace")
        elif op in ("move", "copy"):
            source = raw.get("from")
            if not isinstance(source, str):
                raise bad_request(f"invalid JSON Patch operation, missing from: {raw!r}")
            moved = _remove(result, source, op) if op == "move" else _get(result, source, op)
            result = _add(result, path, copy.deepcopy(moved), op)
        elif op == "test":
            if _get(result, path, "test") != value:
                raise PatchFailed(f"testing value {path} failed: test failed")
        else:
            raise bad_request(f"Unexpected kind: {op}")
    return result


# ---------------------------------------------------------------- JSON Merge Patch (RFC 7386)


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: JsonDict = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------- strategic merge patch


@dataclass(frozen=True)
class Meta:
    """Patch metadata of one field, as Go struct tags (patchStrategy, patchMergeKey) give it."""

    fields: dict[str, Meta] = field(default_factory=dict)
    merge_key: str | None = None  # a list of maps merged by this key
    merge_primitives: bool = False  # a list of scalars merged as a set
    item: Meta | None = None  # what the list's items are

    def child(self, name: str) -> Meta:
        return self.fields.get(name, ANY)


ANY = Meta()


def _keyed(key: str, item: Meta = ANY) -> Meta:
    return Meta(merge_key=key, item=item)


_OBJECT_META = Meta(
    fields={"ownerReferences": _keyed("uid"), "finalizers": Meta(merge_primitives=True)}
)
_CONTAINER = Meta(
    fields={
        "env": _keyed("name"),
        "ports": _keyed("containerPort"),
        "volumeMounts": _keyed("mountPath"),
        "volumeDevices": _keyed("devicePath"),
    }
)
_POD_SPEC = Meta(
    fields={
        "containers": _keyed("name", _CONTAINER),
        "initContainers": _keyed("name", _CONTAINER),
        "ephemeralContainers": _keyed("name", _CONTAINER),
        "volumes": _keyed("name"),
        "imagePullSecrets": _keyed("name"),
        "hostAliases": _keyed("ip"),
        "resourceClaims": _keyed("name"),
        "schedulingGates": _keyed("name"),
        "topologySpreadConstraints": _keyed("topologyKey"),
    }
)
_TEMPLATE = Meta(fields={"metadata": _OBJECT_META, "spec": _POD_SPEC})
_CONDITIONS = Meta(fields={"conditions": _keyed("type")})

SCHEMAS: dict[str, Meta] = {
    "Deployment": Meta(
        fields={
            "metadata": _OBJECT_META,
            "spec": Meta(fields={"template": _TEMPLATE}),
            "status": _CONDITIONS,
        }
    ),
    "ReplicaSet": Meta(
        fields={
            "metadata": _OBJECT_META,
            "spec": Meta(fields={"template": _TEMPLATE}),
            "status": _CONDITIONS,
        }
    ),
    "StatefulSet": Meta(
        fields={
            "metadata": _OBJECT_META,
            "spec": Meta(fields={"template": _TEMPLATE}),
            "status": _CONDITIONS,
        }
    ),
    "DaemonSet": Meta(
        fields={
            "metadata": _OBJECT_META,
            "spec": Meta(fields={"template": _TEMPLATE}),
            "status": _CONDITIONS,
        }
    ),
    "Pod": Meta(fields={"metadata": _OBJECT_META, "spec": _POD_SPEC, "status": _CONDITIONS}),
    "Service": Meta(
        fields={"metadata": _OBJECT_META, "spec": Meta(fields={"ports": _keyed("port")})}
    ),
}
GENERIC = Meta(fields={"metadata": _OBJECT_META})

_DIRECTIVE = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


class _Deleted:
    """Marker: a `$patch: delete` map removes itself from its parent."""


_DELETED = _Deleted()


def apply_strategic_merge_patch(doc: JsonDict, patch: Any, kind: str) -> JsonDict:
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    merged = _merge_map(doc, patch, SCHEMAS.get(kind, GENERIC))
    return {} if isinstance(merged, _Deleted) else merged


def _merge_map(orig: JsonDict, patch: JsonDict, meta: Meta) -> JsonDict | _Deleted:
    directive = patch.get(_DIRECTIVE)
    body = {k: v for k, v in patch.items() if k != _DIRECTIVE}
    if directive == "delete":
        return _DELETED
    if directive == "replace":
        return _merge_map({}, body, meta)  # the patch's own content, directives resolved
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")

    result = copy.deepcopy(orig)
    orders: dict[str, list[Any]] = {}
    retain = body.pop(_RETAIN, None)
    for key, value in body.items():
        if key.startswith(_ORDER):
            if not isinstance(value, list):
                raise bad_request(f"invalid type for {key}: must be a list")
            orders[key[len(_ORDER) :]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            name = key[len(_DELETE_PRIMITIVE) :]
            if isinstance(result.get(name), list) and isinstance(value, list):
                result[name] = [x for x in result[name] if x not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub = meta.child(key)
        current = result.get(key)
        if isinstance(value, dict):
            merged = _merge_map(current if isinstance(current, dict) else {}, value, sub)
            if isinstance(merged, _Deleted):
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(current if isinstance(current, list) else [], value, sub)
        else:
            result[key] = copy.deepcopy(value)
    for name, order in orders.items():
        if isinstance(result.get(name), list):
            result[name] = _reorder(orig.get(name) or [], result[name], order, meta.child(name))
    if retain is not None:
        if not isinstance(retain, list):
            raise bad_request("invalid type for $retainKeys: must be a list")
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(orig: list[Any], patch: list[Any], meta: Meta) -> list[Any]:
    if meta.merge_primitives:
        return orig + [x for x in patch if x not in orig]
    key = meta.merge_key
    if key is None or not all(isinstance(p, dict) for p in patch):
        # atomic list: replaced whole, minus any directives it carries
        return [
            _strip(p)
            for p in patch
            if not (isinstance(p, dict) and p.get(_DIRECTIVE) in ("replace", "delete"))
        ]
    if any(p.get(_DIRECTIVE) == "replace" for p in patch):
        return [_strip(_merge_map({}, p, meta.item or ANY)) for p in patch if _DIRECTIVE not in p]
    result = copy.deepcopy(orig)
    item_meta = meta.item or ANY
    for p in patch:
        if key not in p:
            raise bad_request(f"map: {p} does not contain declared merge key: {key}")
        positions = [
            i for i, e in enumerate(result) if isinstance(e, dict) and e.get(key) == p[key]
        ]
        if p.get(_DIRECTIVE) == "delete":
            result = [e for i, e in enumerate(result) if i not in positions]
            continue
        if positions:
            merged = _merge_map(result[positions[0]], p, item_meta)
            if isinstance(merged, _Deleted):
                del result[positions[0]]
            else:
                result[positions[0]] = merged
        else:
            added = _merge_map({}, p, item_meta)
            if not isinstance(added, _Deleted):
                result.append(added)
    return result


def _reorder(server: list[Any], merged: list[Any], order: list[Any], meta: Meta) -> list[Any]:
    """Honour `$setElementOrder`: the patch's items in the given order, the server-only items
    in their server order, the two interleaved by where each sat on the server."""
    key = meta.merge_key

    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    server_ids = [ident(s) for s in server]
    left = sorted((m for m in merged if ident(m) in wanted), key=lambda m: wanted.index(ident(m)))
    right = [m for m in merged if ident(m) not in wanted]

    def server_index(item: Any) -> int:
        ident_ = ident(item)
        return server_ids.index(ident_) if ident_ in server_ids else -1

    out: list[Any] = []
    i = j = 0
    while i < len(left) and j < len(right):
        li, rj = server_index(left[i]), server_index(right[j])
        if li >= 0 and li < rj:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]


def _strip(value: Any) -> Any:
    """Drop patch directives from a value taken over whole."""
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if not (k in (_DIRECTIVE, _RETAIN) or k.startswith(("$setElementOrder/", "$delete")))
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def apply_patch(doc: JsonDict, content_type: str, patch: Any, kind: str) -> JsonDict:
    """Apply a patch of the given media type; the apiserver's dispatch on Content-Type."""
    if content_type == JSON_PATCH:
        result = apply_json_patch(doc, patch)
    elif content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("merge patch must be a JSON object")
        result = apply_merge_patch(doc, patch)
    elif content_type == STRATEGIC_MERGE_PATCH:
        result = apply_strategic_merge_patch(doc, patch, kind)
    else:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}",
        )
    if not isinstance(result, dict):
        raise PatchFailed("the patch did not result in an object")
    return result
