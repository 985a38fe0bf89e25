"""Label and field selectors, in the string syntax of `?labelSelector=` and `?fieldSelector=`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rollback_sandbox.cluster.errors import bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # != and notin also match objects without the label, as in labels.Selector
        return not present or value not in self.values


Selector = tuple[Requirement, ...]


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `in (...)` value sets."""
    parts: list[str] = []
    depth = 0
    current = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> Selector:
    reqs: list[Requirement] = []
    for part in _split_top_level(text):
        if m := _SET.match(part):
            values = tuple(v.strip() for v in m.group(4).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(3), values))
        elif m := _CMP.match(part):
            op = "!=" if m.group(3) == "!=" else "="
            reqs.append(Requirement(m.group(1), op, (m.group(4),)))
        elif m := _EXISTS.match(part):
            reqs.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {part.strip()!r}")
    return tuple(reqs)


def from_label_selector(sel: Mapping[str, Any] | None) -> Selector:
    """A metav1.LabelSelector (matchLabels/matchExpressions) as requirements."""
    if not sel:
        return ()
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or []:
        reqs.append(
            Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ()))
        )
    return tuple(reqs)


def matches(selector: Selector, labels: Mapping[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in selector)


def selector_string(sel: Mapping[str, Any] | None) -> str:
    """The canonical string form, as status.selector of a Scale shows it."""
    parts: list[str] = []
    for r in sorted(from_label_selector(sel), key=lambda r: r.key):
        if r.op == "=":
            parts.append(f"{r.key}={r.values[0]}")
        elif r.op in ("in", "notin"):
            parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
        elif r.op == "exists":
            parts.append(r.key)
        else:
            parts.append(f"!{r.key}")
    return ",".join(parts)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = field_value(obj, self.path)
        return (actual != self.value) if self.negate else (actual == self.value)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    if path == "source":  # events: the source component, as the real field set names it
        return str((obj.get("source") or {}).get("component", ""))
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def parse_field_selector(text: str, allowed: tuple[str, ...]) -> tuple[FieldRequirement, ...]:
    reqs: list[FieldRequirement] = []
    for part in (p for p in text.split(",") if p.strip()):
        for op in ("!=", "==", "="):
            if op in part:
                path, value = part.split(op, 1)
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path = path.strip()
        if path not in ("metadata.name", "metadata.namespace", *allowed):
            raise bad_request(f"field label not supported: {path}")
        reqs.append(FieldRequirement(path, value.strip(), op == "!="))
    return tuple(reqs)
