"""The CLI's commands: status, history and rollback, for people (tables) and scripts (JSON).

Thin: resolve the service, call the engine, render. Errors are one sentence and an exit code.
Everything shown to a person that came from outside (the cluster, the catalog, the kubeconfig)
goes through `text.plain` and is printed as `Text`, never as markup: literal, one line, no
terminal controls. `-o json` prints the values exactly.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import pwd
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from bot.config.catalog import Catalog, ServiceRef
from bot.domain.errors import (
    ConfigError,
    RollbackBotError,
    RollbackRefused,
    RolloutFailed,
    RolloutTimedOut,
    UnknownService,
)
from bot.domain.rollback.migrations import (
    MigrationRefused,
    history_limit_note,
    migration_note,
    mutable_images_note,
)
from bot.domain.rollback.models import Deployment, History, Revision, Target, WorkloadKind
from bot.domain.rollback.planning import RollbackCause, RollbackPlan, plan_abort, plan_rollback
from bot.domain.rollback.progress import Phase
from bot.domain.rollback.template_diff import preview
from bot.domain.rollback.workload_undo import strategy_notes
from bot.domain.times import ago, format_duration, kube_time
from bot.entry.cli.text import plain
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.ports import Cluster
from bot.usecases.rollback.views import blue_green_refusal

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from bot.usecases.rollback.requests import RollbackRequest, StartResult
from bot.usecases.rollback.runner import RolloutRunner

# Errors exit with their class's code (bot.domain.errors); these are the plain outcomes.
EXIT_OK = 0
WAIT_POLL_SECONDS = 2.0  # how often `--wait` asks again whether the lock is free
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_REFUSED = RollbackRefused.exit_code


class UsageError(RollbackBotError):
    """The command line names nothing that can be used: an unknown service, a malformed
    NAMESPACE/DEPLOYMENT. Exits 2, as argparse does for the arguments it checks itself."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class RollbackOptions:
    to_revision: int | None
    dry_run: bool
    yes: bool
    reason: str | None
    timeout: float
    wait: float = 0.0  # how long to wait for someone else's rollback to end first
    # Break glass past the migration guard: recorded, with --reason and the service name typed
    # (at the prompt, or --confirm-service NAME without a terminal).
    override_migration_guard: bool = False
    confirm_service: str | None = None
    # `rollback-bot abort`: an Argo Rollout's update aborted, its traffic back to stable.
    abort: bool = False


WITH_CONTROLLER_REVISIONS = (WorkloadKind.STATEFULSET, WorkloadKind.DAEMONSET)
# The kinds whose revisions are ReplicaSets, each with its own pods to count.
COUNTED = (WorkloadKind.DEPLOYMENT, WorkloadKind.ROLLOUT)


def _ago(when: datetime | None, now: datetime) -> str:
    return ago(when, now, unknown="?")


def _iso(when: datetime | None) -> str | None:
    return kube_time(when) if when else None


def deployment_json(ref: ServiceRef, server: str, deployment: Deployment) -> dict[str, Any]:
    status = deployment.status
    return {
        "service": ref.name,
        "namespace": deployment.namespace,
        "deployment": deployment.name,
        "kind": deployment.kind.value,
        "cluster": server,
        "revision": deployment.revision,
        "version": deployment.version,
        "images": {c.name: c.image for c in deployment.containers},
        "changeCause": deployment.change_cause,
        "paused": deployment.paused,
        **(
            {}
            if deployment.kind is WorkloadKind.DEPLOYMENT
            else {
                "updateStrategy": deployment.update_strategy or None,
                "partition": deployment.partition,
            }
        ),
        "replicas": {
            "desired": deployment.desired_replicas,
            "current": status.replicas,
            "updated": status.updated_replicas,
            "ready": status.ready_replicas,
            "available": status.available_replicas,
        },
        "conditions": [
            {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
            for c in status.conditions
        ],
    }


def revision_json(revision: Revision, history: History) -> dict[str, Any]:
    return {
        "revision": revision.number,
        "current": revision.current,
        "version": revision.version,
        # a Deployment's ReplicaSet, a StatefulSet's or DaemonSet's ControllerRevision
        "replicaSet": revision.replicaset,
        "images": {c.name: c.image for c in revision.containers},
        "changeCause": revision.change_cause,
        "createdAt": _iso(revision.created_at),
        "wentOutAt": _iso(history.went_out_of(revision)),
        "replicas": revision.replicas,
        "readyReplicas": revision.ready_replicas,
    }


class Cli:
    def __init__(
        self,
        catalog: Catalog,
        engine: RollbackEngine,
        runner: RolloutRunner | None,
        console: Console | None = None,
        *,
        kubeconfig: str | None = None,
        default_context: str | None = None,
    ) -> None:
        self._catalog = catalog
        self._engine = engine
        self._runner = runner
        self._kubeconfig = kubeconfig
        self._default_context = default_context
        if console is not None:
            self.console = console

    @cached_property
    def console(self) -> Console:
        # Built when a person is shown something: `-o json` never pays for rich.
        return plain_console()

    def _target(self, service: str) -> tuple[ServiceRef, Target, Cluster]:
        try:
            ref = self._catalog.resolve(service)
        except (UnknownService, ConfigError) as exc:  # about the SERVICE argument, not a file
            raise UsageError(str(exc)) from None
        if ref.blue_green is not None:
            raise UsageError(blue_green_refusal(ref.name).replace("`", ""))
        return ref, ref.target, self._engine.cluster(ref.target)

    # -- status ----------------------------------------------------------------------------

    async def status(self, service: str, output: str) -> int:
        ref, target, cluster = self._target(service)
        deployment = await self._engine.status(target)
        if output == "json":
            print(json.dumps(deployment_json(ref, cluster.server, deployment), indent=2))
            return EXIT_OK
        status = deployment.status
        say = self._say
        self._heading(ref, cluster.server)
        say(f"  version   {plain(deployment.version)} (revision {deployment.revision or '?'})")
        for container in deployment.containers:
            say(f"  image     {plain(container.name)}: {plain(container.image)}")
        if deployment.change_cause:
            say(f"  cause     {plain(deployment.change_cause)}")
        say(
            f"  replicas  {status.ready_replicas}/{deployment.desired_replicas} ready, "
            f"{status.updated_replicas} updated, {status.available_replicas} available",
            ("  (paused)", "yellow") if deployment.paused else "",
        )
        for cond in status.conditions:
            say(
                f"  {plain(cond.type):<9} {plain(cond.status)} {plain(cond.reason)}: "
                f"{plain(cond.message)}"
            )
        if deployment.kind is not WorkloadKind.DEPLOYMENT:
            say(f"  strategy  {plain(deployment.update_strategy or 'none')}")
            for note in strategy_notes(deployment):
                say(("  note", "yellow"), f"  {plain(note)}")
        return EXIT_OK

    def _say(self, *parts: str | tuple[str, str]) -> None:
        """One line for people, as `Text`: what came from outside must be `plain` already."""
        from rich.text import Text

        self.console.print(Text.assemble(*parts))

    def _heading(self, ref: ServiceRef, server: str) -> None:
        self._say((plain(ref.name), "bold"), f" ({plain(ref.qualified)}) on {plain(server)}")

    # -- history ---------------------------------------------------------------------------

    async def history(self, service: str, output: str) -> int:
        ref, target, cluster = self._target(service)
        history = await self._engine.history(target)
        if output == "json":
            print(
                json.dumps(
                    {
                        **deployment_json(ref, cluster.server, history.deployment),
                        "revisions": [revision_json(r, history) for r in history.revisions],
                    },
                    indent=2,
                )
            )
            return EXIT_OK
        self.console.print(self._history_table(ref, history))
        return EXIT_OK

    def _history_table(self, ref: ServiceRef, history: History) -> Table:
        from rich.table import Table
        from rich.text import Text

        now = datetime.now(UTC)
        title = Text(f"{plain(ref.name)} ({plain(ref.qualified)})")
        table = Table(title=title, title_justify="left")
        for column in ("REVISION", "VERSION", "IMAGES", "WENT OUT", "READY", "CHANGE-CAUSE"):
            table.add_column(column)
        for r in history.revisions:
            table.add_row(
                f"{r.number}{' *' if r.current else ''}",
                Text(plain(r.version)),
                Text("\n".join(plain(f"{c.name}={c.image}") for c in r.containers)),
                _ago(history.went_out_of(r), now),
                # A ControllerRevision counts no pods of its own.
                f"{r.ready_replicas}/{r.replicas}" if history.deployment.kind in COUNTED else "-",
                Text(plain(r.change_cause or "")),
            )
        table.caption = "* deployed now"
        return table

    # -- rollback --------------------------------------------------------------------------

    async def rollback(self, service: str, options: RollbackOptions) -> int:
        ref, target, cluster = self._target(service)
        actor = cli_actor(self._kubeconfig, target.context or self._default_context)
        cause = RollbackCause(actor=actor, via="CLI", reason=options.reason, at=datetime.now(UTC))
        override = options.override_migration_guard
        if override and not options.reason:
            raise UsageError("--override-migration-guard needs --reason: it is recorded")
        history = await self._engine.history(target)
        try:
            plan = (
                plan_abort(history)
                if options.abort
                else plan_rollback(history, options.to_revision, cause, override=override)
            )
        except MigrationRefused as exc:
            raise RollbackRefused(
                f"not rolled back: {exc}; to break glass (recorded): --override-migration-guard "
                "--reason TEXT"
            ) from None
        self._show_plan(ref, cluster.server, plan, history)
        if plan.action == "skip":
            self._say(plain(plan.summary))
            return EXIT_OK
        if override and plan.overridden is None:
            self._say("the migration guard does not block this rollback: nothing to override")
        if options.dry_run:
            await self._engine.apply(target, plan, cause, dry_run=True)
            self.console.print(
                "[green]dry run:[/] the API server accepted the rollback patch (dryRun=All); "
                "nothing was changed"
            )
            return EXIT_OK
        if not options.yes:
            if not sys.stdin.isatty():
                self.console.print(
                    "[red]refused:[/] confirmation needed; run in a terminal or pass --yes"
                )
                return EXIT_REFUSED
            from rich.prompt import Confirm
            from rich.text import Text

            question = (
                f"Abort the update of {plain(ref.name)} (traffic back to "
                f"{plain(plan.target.version)})?"
                if plan.abort
                else f"Roll back {plain(ref.name)} to {plain(plan.target.version)}?"
            )
            if not Confirm.ask(Text(question), console=self.console):
                self.console.print("not rolled back")
                return EXIT_REFUSED
        if plan.overridden is not None:
            self._confirm_override(ref, options.confirm_service)
        if self._runner is None:
            raise RollbackRefused("this command cannot roll back")  # the wiring always gives one
        from bot.usecases.rollback.requests import (
            RollbackRequest,  # only a rollback loads the runner
        )

        request = RollbackRequest(
            service=ref.name,
            target=target,
            target_replicaset=plan.target.replicaset,
            target_revision=plan.target.number,
            target_version=plan.target.version,
            snapshot=plan.snapshot,
            actor=cause.actor,
            via="CLI",
            reason=options.reason,
            override=plan.overridden is not None,
            gitops=ref.entry.gitops if ref.entry else "warn",
            abort=plan.abort,
        )
        result = await self._start_when_free(request, options.wait)
        if result.outcome == "skipped":
            self._say(plain(result.message))
            return EXIT_OK
        if result.completion is None:
            raise RollbackRefused(f"not rolled back: {result.message}{_busy_hint(result)}")
        outcome = await result.completion
        elapsed = format_duration(outcome.elapsed)
        if outcome.succeeded and outcome.last and outcome.last.phase is Phase.PODS_TO_DELETE:
            self._say(
                ("template rolled back", "yellow"),
                f" {plain(ref.name)} to {plain(plan.target.version)} in {elapsed}; its update "
                "strategy is OnDelete, so every pod keeps its version until it is deleted: "
                f"kubectl -n {target.namespace} delete pod <pod>",
            )
            return EXIT_OK
        if outcome.succeeded and plan.abort:
            self._say(
                ("aborted", "green"),
                f" the update of {plain(ref.name)}: its traffic is back on "
                f"{plain(plan.target.version)} ({elapsed})",
            )
            return EXIT_OK
        if outcome.succeeded:
            self._say(
                ("rolled back", "green"),
                f" {plain(ref.name)} to {plain(plan.target.version)} in {elapsed}",
            )
            return EXIT_OK
        counts = f" at {outcome.last.counts}" if outcome.last else ""
        follow = f"follow it with: {target.status_command}"
        if outcome.timed_out:
            # Only the waiting ended: the patch is in and the rollout goes on.
            raise RolloutTimedOut(
                f"rolled back {ref.name} to {plan.target.version}, and the rollout goes on: "
                f"stopped waiting after {elapsed}{counts}; {follow}"
            )
        if outcome.unknown:
            raise RollbackBotError(
                f"lost sight of the rollout of {ref.name} after {elapsed}{counts}: "
                f"{outcome.error}; it may well go on: {follow}"
            )
        raise RolloutFailed(
            f"rollout of {ref.name} failed after {elapsed}: {outcome.error}{counts}"
        )

    async def _start_when_free(self, request: RollbackRequest, wait: float) -> StartResult:
        """Start the rollback; while someone else's holds the lock, try again for up to `wait`
        seconds. Each try reads the Deployment afresh: if the other rollback changed it, this
        one is refused as stale rather than rolled over it."""
        assert self._runner is not None
        deadline = time.monotonic() + wait
        told = False
        while True:
            result = await self._runner.start(request)
            remaining = deadline - time.monotonic()
            if result.outcome != "running" or remaining <= 0:
                return result
            if not told:
                self._say(f"waiting up to {format_duration(remaining)}: {plain(result.message)}")
                told = True
            await asyncio.sleep(min(WAIT_POLL_SECONDS, remaining))

    def _confirm_override(self, ref: ServiceRef, typed: str | None) -> None:
        """The service's name, typed: at the prompt, or given as --confirm-service."""
        if typed is None:
            if not sys.stdin.isatty():
                raise RollbackRefused(
                    "overriding the migration guard needs the service's name typed: run in a "
                    f"terminal or pass --confirm-service {ref.name}"
                )
            from rich.prompt import Prompt
            from rich.text import Text

            question = f"Type the service's name ({plain(ref.name)}) to override the guard"
            typed = Prompt.ask(Text(question), console=self.console)
        if typed.strip() != ref.name:
            raise RollbackRefused(
                f"not rolled back: the name typed is not {ref.name}; the migration guard stays"
            )

    def _show_plan(
        self, ref: ServiceRef, server: str, plan: RollbackPlan, history: History
    ) -> None:
        say = self._say
        self._heading(ref, server)
        say(f"  from  {plain(plan.from_version)} (revision {plan.from_revision or '?'})")
        say(
            f"  to    {plain(plan.target.version)} (revision {plan.target.number}, "
            f"{'ControllerRevision' if plan.kind in WITH_CONTROLLER_REVISIONS else 'ReplicaSet'} "
            f"{plain(plan.target.replicaset)})"
        )
        if plan.target.change_cause:
            say(f"  which was: {plain(plan.target.change_cause)}")
        if plan.overridden is not None:
            say(("  override", "red"), f"  migration guard: {plain(plan.overridden)}")
        notes = (
            history_limit_note(history.deployment),
            migration_note(plan.target),
            mutable_images_note(plan.target),
            *strategy_notes(history.deployment),
            *plan.warnings,
        )
        for note in notes:
            if note is not None:
                say(("  note", "yellow"), f"  {plain(note)}")
        if plan.changes:
            say("  what changes (env values are never shown):")
            for item in preview(plan.changes):
                for line in item.lines or ("",):
                    say(f"    {plain(item.title)}: {plain(line)}")


def plain_console() -> Console:
    """A console for people: no highlighting, no `:emoji:` codes (cluster text stays literal)."""
    from rich.console import Console

    return Console(highlight=False, emoji=False)


# -- who rolls back --------------------------------------------------------------------------
#
# Nothing here is verified: the OS user and the kubeconfig's user name are what this machine
# and that file say, so the actor says so. The API server knows who really called it.

ACTOR_LIMIT: Final = 120  # it goes into the change-cause annotation
NAME_LIMIT: Final = 40
UNVERIFIED: Final = " (unverified)"
IN_CLUSTER_HOST_ENV: Final = "KUBERNETES_SERVICE_HOST"
SERVICE_ACCOUNT_TOKEN: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
SERVICE_ACCOUNT_PREFIX: Final = "system:serviceaccount:"


def cli_actor(kubeconfig: str | None, context: str | None) -> str:
    """Who rolls back from this terminal, e.g. `os user alice, kubeconfig user admin@prod
    (unverified)`: the OS user as the OS reports it and the user of the kubeconfig context in
    use (the service account inside a cluster), never $USER. At most ACTOR_LIMIT characters."""
    candidates = kubeconfig or os.environ.get("KUBECONFIG") or ""
    default = Path("~/.kube/config").expanduser()
    # The same choice as the client layer (bot.adapters.kube.client.load_api_client).
    if candidates or default.exists():
        kind, user = "kubeconfig user", kubeconfig_user(candidates or str(default), context)
    elif os.environ.get(IN_CLUSTER_HOST_ENV):
        kind, user = "service account", service_account()
    else:
        kind, user = "", None
    return actor_text(os_user(), kind, user)


def actor_text(os_name: str, kind: str, user: str | None) -> str:
    """The actor from its parts, each one line and capped: they end up in an annotation. Pure."""
    parts = [f"os user {plain(os_name, NAME_LIMIT)}"]
    if user:
        parts.append(f"{kind} {plain(user, NAME_LIMIT)}")
    return plain(", ".join(parts), ACTOR_LIMIT - len(UNVERIFIED)) + UNVERIFIED


def os_user() -> str:
    """The user this process runs as, by the OS (not $USER or $LOGNAME, which anyone sets)."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def kubeconfig_user(paths: str, context: str | None) -> str | None:
    """The user name of `context` (None: the current context) in the kubeconfig `paths`, joined
    like $KUBECONFIG and merged like kubectl (the first file to set a name or the current
    context wins); None when it cannot be read or names no user."""
    current: str | None = None
    context_users: dict[str, object] = {}
    for path in (p for p in paths.split(os.pathsep) if p):
        document = _yaml_mapping(Path(path).expanduser())
        if current is None and isinstance(document.get("current-context"), str):
            current = document["current-context"] or None
        entries = document.get("contexts")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                body = entry.get("context")
                context_users.setdefault(
                    entry["name"], body.get("user") if isinstance(body, dict) else None
                )
    found = context_users.get(context or current or "")
    return found if isinstance(found, str) and found else None


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return document if isinstance(document, dict) else {}


def service_account(token_path: Path | None = None) -> str | None:
    """`namespace/name` of the Pod's service account, from its token's `sub` claim (read, not
    verified), or None. The token itself is never shown."""
    try:
        token = (token_path or SERVICE_ACCOUNT_TOKEN).read_text(encoding="ascii")
        payload = token.strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, UnicodeDecodeError, IndexError, binascii.Error, ValueError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if not isinstance(subject, str) or not subject.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    return subject.removeprefix(SERVICE_ACCOUNT_PREFIX).replace(":", "/", 1)


def _busy_hint(result: StartResult) -> str:
    """Who holds the lock and what to do: a run whose replica died holds it until a bot
    replica picks it up or it goes unrenewed for its duration, which one look cannot tell."""
    run = result.run
    if result.outcome != "running" or run is None:
        return ""
    holder = f", lock held by {run.holder}" if run.holder else ""
    return (
        f" ({run.actor} → {run.to_version} since {_iso(run.started_at)}{holder}). If that "
        "rollback's bot replica or CLI stopped, a running bot replica picks it up, or the lock "
        "frees itself once nobody renews it for its duration (30s by default): run again with "
        "--wait 1m to wait for it"
    )
