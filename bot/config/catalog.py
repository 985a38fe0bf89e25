"""The service catalog: which workload (a Deployment, StatefulSet or DaemonSet), in which
namespace and cluster, a service name means.

A YAML file (ROLLBACK_BOT_CONFIG). Errors name the file, the key and what is wrong.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from bot.domain.alerts.mapping import AlertMatch
from bot.domain.analysis.config import AutoRollbackConfig
from bot.domain.errors import ConfigError, UnknownService
from bot.domain.rollback.blue_green import BlueGreenSpec
from bot.domain.rollback.models import Target, WorkloadKind

DEFAULT_HISTORY_LIMIT = 5
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Namespace = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
DeploymentName = Annotated[str, StringConstraints(pattern=DNS_SUBDOMAIN, max_length=253)]


SlackUserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,}$")]
SlackGroupId = Annotated[str, StringConstraints(pattern=r"^S[A-Z0-9]{2,}$")]
# A Slack user (U…/W…) or user group (S…) id: who may approve.
SlackPersonOrGroup = Annotated[str, StringConstraints(pattern=r"^[UWS][A-Z0-9]{2,}$")]
GitopsPolicy = Literal["suspend", "warn", "refuse"]
KindName = Literal["Deployment", "StatefulSet", "DaemonSet", "BlueGreen", "Rollout"]
LabelKey = Annotated[
    str,
    StringConstraints(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        max_length=317,
    ),
]

# How a SERVICE argument may name a kind (`statefulset/shop/orders-db`), as kubectl's TYPE does.
KIND_WORDS: dict[str, WorkloadKind] = {
    "deployment": WorkloadKind.DEPLOYMENT,
    "deployments": WorkloadKind.DEPLOYMENT,
    "deploy": WorkloadKind.DEPLOYMENT,
    "statefulset": WorkloadKind.STATEFULSET,
    "statefulsets": WorkloadKind.STATEFULSET,
    "sts": WorkloadKind.STATEFULSET,
    "daemonset": WorkloadKind.DAEMONSET,
    "daemonsets": WorkloadKind.DAEMONSET,
    "ds": WorkloadKind.DAEMONSET,
    "rollout": WorkloadKind.ROLLOUT,
    "rollouts": WorkloadKind.ROLLOUT,
    "ro": WorkloadKind.ROLLOUT,
}


class ServiceEntry(BaseModel):
    """One service. Its workload is `kind` (Deployment by default) named `name`; a Deployment may
    also be named by `deployment:`, as catalogs did before other kinds. `deployment` holds the
    name whichever key gave it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: Namespace
    deployment: DeploymentName
    kind: KindName = Field(default="Deployment", description="the workload's kind")
    # kind BlueGreen: the Service routing traffic, the key of its selector naming the colour,
    # and each colour's Deployment. `deployment` then holds the Service's name.
    service: DeploymentName | None = None
    selector_key: LabelKey | None = None
    blue: DeploymentName | None = None
    green: DeploymentName | None = None
    context: str | None = Field(default=None, description="kubeconfig context of its cluster")
    channel: str | None = Field(default=None, description="Slack channel id for its alerts")
    allowed_users: tuple[SlackUserId, ...] = Field(
        default=(), description="Slack user ids who may roll it back"
    )
    allowed_groups: tuple[SlackGroupId, ...] = Field(
        default=(), description="Slack user group ids whose members may roll it back"
    )
    reason_required: bool = False
    history_limit: int = Field(default=DEFAULT_HISTORY_LIMIT, ge=1, le=20)
    alerts: AlertMatch = Field(
        default_factory=AlertMatch, description="the label names its alerts are matched by"
    )
    approvals: int = Field(
        default=0, ge=0, le=5, description="approvals a rollback needs before it starts"
    )
    approvers: tuple[SlackPersonOrGroup, ...] = Field(
        default=(),
        description="users and user groups who may approve (default: allowed_users and groups)",
    )
    approval_minutes: float = Field(
        default=15.0, gt=0, le=24 * 60, description="how long a request waits for approvals"
    )
    gitops: GitopsPolicy = Field(
        default="warn",
        description="when GitOps would revert the rollback: suspend its auto-sync, warn, refuse",
    )
    auto_rollback: AutoRollbackConfig | None = Field(
        default=None,
        description="watch new revisions against Prometheus (`rollback-bot analyze` reads it)",
    )

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        blue_green = ("service", "selector_key", "blue", "green")
        if data.get("kind") == "BlueGreen":
            missing = [key for key in blue_green if key not in data]
            if missing:
                raise ValueError(
                    f"a BlueGreen service needs {', '.join(repr(k) for k in missing)}: the "
                    "Service, the key of its selector naming the colour, and each colour's "
                    "Deployment"
                )
            if "name" in data or "deployment" in data:
                raise ValueError(
                    "a BlueGreen service is named by its 'service' and its 'blue' and 'green' "
                    "Deployments, not by 'name' or 'deployment'"
                )
            return {**data, "deployment": data["service"]}
        extra = [key for key in blue_green if key in data]
        if extra:
            verb = "belongs" if len(extra) == 1 else "belong"
            raise ValueError(f"{', '.join(repr(k) for k in extra)} {verb} to kind BlueGreen only")
        if "name" in data:
            if "deployment" in data:
                raise ValueError("give the workload's name once: 'name' or 'deployment', not both")
            data = {("deployment" if k == "name" else k): v for k, v in data.items()}
        elif "deployment" in data and data.get("kind", "Deployment") != "Deployment":
            raise ValueError(f"a {str(data.get('kind'))[:20]} is named by 'name', not 'deployment'")
        elif "deployment" not in data:
            raise ValueError("key 'name' is missing: the workload's name")
        kind = data.get("kind")
        if kind in ("StatefulSet", "DaemonSet", "Rollout"):
            # kube-state-metrics labels their alerts `statefulset=` / `daemonset=`.
            alerts = data.get("alerts")
            if alerts is None:
                data = {**data, "alerts": {"deployment_label": kind.lower()}}
            elif isinstance(alerts, dict) and "deployment_label" not in alerts:
                data = {**data, "alerts": {**alerts, "deployment_label": kind.lower()}}
        return data

    @model_validator(mode="after")
    def _watchable(self) -> ServiceEntry:
        if self.auto_rollback is not None and self.kind != "Deployment":
            raise ValueError(
                "auto_rollback watches Deployments only (it compares their ReplicaSets' pods); "
                f"this service is a {self.kind}"
            )
        return self

    @model_validator(mode="after")
    def _switchable(self) -> ServiceEntry:
        if self.kind == "BlueGreen":
            self.blue_green  # noqa: B018 - a spec that could never be switched fails here
            # Refused rather than ignored: a switch asks no approver and reads no GitOps.
            unsupported = [k for k in ("approvals", "gitops") if k in self.model_fields_set]
            if unsupported:
                raise ValueError(
                    f"{' and '.join(repr(k) for k in unsupported)} cannot be set on a BlueGreen "
                    "service: its switch asks for no approval and does not read GitOps"
                )
        return self

    @property
    def blue_green(self) -> BlueGreenSpec | None:
        """The switch's spec, for kind BlueGreen (ValueError for one that can never switch)."""
        if self.kind != "BlueGreen":
            return None
        assert self.service and self.selector_key and self.blue and self.green
        return BlueGreenSpec(
            self.service, self.selector_key, (("blue", self.blue), ("green", self.green))
        )

    @property
    def workload_kind(self) -> WorkloadKind:
        """The kind of what is rolled back (a BlueGreen service's colours are Deployments)."""
        return WorkloadKind.DEPLOYMENT if self.kind == "BlueGreen" else WorkloadKind(self.kind)

    @property
    def restricted(self) -> bool:
        """No users and no groups configured means anyone in the workspace may roll back."""
        return bool(self.allowed_users or self.allowed_groups)


class UncatalogedPolicy(BaseModel):
    """Who may name a Deployment the catalog does not list (`NAMESPACE/DEPLOYMENT`) in Slack.
    Absent: nobody. The bot acts with its own service account, so this is never "anyone"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_users: tuple[SlackUserId, ...] = Field(default=())
    allowed_groups: tuple[SlackGroupId, ...] = Field(default=())


class BreakGlass(BaseModel):
    """Who may skip approvals, and override the migration guard, with a reason: announced in
    the thread and recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_users: tuple[SlackUserId, ...] = Field(default=())
    allowed_groups: tuple[SlackGroupId, ...] = Field(default=())


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    services: dict[str, ServiceEntry] = Field(default_factory=dict)
    uncataloged: UncatalogedPolicy | None = None
    break_glass: BreakGlass | None = None
    audit_channel: str | None = Field(
        default=None, description="Slack channel id: one line per finished rollback"
    )


@dataclass(frozen=True)
class ServiceRef:
    """A resolved SERVICE argument, with its catalog entry's policy."""

    name: str
    namespace: str
    deployment: str
    context: str | None
    entry: ServiceEntry | None = None
    kind: WorkloadKind = WorkloadKind.DEPLOYMENT

    @property
    def qualified(self) -> str:
        """NAMESPACE/NAME, with the kind before it when it is not a Deployment."""
        where = f"{self.namespace}/{self.deployment}"
        return where if self.kind is WorkloadKind.DEPLOYMENT else f"{self.kind.kubectl}/{where}"

    @property
    def target(self) -> Target:
        return Target(self.namespace, self.deployment, self.context, self.kind)

    @property
    def blue_green(self) -> BlueGreenSpec | None:
        """A blue-green service's switch (its `deployment` is then the Service's name)."""
        return self.entry.blue_green if self.entry is not None else None

    @property
    def history_limit(self) -> int:
        return self.entry.history_limit if self.entry else DEFAULT_HISTORY_LIMIT

    @property
    def reason_required(self) -> bool:
        return bool(self.entry and self.entry.reason_required)


@dataclass(frozen=True)
class Catalog:
    services: dict[str, ServiceEntry]
    source: str | None = None
    uncataloged: UncatalogedPolicy | None = None
    break_glass: BreakGlass | None = None
    audit_channel: str | None = None

    @property
    def unrestricted(self) -> tuple[str, ...]:
        """The services anyone in the workspace may roll back (no users, no groups named)."""
        return tuple(sorted(name for name, e in self.services.items() if not e.restricted))

    @classmethod
    def empty(cls) -> Catalog:
        return cls(services={})

    @classmethod
    def load(cls, path: Path) -> Catalog:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"service catalog {path}: cannot read it ({exc.strerror})") from None
        try:
            raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(f"service catalog {path}: {problem}{where}") from None
        if raw is None:
            raw = {}
        try:
            parsed = CatalogFile.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"service catalog {path}: {_describe(exc)}") from None
        problems = _conflicting_names(parsed.services)
        if problems:
            raise ConfigError(f"service catalog {path}: {'; '.join(problems)}")
        return cls(
            services=dict(parsed.services),
            source=str(path),
            uncataloged=parsed.uncataloged,
            break_glass=parsed.break_glass,
            audit_channel=parsed.audit_channel,
        )

    def resolve(self, argument: str) -> ServiceRef:
        """A catalog name, or NAMESPACE/NAME (a Deployment) or KIND/NAMESPACE/NAME (KIND as
        kubectl takes it: statefulset, sts, daemonset, ds, deployment, deploy), which need not be
        in the catalog."""
        if argument in self.services:
            entry = self.services[argument]
            return ServiceRef(
                argument,
                entry.namespace,
                entry.deployment,
                entry.context,
                entry,
                entry.workload_kind,
            )
        parts = argument.split("/")
        if len(parts) in (2, 3):
            kind = WorkloadKind.DEPLOYMENT
            if len(parts) == 3:
                word = parts[0].lower()
                if word not in KIND_WORDS:
                    raise ConfigError(
                        f"{argument[:80]!r}: {word[:40]!r} is not a kind the bot rolls back "
                        "(deployment, statefulset, daemonset or rollout, or deploy, sts, ds, ro)"
                    )
                kind = KIND_WORDS[word]
            namespace, deployment = parts[-2], parts[-1]
            if (
                not re.match(DNS_LABEL, namespace)
                or len(namespace) > 63
                or not re.match(DNS_SUBDOMAIN, deployment)
                or len(deployment) > 253
            ):
                raise ConfigError(
                    f"{argument[:80]!r} is not [KIND/]NAMESPACE/NAME: both must be lowercase "
                    "Kubernetes names"
                )
            for name, entry in self.services.items():
                if (entry.namespace, entry.deployment, entry.workload_kind) == (
                    namespace,
                    deployment,
                    kind,
                ):
                    return ServiceRef(name, namespace, deployment, entry.context, entry, kind)
            return ServiceRef(argument, namespace, deployment, None, kind=kind)
        known = tuple(sorted(self.services))
        if not known and self.source is not None:
            raise UnknownInEmptyCatalog(argument, self.source)
        suggestions = tuple(difflib.get_close_matches(argument, known, n=3, cutoff=0.6))
        raise UnknownService(argument, suggestions, known)

    def refs(self) -> tuple[ServiceRef, ...]:
        return tuple(self.resolve(name) for name in sorted(self.services))


class UnknownInEmptyCatalog(UnknownService):
    """A name asked of a catalog file that lists no services: the file is there, and empty."""

    def __init__(self, name: str, source: str) -> None:
        super().__init__(name, (), ())
        self.args = (
            f"unknown service {name!r}: the service catalog {source} has no services; "
            "add it under 'services:' there, or give NAMESPACE/DEPLOYMENT",
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML whose mappings may not repeat a key: a second `checkout:` would silently replace the
    first (a restricted entry by an unrestricted one)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[object, object]:
    seen: set[object] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_mapping,
)


def _conflicting_names(services: dict[str, ServiceEntry]) -> list[str]:
    """Two names for one Deployment must not say different things about who may roll it back."""
    by_target: dict[tuple[str | None, str, str, str], list[str]] = {}
    for name, entry in services.items():
        key = (entry.context, entry.kind, entry.namespace, entry.deployment)
        by_target.setdefault(key, []).append(name)
    problems = []
    for (_context, _kind, namespace, deployment), names in sorted(by_target.items(), key=str):
        policies = {
            (frozenset(services[n].allowed_users), frozenset(services[n].allowed_groups))
            for n in names
        }
        if len(policies) > 1:
            problems.append(
                f"services {', '.join(repr(n) for n in sorted(names))} are all "
                f"{namespace}/{deployment} but allow different users or groups"
            )
    return problems


_PATTERN_NAMES = {
    "namespace": "a valid Kubernetes name",
    "deployment": "a valid Kubernetes name",
    "allowed_users": "a Slack user id (U…)",
    "allowed_groups": "a Slack user group id (S…)",
    "on_call_group": "a Slack user group id (S…)",
    "name": "a signal name (a letter or digit, then letters, digits, spaces, . _ -; 40 at most)",
}


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            problems.append(f"key {key!r} is not known")
        elif error["type"] == "missing":
            problems.append(f"key {key!r} is missing")
        elif error["type"] == "string_pattern_mismatch":
            what = _PATTERN_NAMES.get(str(error["loc"][-1]) if error["loc"] else "")
            if what is None and len(error["loc"]) >= 2:
                what = _PATTERN_NAMES.get(str(error["loc"][-2]))
            problems.append(f"key {key!r}: {error['input']!r} is not {what or 'valid'}")
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"key {key!r}: {message}")
    return "; ".join(problems)
