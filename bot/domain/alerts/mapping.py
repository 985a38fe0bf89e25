"""Which catalog service an alert is about: from the webhook's labels, or from Alertmanager's own
Slack message. Pure: no I/O, no Slack or Kubernetes client.

Labels, in this order:
1. the entry's service label (default `service`) equal to the catalog name;
2. the entry's namespace and deployment labels (default `namespace` and `deployment`, the names
   kube-state-metrics gives its `kube_deployment_*` series) equal to the entry's;
3. otherwise the alert is unmapped: the caller ignores it, counts it and logs the reason.

Each catalog entry may rename the labels it is matched by (`alerts:` in the catalog, `AlertMatch`).

Alertmanager's Slack posts (`slack_configs`) are legacy attachments titled `[FIRING:n] …`. The
service is read from their title, text, fields, pretext and fallback with configurable regular
expressions (named groups `service`, or `namespace` and `deployment`), then with the default that
reads `service: X` / `namespace: X` / `deployment: X` lines (what the recommended template in
docs/alertmanager.md produces) and `service`/`namespace`/`deployment` fields, and last by a word
of the title that is exactly a catalog name (the default title lists the `group_by` values).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bot.domain.alerts.webhook import Alert

LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
LabelName = Annotated[str, StringConstraints(pattern=LABEL_NAME, max_length=128)]

# Alertmanager's default Slack title: "[FIRING:2] …", "[RESOLVED] …".
DEFAULT_TITLE_PATTERN = re.compile(r"^\s*\[(?P<status>FIRING|RESOLVED)(?::(?P<count>\d+))?\]")

# "service: checkout", "*service:* checkout", "• namespace = shop", "deployment: `checkout`".
_KEY_LINE = re.compile(
    r"(?im)^[ \t>•*_`-]*(?P<key>service|namespace|deployment)[*_`]*[ \t]*[:=][ \t*_`]*"
    r"(?P<value>[A-Za-z0-9][-A-Za-z0-9_.]*)"
)
_TITLE_WORD = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*")


class AlertMatch(BaseModel):
    """A catalog entry's `alerts:` section: the label names its alerts are matched by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_label: LabelName = Field(
        default="service", description="label whose value is this entry's catalog name"
    )
    namespace_label: LabelName = Field(
        default="namespace", description="label holding the Deployment's namespace"
    )
    deployment_label: LabelName = Field(
        default="deployment", description="label holding the Deployment's name"
    )


DEFAULT_MATCH = AlertMatch()


class CatalogEntry(Protocol):
    """What mapping reads of a catalog entry (`bot.config.catalog.ServiceEntry` has it)."""

    @property
    def namespace(self) -> str: ...

    @property
    def deployment(self) -> str: ...

    @property
    def alerts(self) -> AlertMatch | None: ...


@dataclass(frozen=True)
class ServiceTarget:
    """One catalog service as mapping sees it."""

    name: str
    namespace: str
    deployment: str
    match: AlertMatch = DEFAULT_MATCH


def targets_from_catalog(services: Mapping[str, CatalogEntry]) -> tuple[ServiceTarget, ...]:
    """The catalog's services (name → entry), sorted by name so mapping is deterministic. Pure."""
    return tuple(
        ServiceTarget(
            name=name,
            namespace=entry.namespace,
            deployment=entry.deployment,
            match=entry.alerts or DEFAULT_MATCH,
        )
        for name, entry in sorted(services.items())
    )


Via = Literal["service label", "namespace and deployment labels"]


@dataclass(frozen=True)
class Mapped:
    service: str
    via: Via


@dataclass(frozen=True)
class Unmapped:
    """Why an alert maps to no service: one sentence for the log."""

    reason: str


def map_labels(labels: Mapping[str, str], targets: Sequence[ServiceTarget]) -> Mapped | Unmapped:
    """The catalog service these alert labels are about, or why none. Pure."""
    by_name = [t.name for t in targets if labels.get(t.match.service_label) == t.name]
    if len(by_name) == 1:
        return Mapped(by_name[0], "service label")
    if len(by_name) > 1:
        return Unmapped(
            f"the labels name several catalog services ({', '.join(sorted(by_name))}); "
            "give each entry its own service label"
        )
    by_workload = [
        t
        for t in targets
        if labels.get(t.match.namespace_label) == t.namespace
        and labels.get(t.match.deployment_label) == t.deployment
    ]
    names = sorted({t.name for t in by_workload})
    if len(names) == 1:
        return Mapped(names[0], "namespace and deployment labels")
    if len(names) > 1:
        return Unmapped(
            f"namespace and deployment labels match several catalog services ({', '.join(names)}); "
            "give the alert a service label"
        )
    return Unmapped(_why_unmapped(labels, targets))


def _why_unmapped(labels: Mapping[str, str], targets: Sequence[ServiceTarget]) -> str:
    service_labels = sorted({t.match.service_label for t in targets} or {"service"})
    values = [f"{k}={labels[k]!r}" for k in service_labels if k in labels]
    for key in ("namespace", "deployment"):
        if key in labels and key not in service_labels:
            values.append(f"{key}={labels[key]!r}")
    if not targets:
        return "the service catalog is empty"
    if values:
        return f"no catalog service matches {', '.join(values)}"
    return (
        "the alert has no service label and no namespace and deployment labels "
        f"(labels: {', '.join(sorted(labels)) or 'none'})"
    )


@dataclass(frozen=True)
class GroupRouting:
    """A webhook group's alerts split by service; a group may span several when `group_by`
    does not include the service labels."""

    by_service: Mapping[str, tuple[Alert, ...]]
    unmapped: tuple[tuple[Alert, Unmapped], ...]

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(self.by_service)


def route_alerts(alerts: Iterable[Alert], targets: Sequence[ServiceTarget]) -> GroupRouting:
    """Each alert to its service (in order of first appearance), the rest with reasons. Pure."""
    by_service: dict[str, list[Alert]] = {}
    unmapped: list[tuple[Alert, Unmapped]] = []
    for alert in alerts:
        result = map_labels(alert.labels, targets)
        if isinstance(result, Mapped):
            by_service.setdefault(result.service, []).append(alert)
        else:
            unmapped.append((alert, result))
    return GroupRouting({k: tuple(v) for k, v in by_service.items()}, tuple(unmapped))


# -- Alertmanager's own Slack messages ----------------------------------------------------


class BadPattern(ValueError):
    """A configured message pattern that is not a usable regular expression."""


def compile_patterns(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Configured patterns, checked: each needs a `service` group or both `namespace` and
    `deployment` groups. Raises `BadPattern` naming the pattern. Pure."""
    compiled = []
    for pattern in patterns:
        try:
            regex = re.compile(pattern, re.MULTILINE)
        except re.error as exc:
            raise BadPattern(f"alert message pattern {pattern!r} is not valid: {exc}") from None
        groups = set(regex.groupindex)
        if "service" not in groups and not {"namespace", "deployment"} <= groups:
            raise BadPattern(
                f"alert message pattern {pattern!r} needs a named group (?P<service>…) or both "
                "(?P<namespace>…) and (?P<deployment>…)"
            )
        compiled.append(regex)
    return tuple(compiled)


@dataclass(frozen=True)
class SlackAlert:
    """An Alertmanager Slack message: its status, count, title, and the services it names."""

    status: Literal["firing", "resolved"]
    count: int | None
    title: str
    services: tuple[str, ...]

    @property
    def service(self) -> str | None:
        """The one service the message is about; None when none or several were found."""
        return self.services[0] if len(self.services) == 1 else None


def slack_alert(
    event: Mapping[str, Any],
    targets: Sequence[ServiceTarget],
    patterns: Sequence[re.Pattern[str]] = (),
    *,
    title_pattern: re.Pattern[str] = DEFAULT_TITLE_PATTERN,
) -> SlackAlert | None:
    """Alertmanager's Slack message (a `bot_message` event or any message dict with legacy
    `attachments`) read for its services; None when it is not an Alertmanager message. Pure.

    The first source that names a catalog service wins: configured patterns, then the default
    `key: value` lines and fields, then a title word equal to a catalog name.
    """
    attachments = [a for a in event.get("attachments") or () if isinstance(a, Mapping)]
    for attachment in attachments:
        title = _text(attachment.get("title")) or _text(attachment.get("fallback"))
        head = title_pattern.search(title)
        if head is None:
            continue
        status: Literal["firing", "resolved"] = (
            "resolved" if (head.groupdict().get("status") or "").upper() == "RESOLVED" else "firing"
        )
        count_text = head.groupdict().get("count")
        blob = _attachment_text(attachment, event)
        services = _from_patterns(blob, patterns, targets)
        if not services:
            services = _from_key_lines(blob, targets)
        if not services:
            services = _from_title_words(title[head.end() :], targets)
        return SlackAlert(
            status=status,
            count=int(count_text) if count_text else None,
            title=title.strip(),
            services=services,
        )
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _attachment_text(attachment: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    parts = [
        _text(attachment.get(key)) for key in ("title", "pretext", "text", "fallback", "footer")
    ]
    for item in attachment.get("fields") or ():
        if isinstance(item, Mapping):
            parts.append(f"{_text(item.get('title'))}: {_text(item.get('value'))}")
    parts.append(_text(event.get("text")))
    return "\n".join(p for p in parts if p)


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _resolve(
    service: str | None,
    namespace: str | None,
    deployment: str | None,
    targets: Sequence[ServiceTarget],
) -> str | None:
    if service:
        found = next((t.name for t in targets if t.name == service), None)
        if found:
            return found
    if namespace and deployment:
        names = {t.name for t in targets if (t.namespace, t.deployment) == (namespace, deployment)}
        if len(names) == 1:
            return names.pop()
    return None


def _from_patterns(
    blob: str, patterns: Sequence[re.Pattern[str]], targets: Sequence[ServiceTarget]
) -> tuple[str, ...]:
    found = []
    for pattern in patterns:
        for match in pattern.finditer(blob):
            groups = match.groupdict()
            name = _resolve(
                groups.get("service"), groups.get("namespace"), groups.get("deployment"), targets
            )
            if name:
                found.append(name)
    return _unique(found)


def _from_key_lines(blob: str, targets: Sequence[ServiceTarget]) -> tuple[str, ...]:
    """`service: X` lines name services; `namespace: X` then `deployment: Y` lines pair up."""
    found = []
    namespace: str | None = None
    deployment: str | None = None
    for match in _KEY_LINE.finditer(blob):
        key, value = match.group("key").lower(), match.group("value")
        if key == "service":
            name = _resolve(value, None, None, targets)
            if name:
                found.append(name)
            continue
        if key == "namespace":
            namespace = value
        else:
            deployment = value
        if namespace and deployment:
            name = _resolve(None, namespace, deployment, targets)
            if name:
                found.append(name)
            namespace = deployment = None
    return _unique(found)


def _from_title_words(rest: str, targets: Sequence[ServiceTarget]) -> tuple[str, ...]:
    names = {t.name for t in targets}
    hits = _unique(w for w in _TITLE_WORD.findall(rest) if w in names)
    return hits if len(hits) == 1 else ()


def message_key(group_key: str, service: str) -> str:
    """The key of one alert message: a group's alerts about one service. Always use it (not the
    bare groupKey) so a group that later spans a second service keeps its first message. Pure."""
    return json.dumps([group_key, service], ensure_ascii=False, separators=(",", ":"))
