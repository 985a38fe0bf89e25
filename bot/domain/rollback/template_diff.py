"""What a rollback changes in the pod template, in words an engineer reads at a glance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.domain.rollback.models import POD_TEMPLATE_HASH_LABEL

# Lists of objects the API merges by a key: show changes per element, not per index.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
}


@dataclass(frozen=True)
class TemplateChange:
    """One leaf that differs: a path such as `containers[checkout].image`, and both values."""

    path: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        if self.before is None:
            return f"{self.path}: (none) → {self.after}"
        if self.after is None:
            return f"{self.path}: {self.before} → (removed)"
        return f"{self.path}: {self.before} → {self.after}"


def diff_templates(current: dict[str, Any], target: dict[str, Any]) -> tuple[TemplateChange, ...]:
    """Leaf-level differences from the current pod template to the target one. Pure.

    The pod-template-hash label is the controller's bookkeeping, not a change anyone made.
    """
    changes: list[TemplateChange] = []
    _diff(_strip_hash(current), _strip_hash(target), "", changes)
    return tuple(changes)


def _strip_hash(template: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(template.get("metadata") or {})
    labels = {
        k: v for k, v in (metadata.get("labels") or {}).items() if k != POD_TEMPLATE_HASH_LABEL
    }
    metadata["labels"] = labels
    return {**template, "metadata": metadata}


def _join(prefix: str, key: str) -> str:
    # The template's own top-level "spec" adds nothing a reader needs.
    if not prefix and key == "spec":
        return ""
    return f"{prefix}.{key}" if prefix else key


def _render(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _diff(before: Any, after: Any, path: str, out: list[TemplateChange]) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            _diff(before.get(key), after.get(key), _join(path, key), out)
        return
    leaf = path.rsplit(".", 1)[-1]
    merge_key = _MERGE_KEYS.get(leaf)
    if merge_key and _keyed(before, merge_key) and _keyed(after, merge_key):
        before_by = {str(item[merge_key]): item for item in before or []}
        after_by = {str(item[merge_key]): item for item in after or []}
        for key in list(before_by) + [k for k in after_by if k not in before_by]:
            _diff(
                _without(before_by.get(key), merge_key),
                _without(after_by.get(key), merge_key),
                f"{path}[{key}]",
                out,
            )
        return
    out.append(TemplateChange(path=path, before=_render(before), after=_render(after)))


def _without(item: dict[str, Any] | None, key: str) -> Any:
    """A keyed element without its key; an env var's lone `value` stands for the element."""
    if item is None:
        return None
    rest = {k: v for k, v in item.items() if k != key}
    return rest["value"] if list(rest) == ["value"] else rest


def _keyed(value: Any, key: str) -> bool:
    return value is None or (
        isinstance(value, list) and all(isinstance(i, dict) and key in i for i in value)
    )
