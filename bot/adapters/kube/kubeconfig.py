"""Why a kubeconfig cannot be used, in one line: the file, the line, what is wrong.

The official client loads the kubeconfig (`client.load_api_client`). When it fails, on broken
YAML or deep inside on a shape it does not expect (a `TypeError` from a list that is a number),
`explain` reads the files again, as YAML nodes that know their line, and names the first problem
the client tripped over. It describes structure and quotes names only (contexts, clusters): a
kubeconfig holds credentials, and none of its values reach the sentence.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Joined like $KUBECONFIG, as the official client splits it.
PATH_SEPARATOR = ";" if os.name == "nt" else ":"
SECTIONS = {"clusters": "cluster", "contexts": "context", "users": "user"}


class Problem(Exception):
    """One thing wrong with a file, at a line when there is one (`node`'s or `mark`'s)."""

    def __init__(
        self,
        path: Path | str,
        what: str,
        node: yaml.Node | None = None,
        *,
        mark: yaml.Mark | None = None,
    ) -> None:
        mark = mark or (node.start_mark if node is not None else None)
        where = f"kubeconfig {path}" + (f", line {mark.line + 1}" if mark is not None else "")
        self.sentence = f"{where}: {what}"
        super().__init__(self.sentence)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "null" if _is_null(node) else "a single value"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _get(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for key_node, value in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found: yaml.Node = value
            return found
    return None


def _name(node: yaml.Node | None) -> str | None:
    if isinstance(node, yaml.ScalarNode) and not _is_null(node):
        return str(node.value)
    return None


@dataclass
class _Entry:
    path: Path
    node: yaml.MappingNode  # the list item: {name: …, cluster|context|user: {…}}


@dataclass
class _Merged:
    """The files merged as the client merges them: the first entry of a name wins, and the last
    file that sets `current-context` sets it."""

    entries: dict[str, dict[str, _Entry]] = field(
        default_factory=lambda: {section: {} for section in SECTIONS}
    )
    current: tuple[str, Path, yaml.Node] | None = None


def _read(path: Path) -> yaml.MappingNode:
    """One file's document as YAML nodes, with the shape the client needs checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise Problem(path, f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise Problem(path, "it is not UTF-8 text") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        what = f"invalid YAML: {exc.problem or exc.context or 'cannot parse it'}"
        raise Problem(path, what, mark=exc.problem_mark or exc.context_mark) from None
    except yaml.YAMLError:
        raise Problem(path, "invalid YAML") from None
    if root is None or _is_null(root):
        raise Problem(path, "the file is empty")
    if not isinstance(root, yaml.MappingNode):
        raise Problem(
            path,
            f"a kubeconfig is a mapping (apiVersion, clusters, contexts, users, …), "
            f"not {_kind(root)}",
            root,
        )
    for section, body in SECTIONS.items():
        items = _get(root, section)
        if items is None or _is_null(items):
            continue
        if not isinstance(items, yaml.SequenceNode):
            raise Problem(path, f"'{section}' must be a list, not {_kind(items)}", items)
        for item in items.value:
            if not isinstance(item, yaml.MappingNode):
                raise Problem(
                    path,
                    f"each entry of '{section}' must be a mapping with 'name' and '{body}', "
                    f"not {_kind(item)}",
                    item,
                )
            if _name(_get(item, "name")) is None:
                raise Problem(path, f"an entry of '{section}' has no 'name'", item)
    return root


def _merge(paths: list[Path]) -> _Merged:
    merged = _Merged()
    for path in paths:
        root = _read(path)
        for section in SECTIONS:
            items = _get(root, section)
            for item in items.value if isinstance(items, yaml.SequenceNode) else []:
                assert isinstance(item, yaml.MappingNode)  # checked by _read
                name = _name(_get(item, "name"))
                if name is not None:
                    merged.entries[section].setdefault(name, _Entry(path, item))
        current = _get(root, "current-context")
        if current is not None:
            merged.current = (_name(current) or "", path, current)
    return merged


def _body(entry: _Entry, key: str, what: str) -> yaml.MappingNode:
    body = _get(entry.node, key)
    if body is None:
        raise Problem(entry.path, f"{what} has no '{key}' section", entry.node)
    if not isinstance(body, yaml.MappingNode):
        raise Problem(entry.path, f"{what}: '{key}' must be a mapping, not {_kind(body)}", body)
    return body


def _check_context(merged: _Merged, context: str | None, files: str) -> None:
    """The context in use, its cluster and that cluster's server, as the client looks them up."""
    if context is None:
        if merged.current is None or not merged.current[0]:
            if merged.current is None:
                raise Problem(files, "no current-context is set; pass --context")
            _, path, node = merged.current
            raise Problem(path, "current-context is empty; pass --context", node)
        name = merged.current[0]
    else:
        name = context
    entry = merged.entries["contexts"].get(name)
    if entry is None:
        if context is None and merged.current is not None:
            _, path, node = merged.current
            raise Problem(
                path, f"current-context is {name!r}, but 'contexts' has no entry of that name", node
            )
        raise Problem(files, f"there is no context {name!r}")
    body = _body(entry, "context", f"context {name!r}")
    cluster_node = _get(body, "cluster")
    cluster = _name(cluster_node)
    if cluster is None:
        raise Problem(entry.path, f"context {name!r} names no cluster", cluster_node or body)
    found = merged.entries["clusters"].get(cluster)
    if found is None:
        raise Problem(
            entry.path,
            f"context {name!r} names cluster {cluster!r}, but 'clusters' has no entry of that name",
            cluster_node,
        )
    server_of = _body(found, "cluster", f"cluster {cluster!r}")
    server = _get(server_of, "server")
    if server is None or _name(server) is None:
        raise Problem(found.path, f"cluster {cluster!r} has no 'server'", server or server_of)


def explain(files: str, context: str | None) -> str | None:
    """What is wrong with the kubeconfig `files` (joined like $KUBECONFIG) for `context` (None:
    its current context), as one sentence naming the file and the line; None when nothing
    structural is found (the caller then says what the client said)."""
    paths = [Path(p).expanduser() for p in files.split(PATH_SEPARATOR) if p]
    existing = [p for p in paths if p.exists()]
    if not existing:
        names = ", ".join(str(p) for p in paths) or "''"
        return f"kubeconfig {names}: no such file"
    try:
        _check_context(_merge(existing), context, PATH_SEPARATOR.join(map(str, existing)))
    except Problem as problem:
        return problem.sentence
    return None
