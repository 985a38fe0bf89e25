"""GitOps that would undo a rollback: which Argo CD Application or Flux Kustomization/HelmRelease
manages a Deployment, whether it would re-apply the version Git names (argo-cd #2441, flux
#2285), what the catalog's policy makes of that, and the bot's own mark on an object whose
auto-sync it suspended (read back for the "Resume auto-sync" button and the reminders, so that
every replica, and a restarted one, sees the same state). Pure: the JSON comes from
`bot.adapters.kube.gitops`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.domain.rollback.models import BOT_ANNOTATION_PREFIX, JsonDict
from bot.domain.times import kube_time, micro_time, parse_time

Policy = Literal["suspend", "warn", "refuse"]
Action = Literal["none", "warn", "suspend", "refuse"]
Kind = Literal["Application", "Kustomization", "HelmRelease"]

ARGO_TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KUSTOMIZE_LABELS = (
    "kustomize.toolkit.fluxcd.io/name",
    "kustomize.toolkit.fluxcd.io/namespace",
)
FLUX_HELM_LABELS = ("helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace")
# The bot's marks on a GitOps object whose auto-sync it suspended: what it was and where it was
# told (JSON), and when the thread was last reminded.
SUSPENDED_ANNOTATION = f"{BOT_ANNOTATION_PREFIX}gitops-suspended"
REMINDED_ANNOTATION = f"{BOT_ANNOTATION_PREFIX}gitops-reminded-at"

REMINDER_INTERVAL = timedelta(hours=4)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
NAME_MAX = 253
TRACKING_ID_MAX = 1024
SUSPENSION_MAX = 8192  # the bot's own annotation: anything longer was not written by it
TEXT_MAX = 300

TOOLS: dict[Kind, str] = {
    "Application": "Argo CD",
    "Kustomization": "Flux",
    "HelmRelease": "Flux",
}


def _name(value: object) -> str | None:
    """A Kubernetes object name from outside, or None when it is not one."""
    if isinstance(value, str) and len(value) <= NAME_MAX and DNS_SUBDOMAIN.match(value):
        return value
    return None


def _map(value: object) -> JsonDict:
    """A JSON object from outside, or an empty one when it is something else."""
    return value if isinstance(value, dict) else {}


def _text(value: object, limit: int = TEXT_MAX) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class GitopsRef:
    """What a Deployment's labels or annotations say manages it. `namespace` None: an Argo CD
    Application in the control plane's namespace (one of those the bot is configured to look
    in). `check_destination`: the reference is only the common `app.kubernetes.io/instance`
    label (Helm sets it too), so the Application counts only if it deploys to the Deployment's
    namespace."""

    kind: Kind
    name: str
    namespace: str | None
    via: str
    check_destination: bool = False

    @property
    def tool(self) -> str:
        return TOOLS[self.kind]


def managed_by(
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    kind: str = "Deployment",
    group: str = "apps",
) -> GitopsRef | None:
    """Which GitOps object manages Deployment `namespace/name`, from its metadata: Argo CD's
    tracking-id annotation (`<app>:<group>/<kind>:<namespace>/<name>`, counted only when it
    names this very Deployment, as Argo CD itself does), Flux's labels, then Argo CD's instance
    label."""
    tracking = annotations.get(ARGO_TRACKING_ANNOTATION)
    if isinstance(tracking, str) and len(tracking) <= TRACKING_ID_MAX:
        ref = _tracking_ref(tracking, namespace, name, f"{group}/{kind}")
        if ref is not None:
            return ref
    flux: tuple[tuple[Kind, tuple[str, str]], ...] = (
        ("Kustomization", FLUX_KUSTOMIZE_LABELS),
        ("HelmRelease", FLUX_HELM_LABELS),
    )
    for kind, (name_label, namespace_label) in flux:
        owner, owner_ns = _name(labels.get(name_label)), _name(labels.get(namespace_label))
        if owner is not None and owner_ns is not None:
            return GitopsRef(kind, owner, owner_ns, f"the `{name_label}` label")
    instance = _name(labels.get(ARGO_INSTANCE_LABEL))
    if instance is not None:
        return GitopsRef("Application", instance, None, f"the `{ARGO_INSTANCE_LABEL}` label", True)
    return None


def _tracking_ref(
    tracking: str, namespace: str, name: str, group_and_kind: str
) -> GitopsRef | None:
    app, sep, rest = tracking.partition(":")
    group_kind, sep2, where = rest.partition(":")
    if not (sep and sep2) or group_kind != group_and_kind or where != f"{namespace}/{name}":
        return None
    # Applications outside the control plane's namespace are tracked as `<namespace>_<name>`.
    app_ns, underscore, app_name = app.partition("_")
    if underscore:
        ns, named = _name(app_ns), _name(app_name)
        if ns is None or named is None:
            return None
        return GitopsRef("Application", named, ns, f"the `{ARGO_TRACKING_ANNOTATION}` annotation")
    named = _name(app)
    if named is None:
        return None
    return GitopsRef("Application", named, None, f"the `{ARGO_TRACKING_ANNOTATION}` annotation")


@dataclass(frozen=True)
class Suspension:
    """What the bot wrote on a GitOps object when it suspended auto-sync for a rollback: what to
    restore (`previous`: Argo CD's `spec.syncPolicy.automated`, or Flux's former `spec.suspend`),
    the thread to tell, and the version it rolled back from."""

    at: datetime
    by: str
    service: str
    namespace: str
    deployment: str
    context: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    rollback_id: str | None = None
    previous: Any = None
    bad_version: str | None = None
    revision: str | None = None  # the revision Git was at when it was suspended

    def to_json(self) -> str:
        data = {
            "at": micro_time(self.at),
            "by": self.by,
            "service": self.service,
            "namespace": self.namespace,
            "deployment": self.deployment,
            "context": self.context,
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "rollback_id": self.rollback_id,
            "previous": self.previous,
            "bad_version": self.bad_version,
            "revision": self.revision,
        }
        return json.dumps({k: v for k, v in data.items() if v is not None}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: object) -> Suspension | None:
        """The bot's annotation read back; None when it is not one the bot could have written."""
        if not isinstance(raw, str) or len(raw) > SUSPENSION_MAX:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        at = parse_time(data.get("at"))
        by, service = _text(data.get("by")), _text(data.get("service"))
        namespace, deployment = _name(data.get("namespace")), _name(data.get("deployment"))
        if at is None or not by or not service or namespace is None or deployment is None:
            return None
        previous = data.get("previous")
        if previous is not None and not isinstance(previous, dict | bool):
            return None
        return cls(
            at=at,
            by=by,
            service=service,
            namespace=namespace,
            deployment=deployment,
            context=_text(data.get("context")),
            channel=_text(data.get("channel"), 32),
            thread_ts=_text(data.get("thread_ts"), 32),
            rollback_id=_text(data.get("rollback_id"), 64),
            previous=previous,
            bad_version=_text(data.get("bad_version")),
            revision=_text(data.get("revision")),
        )


@dataclass(frozen=True)
class GitopsState:
    """A GitOps object as read now: whether it re-applies Git by itself, what it last synced,
    and the bot's mark if the bot suspended it."""

    kind: Kind
    namespace: str
    name: str
    resource_version: str
    auto_sync: bool  # Argo CD: spec.syncPolicy.automated; Flux: not spec.suspend
    self_heal: bool  # reverts a change made in the cluster by itself, without a new commit
    interval: str | None = None  # Flux: how often it reconciles
    revision: str | None = None  # the Git revision it last synced / applied
    sync_status: str | None = None  # Argo CD: Synced / OutOfSync (for this Deployment if known)
    automated: JsonDict | None = field(default=None, compare=False)  # Argo CD, to restore
    suspend: bool | None = None  # Flux's spec.suspend as it is
    suspension: Suspension | None = None
    reminded_at: datetime | None = None
    destination_namespace: str | None = None  # Argo CD: where the app deploys

    @property
    def tool(self) -> str:
        return TOOLS[self.kind]

    @property
    def label(self) -> str:
        if self.kind == "Application":
            return f"Argo CD app `{self.name}`"
        return f"Flux {self.kind} `{self.namespace}/{self.name}`"

    @property
    def suspended_by_bot(self) -> bool:
        """The bot's mark is there and auto-sync is still off (nobody turned it back on)."""
        return self.suspension is not None and not self.auto_sync


def parse_state(
    kind: Kind,
    obj: JsonDict,
    deployment_namespace: str,
    deployment: str,
    workload_kind: str = "Deployment",
    workload_group: str = "apps",
) -> GitopsState:
    """A GitOps object's JSON, read defensively: a field of the wrong shape counts as absent."""
    meta = _map(obj.get("metadata"))
    spec = _map(obj.get("spec"))
    status = _map(obj.get("status"))
    annotations = _map(meta.get("annotations"))
    suspension = Suspension.from_json(annotations.get(SUSPENDED_ANNOTATION))
    reminded_at = parse_time(annotations.get(REMINDED_ANNOTATION)) if suspension else None
    common: dict[str, Any] = {
        "kind": kind,
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
        "resource_version": str(meta.get("resourceVersion") or ""),
        "suspension": suspension,
        "reminded_at": reminded_at,
    }
    if kind == "Application":
        policy = _map(spec.get("syncPolicy"))
        automated = policy.get("automated")
        automated = automated if isinstance(automated, dict) else None
        # Argo CD 3 may keep the block and switch it off with `enabled: false`.
        on = automated is not None and automated.get("enabled", True) is not False
        sync = _map(status.get("sync"))
        destination = _map(spec.get("destination"))
        return GitopsState(
            **common,
            auto_sync=on,
            self_heal=on and automated is not None and automated.get("selfHeal") is True,
            revision=_text(sync.get("revision")),
            sync_status=_resource_sync(
                status, deployment_namespace, deployment, workload_kind, workload_group
            )
            or _text(sync.get("status")),
            automated=automated,
            destination_namespace=_text(destination.get("namespace")),
        )
    suspended = spec.get("suspend") is True
    if kind == "Kustomization":
        heals = True  # kustomize-controller corrects drift at every reconciliation
    else:
        drift = _map(spec.get("driftDetection"))
        heals = drift.get("mode") == "enabled"
    return GitopsState(
        **common,
        auto_sync=not suspended,
        self_heal=not suspended and heals,
        interval=_text(spec.get("interval"), 32),
        revision=_text(status.get("lastAppliedRevision")),
        suspend=spec.get("suspend") if isinstance(spec.get("suspend"), bool) else None,
    )


def _resource_sync(
    status: JsonDict, namespace: str, name: str, kind: str = "Deployment", group: str = "apps"
) -> str | None:
    """Argo CD's sync status of this Deployment among the app's resources."""
    resources = status.get("resources")
    if not isinstance(resources, list):
        return None
    for item in resources[:5000]:
        if (
            isinstance(item, dict)
            and item.get("kind") == kind
            and item.get("group") == group
            and item.get("namespace") == namespace
            and item.get("name") == name
        ):
            return _text(item.get("status"))
    return None


@dataclass(frozen=True)
class Managed:
    """A Deployment's GitOps manager: what its metadata names, and the object as read (None
    with `problem` when it could not be read)."""

    ref: GitopsRef
    state: GitopsState | None = None
    problem: str | None = None

    @property
    def label(self) -> str:
        if self.state is not None:
            return self.state.label
        where = f"{self.ref.namespace}/" if self.ref.namespace else ""
        if self.ref.kind == "Application":
            return f"Argo CD app `{where}{self.ref.name}`"
        return f"Flux {self.ref.kind} `{where}{self.ref.name}`"


def action(policy: Policy, managed: Managed | None) -> Action:
    """What the catalog's policy makes of the Deployment's GitOps: nothing when no GitOps
    would re-apply Git by itself (none, auto-sync off, already suspended); else the policy.
    An object that could not be read counts as one that would."""
    if managed is None:
        return "none"
    if managed.state is not None and not managed.state.auto_sync:
        return "none"
    return policy


def describe(managed: Managed) -> str:
    """One sentence for the versions message and the confirmation (names in backticks; the
    renderer escapes)."""
    state = managed.state
    label = managed.label
    if state is None:
        return (
            f"managed by {label} (found by {managed.ref.via}), which could not be read: "
            f"{managed.problem or 'unknown error'}; a rollback alone may well be reverted"
        )
    if state.suspended_by_bot and state.suspension is not None:
        s = state.suspension
        return (
            f"managed by {label}, auto-sync suspended by the bot since {kube_time(s.at)} "
            f"(rollback by {s.by}): a rollback stays until auto-sync is resumed"
        )
    if state.kind == "Application":
        if state.self_heal:
            return (
                f"managed by {label}, auto-sync with self-heal on: a rollback alone would be "
                "reverted"
            )
        if state.auto_sync:
            return (
                f"managed by {label}, auto-sync on (no self-heal): a rollback alone is reverted "
                "by the next sync, at the next commit to Git"
            )
        return f"managed by {label}, auto-sync off: a rollback stays until someone syncs the app"
    every = f" every {state.interval}" if state.interval else ""
    if not state.auto_sync:
        return f"managed by {label}, suspended: a rollback stays until it is resumed"
    if state.self_heal:
        return (
            f"managed by {label}, reconciled{every}: a rollback alone would be reverted at the "
            "next reconciliation"
        )
    return (
        f"managed by {label}, reconciled{every} without drift correction: a rollback alone is "
        "reverted by the next release upgrade"
    )


def in_git_instead(managed: Managed, service: str) -> str:
    """What to do when the catalog refuses rollbacks of a GitOps-managed service."""
    if managed.ref.kind == "Application":
        how = (
            f"revert the bad change in the Git repository of {managed.label} (or point its "
            "targetRevision at the last good commit) and let Argo CD sync"
        )
    else:
        how = f"revert the bad change in the Git repository {managed.label} reconciles from"
    return (
        f"The catalog does not let the bot roll {service} back: it is {describe(managed)}. "
        f"Instead, {how}."
    )


def suspend_patch(state: GitopsState, suspension: Suspension) -> JsonDict:
    """A merge patch turning auto-sync off as Argo CD's own rollback does (no
    `spec.syncPolicy.automated`) or suspending Flux, with the bot's mark; conditional on the
    resourceVersion read."""
    patch: JsonDict = {
        "metadata": {
            "resourceVersion": state.resource_version,
            "annotations": {SUSPENDED_ANNOTATION: suspension.to_json(), REMINDED_ANNOTATION: None},
        }
    }
    if state.kind == "Application":
        patch["spec"] = {"syncPolicy": {"automated": None}}
    else:
        patch["spec"] = {"suspend": True}
    return patch


def resume_patch(state: GitopsState) -> JsonDict:
    """A merge patch restoring exactly what the bot suspended, and removing its mark. When
    someone already turned auto-sync back on, only the mark goes."""
    patch: JsonDict = {
        "metadata": {
            "resourceVersion": state.resource_version,
            "annotations": {SUSPENDED_ANNOTATION: None, REMINDED_ANNOTATION: None},
        }
    }
    if state.suspension is None or state.auto_sync:
        return patch
    previous = state.suspension.previous
    if state.kind == "Application":
        restored: JsonDict | None = None
        if isinstance(previous, dict) and previous is not None:
            # Keys of a switched-off block that the saved one lacks are removed: exact.
            gone = {k: None for k in state.automated or {} if k not in previous}
            restored = {**gone, **previous}
        patch["spec"] = {"syncPolicy": {"automated": restored}}
    else:
        patch["spec"] = {"suspend": previous if isinstance(previous, bool) else None}
    return patch


def reminded_patch(state: GitopsState, at: datetime) -> JsonDict:
    return {
        "metadata": {
            "resourceVersion": state.resource_version,
            "annotations": {REMINDED_ANNOTATION: micro_time(at)},
        }
    }


def reminder_due(state: GitopsState, now: datetime, interval: timedelta) -> bool:
    """One reminder per `interval` while the bot's suspension stands (counted from the last
    reminder, or from the suspension)."""
    if not state.suspended_by_bot or state.suspension is None:
        return False
    if state.suspension.channel is None or state.suspension.thread_ts is None:
        return False
    last = max(state.suspension.at, state.reminded_at or state.suspension.at)
    return now - last >= interval


def resume_warning(state: GitopsState) -> str | None:
    """Why resuming may redeploy the bad version, or None when the GitOps tool says Git now
    matches what runs.

    Argo CD keeps comparing while auto-sync is off: once Git was fixed, its status moves to a
    new revision and the app (this Deployment) shows Synced with what runs after the rollback.
    Still at the revision it was suspended at, Git still names the bad version. Flux does not
    look while suspended, so nothing in the cluster tells; the warning says so."""
    suspension = state.suspension
    bad = f" ({suspension.bad_version})" if suspension and suspension.bad_version else ""
    if state.kind == "Application":
        then = suspension.revision if suspension else None
        if state.revision is not None and then is not None and state.revision == then:
            return (
                f"Git has not moved since auto-sync was suspended: {state.label} is still at "
                f"revision {state.revision}, the one that deployed the bad version{bad}; resuming "
                "auto-sync would redeploy it"
            )
        if state.sync_status == "Synced" and state.revision is not None:
            return None
        if state.revision is None or state.sync_status is None:
            return (
                f"Argo CD has not said which revision {state.label} is at: resuming may "
                f"redeploy the bad version{bad}"
            )
        return (
            f"{state.label} is at revision {state.revision} and {state.sync_status} with what "
            f"runs now: resuming applies what Git names, which is not the rolled-back version"
        )
    return (
        f"Flux does not compare while suspended, so the cluster cannot tell whether Git still "
        f"names the bad version{bad}: {state.label} last applied revision "
        f"{state.revision or 'unknown'}; resuming applies whatever Git names now"
    )


@dataclass(frozen=True)
class GitopsNote:
    """What a person is shown about a service's GitOps: its manager and the catalog's policy."""

    managed: Managed
    policy: Policy

    @property
    def action(self) -> Action:
        return action(self.policy, self.managed)

    @property
    def text(self) -> str:
        return describe(self.managed)
