"""How much JSON read from the cluster the bot agrees to look at: a pod template (a
ControllerRevision's data, a Rollout's ReplicaSet) is walked once, without recursion, and
refused when it is larger, deeper or other than what the API server stores. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 64  # a pod template nests about a dozen levels
MAX_NODES = 200_000  # values in one template
MAX_TEXT = 4_000_000  # characters of keys and strings in one template (etcd keeps 1.5 MB)
MAX_INT64 = 2**63 - 1


def json_problem(value: Any) -> str | None:
    """Why `value` is not JSON of a pod template's bounds, as the end of a sentence whose
    subject is the value ("is too large …", "holds …"); None when it is."""
    nodes = text = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES or depth > MAX_DEPTH:
            return "is too large or too deeply nested to be a pod template"
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return "has a key that is no text"
                text += len(key)
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            text += len(item)
        elif isinstance(item, bool) or item is None:
            pass
        elif isinstance(item, int):
            if not -MAX_INT64 - 1 <= item <= MAX_INT64:
                return f"holds the number {short(item)}, beyond what the API stores"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"holds {item}, which is not a JSON number"
        else:
            return f"holds {json_type(item)}, which is not JSON"
        if text > MAX_TEXT:
            return "is too large to be a pod template"
    return None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def short(value: Any) -> str:
    text = str(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge number"
    return text[:40]
