"""The CLI's commands: status, history and rollback, for people (tables) and scripts (JSON).

Thin: resolve the service, call the engine, render. Errors are one sentence and an exit code.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.config.catalog import Catalog, ServiceRef
from bot.domain.errors import RollbackRefused, RolloutFailed, RolloutTimedOut
from bot.domain.rollback.models import Deployment, History, Revision, Target
from bot.domain.rollback.planning import RollbackCause, RollbackPlan
from bot.domain.times import ago, format_duration, kube_time
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.ports import Cluster

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from bot.usecases.rollback.runner import RolloutRunner

# Errors exit with their class's code (bot.domain.errors); these are the plain outcomes.
EXIT_OK = 0
EXIT_REFUSED = RollbackRefused.exit_code


@dataclass(frozen=True)
class RollbackOptions:
    to_revision: int | None
    dry_run: bool
    yes: bool
    reason: str | None
    timeout: float


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
        "cluster": server,
        "revision": deployment.revision,
        "version": deployment.version,
        "images": {c.name: c.image for c in deployment.containers},
        "changeCause": deployment.change_cause,
        "paused": deployment.paused,
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


def revision_json(revision: Revision) -> dict[str, Any]:
    return {
        "revision": revision.number,
        "current": revision.current,
        "version": revision.version,
        "replicaSet": revision.replicaset,
        "images": {c.name: c.image for c in revision.containers},
        "changeCause": revision.change_cause,
        "createdAt": _iso(revision.created_at),
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
    ) -> None:
        self._catalog = catalog
        self._engine = engine
        self._runner = runner
        if console is not None:
            self.console = console

    @cached_property
    def console(self) -> Console:
        # Imported when a person is shown something: `-o json` never pays for rich.
        from rich.console import Console

        return Console(highlight=False)

    def _target(self, service: str) -> tuple[ServiceRef, Target, Cluster]:
        ref = self._catalog.resolve(service)
        return ref, ref.target, self._engine.cluster(ref.target)

    # -- status ----------------------------------------------------------------------------

    async def status(self, service: str, output: str) -> int:
        ref, target, cluster = self._target(service)
        deployment = await self._engine.status(target)
        if output == "json":
            print(json.dumps(deployment_json(ref, cluster.server, deployment), indent=2))
            return EXIT_OK
        status = deployment.status
        c = self.console
        c.print(f"[bold]{ref.name}[/] ({ref.qualified}) on {cluster.server}")
        c.print(f"  version   {deployment.version} (revision {deployment.revision or '?'})")
        for container in deployment.containers:
            c.print(f"  image     {container.name}: {container.image}")
        if deployment.change_cause:
            c.print(f"  cause     {deployment.change_cause}")
        c.print(
            f"  replicas  {status.ready_replicas}/{deployment.desired_replicas} ready, "
            f"{status.updated_replicas} updated, {status.available_replicas} available"
            + ("  [yellow](paused)[/]" if deployment.paused else "")
        )
        for cond in status.conditions:
            c.print(f"  {cond.type:<9} {cond.status} {cond.reason}: {cond.message}")
        return EXIT_OK

    # -- history ---------------------------------------------------------------------------

    async def history(self, service: str, output: str) -> int:
        ref, target, cluster = self._target(service)
        history = await self._engine.history(target)
        if output == "json":
            print(
                json.dumps(
                    {
                        **deployment_json(ref, cluster.server, history.deployment),
                        "revisions": [revision_json(r) for r in history.revisions],
                    },
                    indent=2,
                )
            )
            return EXIT_OK
        self.console.print(self._history_table(ref, history))
        return EXIT_OK

    def _history_table(self, ref: ServiceRef, history: History) -> Table:
        from rich.table import Table

        now = datetime.now(UTC)
        table = Table(title=f"{ref.name} ({ref.qualified})", title_justify="left")
        for column in ("REVISION", "VERSION", "IMAGES", "CREATED", "READY", "CHANGE-CAUSE"):
            table.add_column(column)
        for r in history.revisions:
            table.add_row(
                f"{r.number}{' *' if r.current else ''}",
                r.version,
                "\n".join(f"{c.name}={c.image}" for c in r.containers),
                _ago(r.created_at, now),
                f"{r.ready_replicas}/{r.replicas}",
                r.change_cause or "",
            )
        table.caption = "* deployed now"
        return table

    # -- rollback --------------------------------------------------------------------------

    async def rollback(self, service: str, options: RollbackOptions) -> int:
        ref, target, cluster = self._target(service)
        cause = RollbackCause(
            actor=_actor(), via="CLI", reason=options.reason, at=datetime.now(UTC)
        )
        plan = await self._engine.plan(target, options.to_revision, cause)
        self._show_plan(ref, cluster.server, plan)
        if plan.action == "skip":
            self.console.print(plan.summary)
            return EXIT_OK
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

            if not Confirm.ask(
                f"Roll back {ref.name} to {plan.target.version}?", console=self.console
            ):
                self.console.print("not rolled back")
                return EXIT_REFUSED
        if self._runner is None:
            raise RollbackRefused("this command cannot roll back")  # the wiring always gives one
        from bot.usecases.rollback.runner import RollbackRequest  # only a rollback loads the runner

        result = await self._runner.start(
            RollbackRequest(
                service=ref.name,
                target=target,
                target_replicaset=plan.target.replicaset,
                target_revision=plan.target.number,
                target_version=plan.target.version,
                snapshot=plan.snapshot,
                actor=cause.actor,
                via="CLI",
                reason=options.reason,
            )
        )
        if result.outcome == "skipped":
            self.console.print(result.message)
            return EXIT_OK
        if result.completion is None:
            who = ""
            if result.run is not None:
                run = result.run
                who = f" ({run.actor} → {run.to_version} since {_iso(run.started_at)})"
            raise RollbackRefused(f"not rolled back: {result.message}{who}")
        outcome = await result.completion
        elapsed = format_duration(outcome.elapsed)
        if outcome.succeeded:
            self.console.print(
                f"[green]rolled back[/] {ref.name} to {plan.target.version} in {elapsed}"
            )
            return EXIT_OK
        counts = f" ({outcome.last.counts})" if outcome.last else ""
        message = f"rollout of {ref.name} failed after {elapsed}: {outcome.error}{counts}"
        if outcome.timed_out:
            raise RolloutTimedOut(message)
        raise RolloutFailed(message)

    def _show_plan(self, ref: ServiceRef, server: str, plan: RollbackPlan) -> None:
        c = self.console
        c.print(f"[bold]{ref.name}[/] ({ref.qualified}) on {server}")
        c.print(
            f"  from  {plan.from_version} (revision {plan.from_revision or '?'})\n"
            f"  to    {plan.target.version} (revision {plan.target.number}, "
            f"ReplicaSet {plan.target.replicaset})"
        )
        if plan.target.change_cause:
            c.print(f"  which was: {plan.target.change_cause}")
        if plan.changes:
            c.print("  changes in the pod template:")
            for change in plan.changes:
                c.print(f"    {change}", markup=False)


def _actor() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
