"""PromQL templates and how they are filled. Pure.

A template is PromQL with placeholders written like Python's `str.format`: `{namespace}`,
`{deployment}`, `{pod_template_hash}` and `{window}`; PromQL's own braces are doubled, `{{` and
`}}` (`rate(x{{namespace="{namespace}"}}[{window}])`). Anything else in single braces is refused
when the template is read, so a forgotten doubling fails at start, not as a query Prometheus
rejects mid-analysis. The parser is our own rather than `str.format_map`, which would also
accept attribute and index lookups (`{namespace.__class__}`) and format specs.

The values come from the cluster and are treated as hostile: each must be a valid Kubernetes
name (or pod-template-hash) and is escaped for a PromQL double-quoted string anyway, so no value
can close the string it sits in and add matchers of its own. They are escaped for a string, not
for a regular expression: in a `=~` matcher a `.` of a Deployment's name matches any character,
which widens the match slightly and cannot break out of it.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from bot.domain.times import format_since

PLACEHOLDERS = ("namespace", "deployment", "pod_template_hash", "window")
MAX_TEMPLATE = 4000
MAX_WINDOW_SECONDS = 7 * 86400

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# The controller writes a safe-encoded uint32 (older versions: decimal digits).
_POD_TEMPLATE_HASH = re.compile(r"[a-z0-9]{1,63}")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"}
_DOUBLE_BRACES = "write PromQL's own braces doubled, {{ and }}"


class TemplateError(ValueError):
    """A query template that cannot be filled: the message says where and why."""


def _known() -> str:
    return ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def _pieces(template: str) -> list[tuple[bool, str]]:
    """(is_placeholder, text) in order: literal PromQL, or a placeholder's name."""
    if not template.strip():
        raise TemplateError("the query is empty")
    if len(template) > MAX_TEMPLATE:
        raise TemplateError(f"the query is {len(template)} characters, over {MAX_TEMPLATE}")
    pieces: list[tuple[bool, str]] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if template.startswith(("{{", "}}"), i):
            literal.append(char)
            i += 2
        elif char == "{":
            end = template.find("}", i + 1)
            if end < 0:
                raise TemplateError(
                    f"the query has a '{{' at character {i + 1} that is never closed; "
                    f"{_DOUBLE_BRACES}"
                )
            name = template[i + 1 : end]
            if name not in PLACEHOLDERS:
                raise TemplateError(
                    f"the query has an unknown placeholder {{{name}}} at character {i + 1}: "
                    f"the placeholders are {_known()}; {_DOUBLE_BRACES}"
                )
            pieces.append((False, "".join(literal)))
            pieces.append((True, name))
            literal = []
            i = end + 1
        elif char == "}":
            raise TemplateError(
                f"the query has a stray '}}' at character {i + 1}; {_DOUBLE_BRACES}"
            )
        else:
            literal.append(char)
            i += 1
    pieces.append((False, "".join(literal)))
    return [piece for piece in pieces if piece[0] or piece[1]]


def template_placeholders(template: str) -> frozenset[str]:
    """The placeholders a template uses; `TemplateError` when it is not a valid template."""
    return frozenset(text for is_placeholder, text in _pieces(template) if is_placeholder)


def escape_label_value(value: str) -> str:
    """`value` as the inside of a PromQL double-quoted string."""
    return "".join(_ESCAPES.get(char, char) for char in value)


def promql_duration(seconds: float) -> str:
    """Whole seconds as PromQL (and Prometheus' graph page) write a range: "10m", "90s", "1h"."""
    if not math.isfinite(seconds) or seconds != int(seconds):
        raise ValueError(f"a query window is whole seconds (got {seconds})")
    if not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"a query window is 1s to 7d (got {int(seconds)}s)")
    return format_since(timedelta(seconds=int(seconds)))


def render_query(
    template: str,
    *,
    namespace: str,
    deployment: str,
    pod_template_hash: str,
    window_seconds: float,
) -> str:
    """The template filled with checked, escaped values; ValueError naming the bad one."""
    checks = (
        ("namespace", namespace, _DNS_LABEL, 63, "a Kubernetes namespace name"),
        ("deployment", deployment, _DNS_SUBDOMAIN, 253, "a Kubernetes Deployment name"),
        ("pod_template_hash", pod_template_hash, _POD_TEMPLATE_HASH, 63, "a pod-template-hash"),
    )
    for what, value, pattern, longest, meaning in checks:
        if len(value) > longest or not pattern.fullmatch(value):
            raise ValueError(f"{what} {value[:80]!r} is not {meaning}")
    values = {
        "namespace": escape_label_value(namespace),
        "deployment": escape_label_value(deployment),
        "pod_template_hash": escape_label_value(pod_template_hash),
        "window": promql_duration(window_seconds),
    }
    return "".join(values[text] if is_ph else text for is_ph, text in _pieces(template))
