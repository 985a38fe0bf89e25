"""What the rollback use cases need from the outside, in the domain's words.

The adapters implement these (`bot.adapters.kube`, `bot.adapters.slack`, the CLI's console);
the wiring (`bot.entry`) passes them down. Nothing here imports an adapter.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection, Sequence
from datetime import datetime
from typing import Protocol

from bot.domain.rollback.approvals import ApprovalRequest
from bot.domain.rollback.gitops import Managed, Suspension
from bot.domain.rollback.models import (
    Deployment,
    History,
    JsonDict,
    RunInfo,
    Target,
    Thread,
    WorkloadKind,
)
from bot.domain.rollback.planning import RollbackPlan
from bot.domain.rollback.progress import Progress
from bot.domain.rollback.views import ServiceView

DEPLOYMENT = WorkloadKind.DEPLOYMENT


class Cluster(Protocol):
    """One Kubernetes cluster: its workloads (Deployments, StatefulSets, DaemonSets, by `kind`)
    and their rollback locks (named by `Target.lock_key`)."""

    @property
    def server(self) -> str:
        """The API server's address, for messages ("cluster https://…")."""
        ...

    async def ping(self) -> str:
        """The API server's version; ClusterError when it cannot be reached."""
        ...

    async def read(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> Deployment:
        """The workload now; NotFound when it does not exist."""
        ...

    async def history(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> History:
        """The workload and its revisions (a Deployment's ReplicaSets, the others'
        ControllerRevisions)."""
        ...

    async def patch(
        self,
        namespace: str,
        name: str,
        patch: Sequence[JsonDict] | JsonDict,
        *,
        dry_run: bool,
        kind: WorkloadKind = DEPLOYMENT,
        subresource: str | None = None,
    ) -> Deployment:
        """Send the rollback's patch (a JSON Patch: a Deployment's, a Rollout's undo; an object:
        a StatefulSet's or DaemonSet's strategic merge patch, a Rollout's abort on its `status`
        `subresource`); Conflict when its resourceVersion precondition fails."""
        ...

    def watch(
        self, namespace: str, name: str, *, kind: WorkloadKind = DEPLOYMENT
    ) -> AsyncGenerator[Deployment, None]:
        """The workload now, then every change, resuming across disconnects, until closed."""
        ...

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        """Take the Deployment's rollback lock for `seconds`: None when taken, else the
        holder's run."""
        ...

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None: ...

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        """Unlock, forgetting the run: its story is told."""
        ...

    async def hand_over_lock(self, namespace: str, deployment: str, me: str) -> None:
        """Unlock keeping the run, for another replica to pick up and finish telling."""
        ...

    async def unfinished_runs(self, namespace: str, me: str) -> list[RunInfo]:
        """Runs in this namespace whose replica stopped (or handed them over), to pick up."""
        ...

    async def take_over_lock(
        self, namespace: str, deployment: str, me: str, seconds: int
    ) -> RunInfo | None:
        """Take the lock of a run to pick up: the run, or None when it is not ours to take."""
        ...


class Clusters(Protocol):
    """The clusters by kubeconfig context (None: the default one)."""

    def cluster(self, context: str | None) -> Cluster: ...


class Reporter(Protocol):
    """Where a running rollback tells its story (a Slack thread, a terminal)."""

    async def started(self, run: RunInfo, plan: RollbackPlan, reason: str | None) -> None: ...

    async def picked_up(self, run: RunInfo, previous: str) -> None:
        """This replica follows a rollback that replica `previous` started and stopped telling."""
        ...

    async def handed_over(self, run: RunInfo, me: str) -> None:
        """This replica (`me`) is stopping; another one finishes telling this rollback."""
        ...

    async def not_picked_up(self, run: RunInfo, previous: str, detail: str, *, sent: bool) -> None:
        """A run picked up after replica `previous` stopped has nothing to follow: its patch
        never went out (`sent` False: nothing changed), or the Deployment moved on since."""
        ...

    async def progress(self, progress: Progress, elapsed: float) -> None: ...

    async def finished(
        self, last: Progress | None, elapsed: float, error: str | None, *, unknown: bool = False
    ) -> None:
        """The end. `unknown`: the bot lost sight of the rollout (its own state said neither
        done nor failed), so `error` says what happened to the bot, not to the rollout."""
        ...


class Reporters(Protocol):
    """A reporter for each rollback: its thread in Slack, or the terminal for the CLI."""

    def reporter(self, thread: Thread | None, target: Target) -> Reporter: ...


class VersionMessages(Protocol):
    """The versions message a rollback was asked from: locked while it runs (no buttons that
    invite a second one), shown as the cluster is after it, or when the click was stale."""

    async def lock(self, thread: Thread, view: ServiceView) -> None: ...

    async def refresh(self, thread: Thread, view: ServiceView) -> None: ...


class RunningRollbacks(Protocol):
    """Which rollback this replica runs on a Deployment, if any."""

    def running(self, target: Target) -> RunInfo | None: ...


class GroupDirectory(Protocol):
    """Slack's people: user group membership, and who is a guest."""

    async def is_guest(self, user: str) -> bool:
        """A multi- or single-channel guest of the workspace."""
        ...

    async def groups_of(
        self, user: str, among: Collection[str], *, fresh: bool = False
    ) -> frozenset[str]:
        """Which of `among` the user is in; `fresh`: asked of Slack now, not from a cache."""
        ...


class ApprovalMessages(Protocol):
    """Where a request for approval is shown and kept in step: its thread."""

    async def post_request(self, request: ApprovalRequest, approvers: Sequence[str]) -> str:
        """Post the request in its thread; its message ts."""
        ...

    async def update_request(self, request: ApprovalRequest, approvers: Sequence[str]) -> None:
        """Show the request's state now (approvals so far, approved, rejected, expired)."""
        ...

    async def announce_break_glass(
        self,
        thread: Thread,
        requester: str,
        service: str,
        to_version: str,
        reason: str,
        approvers: Sequence[str],
    ) -> None: ...


class GitOps(Protocol):
    """The GitOps tool managing a Deployment (an Argo CD Application, a Flux Kustomization or
    HelmRelease): what it would do to a rollback, and its auto-sync turned off and on again."""

    async def inspect(self, target: Target) -> Managed | None:
        """None when nothing manages the Deployment; ClusterError when it cannot be read (the
        GitOps object that cannot be read is a `Managed` with its problem)."""
        ...

    async def suspend(self, target: Target, managed: Managed, suspension: Suspension) -> Managed:
        """Turn auto-sync off, marked with `suspension`; Conflict when the object changed since
        `managed` was read."""
        ...

    async def resume(self, target: Target, managed: Managed) -> Managed:
        """Restore what the bot's mark says and remove the mark; Conflict as above."""
        ...

    async def mark_reminded(self, target: Target, managed: Managed, at: datetime) -> bool:
        """Note that the thread was reminded at `at`; False when another replica (or a person)
        changed the object since it was read."""
        ...


class GitopsNotices(Protocol):
    """Where GitOps steps are told: the rollback's Slack thread."""

    async def suspended(self, thread: Thread, managed: Managed, suspension: Suspension) -> None: ...

    async def reminder(self, thread: Thread, managed: Managed, now: datetime) -> None: ...

    async def resumed(
        self, thread: Thread, managed: Managed, actor: str, warning: str | None
    ) -> None: ...
