"""What a rollback changes in the pod template, in words an engineer reads at a glance."""

from __future__ import annotations

import json
from collections.abc import Sequence
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


CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# Where a value may come from a Secret, or be one put in plain text: only names are shown.
ENV_FIELDS = ("env", "envFrom")
VALUE_TEXT = 200  # one value shown in a preview line


@dataclass(frozen=True)
class TemplateChange:
    """One leaf that differs: a path such as `containers[checkout].image`, and both values.

    `container` ("containers[checkout]") and `field` ("image", "env[LOG_LEVEL]",
    "resources.limits.memory") say where it is, for the preview; `env`: the env var's name.
    Env values are never shown by `str()` nor by the preview: a plain value may be a secret
    someone put in plain text, and a value from a secretKeyRef is a Secret's."""

    path: str
    before: str | None
    after: str | None
    container: str | None = None
    field: str = ""
    env: str | None = None

    @property
    def hides_values(self) -> bool:
        """Its values may hold env values: a whole container, or its env / envFrom."""
        if self.path.split("[", 1)[0] in CONTAINER_LISTS and not self.field:
            return True
        return self.field.split("[", 1)[0].split(".", 1)[0] in ENV_FIELDS

    def __str__(self) -> str:
        if self.hides_values:
            what = (
                "added" if self.before is None else "removed" if self.after is None else "changed"
            )
            return f"{self.path}: {what} (values not shown)"
        if self.before is None:
            return f"{self.path}: (none) → {self.after}"
        if self.after is None:
            return f"{self.path}: {self.before} → (removed)"
        return f"{self.path}: {self.before} → {self.after}"


@dataclass(frozen=True)
class ContainerPreview:
    """What a rollback changes in one container (or, `container` None, the rest of the pod):
    `status` "added", "removed" or "changed", and one plain-text line per change."""

    container: str | None
    status: str
    lines: tuple[str, ...]

    @property
    def title(self) -> str:
        """ "checkout", "migrate (init container, added)", "pod"."""
        if self.container is None:
            return "pod"
        kind, _, name = self.container.partition("[")
        notes = {"initContainers": ["init container"], "ephemeralContainers": ["ephemeral"]}.get(
            kind, []
        )
        if self.status != "changed":
            notes.append(self.status)
        return name.removesuffix("]") + (f" ({', '.join(notes)})" if notes else "")


def _value(value: str | None) -> str:
    if value is None:
        return "(none)"
    return value if len(value) <= VALUE_TEXT else value[: VALUE_TEXT - 1] + "…"


def _image_of(rendered: str | None) -> str | None:
    """The image of a whole container rendered as JSON (added or removed), if it has one."""
    try:
        data = json.loads(rendered) if rendered else None
    except ValueError:
        return None
    image = data.get("image") if isinstance(data, dict) else None
    return image if isinstance(image, str) else None


def preview(changes: Sequence[TemplateChange]) -> tuple[ContainerPreview, ...]:
    """The changes as a person checks them before rolling back, container by container: the
    image, env var names added, removed or changed (never their values), resources,
    command/args, then anything else; the pod's own changes (labels, volumes, …) last. Pure."""
    order: list[str | None] = []
    by: dict[str | None, list[TemplateChange]] = {}
    for change in changes:
        if change.container not in by:
            order.append(change.container)
            by[change.container] = []
        by[change.container].append(change)
    containers = [c for c in order if c is not None]
    result = [_container_preview(name, by[name]) for name in containers]
    if None in by:
        lines = tuple(
            f"{c.path}: {_value(c.before)} → {_value(c.after)}" if not c.hides_values else str(c)
            for c in by[None]
        )
        result.append(ContainerPreview(None, "changed", lines))
    return tuple(result)


def _container_preview(name: str, changes: list[TemplateChange]) -> ContainerPreview:
    whole = next((c for c in changes if not c.field), None)
    if whole is not None and (whole.before is None or whole.after is None):
        added = whole.before is None
        image = _image_of(whole.after if added else whole.before)
        shown = (f"image {_value(image)}",) if image else ()
        return ContainerPreview(name, "added" if added else "removed", shown)
    lines: list[str] = []
    env: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
    rest: list[TemplateChange] = []
    for change in changes:
        if change.env is not None:
            kind = (
                "added"
                if change.before is None and change.field == f"env[{change.env}]"
                else "removed"
                if change.after is None and change.field == f"env[{change.env}]"
                else "changed"
            )
            if change.env not in env[kind]:
                env[kind].append(change.env)
        elif change.field == "image":
            lines.insert(0, f"image {_value(change.before)} → {_value(change.after)}")
        else:
            rest.append(change)
    for kind in ("added", "removed", "changed"):
        if env[kind]:
            lines.append(f"env {kind}: {', '.join(env[kind])} (values not shown)")
    for prefix in ("resources", "command", "args"):
        for change in [c for c in rest if c.field.split(".", 1)[0] == prefix]:
            lines.append(f"{change.field}: {_value(change.before)} → {_value(change.after)}")
            rest.remove(change)
    for change in rest:
        if change.hides_values:
            lines.append(f"{change.field or 'container'}: changed (values not shown)")
        else:
            lines.append(f"{change.field}: {_value(change.before)} → {_value(change.after)}")
    return ContainerPreview(name, "changed", tuple(lines))


def diff_templates(current: dict[str, Any], target: dict[str, Any]) -> tuple[TemplateChange, ...]:
    """Leaf-level differences from the current pod template to the target one. Pure.

    The pod-template-hash label is the controller's bookkeeping, not a change anyone made.
    """
    changes: list[TemplateChange] = []
    _diff(_strip_hash(current), _strip_hash(target), "", changes, ())
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


# Where a change is, segment by segment: a field's name, and the key of a keyed list's element.
_Segments = tuple[tuple[str, str | None], ...]


def _located(path: str, before: Any, after: Any, segments: _Segments) -> TemplateChange:
    container: str | None = None
    inner = segments
    if segments and segments[0][0] in CONTAINER_LISTS and segments[0][1] is not None:
        container, inner = f"{segments[0][0]}[{segments[0][1]}]", segments[1:]
    field = ".".join(name if key is None else f"{name}[{key}]" for name, key in inner)
    env = inner[0][1] if container and inner and inner[0][0] == "env" else None
    return TemplateChange(
        path=path,
        before=_render(before),
        after=_render(after),
        container=container,
        field=field,
        env=env,
    )


def _diff(
    before: Any, after: Any, path: str, out: list[TemplateChange], segments: _Segments
) -> None:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            child = segments if not path and key == "spec" else (*segments, (key, None))
            _diff(before.get(key), after.get(key), _join(path, key), out, child)
        return
    leaf = path.rsplit(".", 1)[-1]
    merge_key = _MERGE_KEYS.get(leaf)
    if merge_key and _keyed(before, merge_key) and _keyed(after, merge_key):
        before_by = {str(item[merge_key]): item for item in before or []}
        after_by = {str(item[merge_key]): item for item in after or []}
        for key in list(before_by) + [k for k in after_by if k not in before_by]:
            element = (*segments[:-1], (segments[-1][0], key)) if segments else ()
            _diff(
                _without(before_by.get(key), merge_key),
                _without(after_by.get(key), merge_key),
                f"{path}[{key}]",
                out,
                element,
            )
        return
    out.append(_located(path, before, after, segments))


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
