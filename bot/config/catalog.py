"""The service catalog: which Deployment, in which namespace and cluster, a service name means.

A YAML file (ROLLBACK_BOT_CONFIG). Errors name the file, the key and what is wrong.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.domain.alerts.mapping import AlertMatch
from bot.domain.analysis.config import AutoRollbackConfig
from bot.domain.errors import ConfigError, UnknownService
from bot.domain.rollback.models import Target

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


class ServiceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: Namespace
    deployment: DeploymentName
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

    @property
    def qualified(self) -> str:
        return f"{self.namespace}/{self.deployment}"

    @property
    def target(self) -> Target:
        return Target(self.namespace, self.deployment, self.context)

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
        """A catalog name, or NAMESPACE/DEPLOYMENT (which need not be in the catalog)."""
        if argument in self.services:
            entry = self.services[argument]
            return ServiceRef(argument, entry.namespace, entry.deployment, entry.context, entry)
        namespace, slash, deployment = argument.partition("/")
        if slash:
            if not re.match(DNS_LABEL, namespace) or not re.match(DNS_SUBDOMAIN, deployment):
                raise ConfigError(
                    f"{argument!r} is not NAMESPACE/DEPLOYMENT: both must be lowercase "
                    "Kubernetes names"
                )
            for name, entry in self.services.items():
                if (entry.namespace, entry.deployment) == (namespace, deployment):
                    return ServiceRef(name, namespace, deployment, entry.context, entry)
            return ServiceRef(argument, namespace, deployment, None)
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
    by_target: dict[tuple[str | None, str, str], list[str]] = {}
    for name, entry in services.items():
        by_target.setdefault((entry.context, entry.namespace, entry.deployment), []).append(name)
    problems = []
    for (_context, namespace, deployment), names in sorted(by_target.items(), key=str):
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
            problems.append(f"key {key!r}: {error['msg']}")
    return "; ".join(problems)
