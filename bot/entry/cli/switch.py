"""`rollback-bot switch SERVICE --to COLOR`: a blue-green service's traffic switched back from a
terminal, through the same use case, lock and record as the bot; and what `status`, `history`
and `rollback` answer for a blue-green service (its colours: it has no Deployment of its own).

The plan is shown, asked unless `--yes`, and the switch told line by line with its time.
Everything from the cluster and the catalog is printed through `text.plain`, never as markup.
Exit codes as the README's CLI section has them for rollbacks: 0 switched (or already there),
1 error, 2 usage, 3 refused, 4 the colour's rollout failed, 5 stopped waiting.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from bot.adapters.audit import ClusterStoreSink, JsonFileSink, KubernetesEventSink
from bot.adapters.kube.clusters import ClusterRegistry
from bot.adapters.kube.services import BlueGreenClusterRegistry
from bot.config.catalog import Catalog, ServiceRef
from bot.config.settings import Settings
from bot.domain.errors import (
    ConfigError,
    RollbackBotError,
    RollbackRefused,
    RolloutFailed,
    RolloutTimedOut,
    UnknownService,
)
from bot.domain.rollback.blue_green import (
    ColorState,
    SwitchPlan,
    SwitchProgress,
    SwitchRefused,
)
from bot.domain.rollback.models import RunInfo, Thread
from bot.domain.rollback.switches import SwitchEnding, SwitchOutcome, SwitchView
from bot.domain.times import format_duration
from bot.entry.cli.audit_trail import AUDIT_FLUSH_SECONDS, audit_file, audit_store
from bot.entry.cli.commands import EXIT_OK, UsageError, cli_actor, plain_console
from bot.entry.cli.switch_args import SWITCH_TIMEOUT
from bot.entry.cli.text import plain
from bot.usecases.audit import AuditTrail
from bot.usecases.rollback.runner import replica_id
from bot.usecases.rollback.switch import (
    CONVERGE_TIMEOUT,
    BlueGreenSwitches,
    SwitchRequest,
    spec_of,
)

if TYPE_CHECKING:
    from rich.console import Console


class ConsoleSwitchReporter:
    """The switch's `SwitchReporters` and `SwitchReporter` for the CLI: one line a step; the
    readiness counts only when they change."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._last: str | None = None

    def reporter(self, thread: Thread | None, namespace: str) -> ConsoleSwitchReporter:
        return self

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    async def started(self, run: RunInfo, plan: SwitchPlan, reason: str | None) -> None:
        self._line(
            f"switching {plain(run.service)}: {plain(run.from_version)} → {plain(run.to_version)}"
        )

    async def scaling_up(self, plan: SwitchPlan, current: ColorState) -> None:
        self._line(
            f"  scaling up {plain(plan.to_deployment)} from {current.desired_replicas} to "
            f"{plan.scale_to} replicas"
        )

    async def waiting(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        counts = (
            f"{target.ready_replicas}/{plan.wait_for_replicas} ready, "
            f"{target.available_replicas}/{plan.wait_for_replicas} available"
        )
        if counts != self._last:
            self._last = counts
            self._line(
                f"  waiting for {plain(plan.to_color)}: {counts} ({format_duration(elapsed)})"
            )

    async def ready(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        self._line(
            f"  {plain(plan.to_color)} is ready: {target.available_replicas}/"
            f"{plan.wait_for_replicas} available ({format_duration(elapsed)})"
        )

    async def patched(self, plan: SwitchPlan) -> None:
        self._line(
            f"  Service {plain(plan.service)} now selects {plain(plan.to_color)}; waiting for its "
            "EndpointSlices"
        )

    async def converging(self, plan: SwitchPlan, progress: SwitchProgress, elapsed: float) -> None:
        if progress.message != self._last:
            self._last = progress.message
            self._line(f"  {plain(progress.message)} ({format_duration(elapsed)})")

    async def finished(self, outcome: SwitchOutcome) -> None:
        """The CLI says the end itself, with its exit code (`run_switch`)."""


def _state_line(state: ColorState, live: str | None) -> str:
    role = "live" if state.color == live else "idle"
    version = f" {plain(state.version)}" if state.version else ""
    if not state.found:
        counts = "Deployment not found"
    elif state.scaled_down:
        counts = "scaled down (0 replicas)"
    else:
        counts = (
            f"{state.ready_replicas}/{state.desired_replicas} ready, "
            f"{state.available_replicas} available"
        )
    endpoints = f", {state.ready_endpoints}/{state.endpoints} endpoints ready"
    return (
        f"  {plain(state.color, 63):<6} {role:<4}  {plain(state.deployment)}{version}: "
        f"{counts}{endpoints if state.endpoints else ''}"
    )


def show_view(console: Console, ref: ServiceRef, view: SwitchView) -> None:
    live = view.routing.live_color
    console.print(
        f"{plain(ref.name)} (blue-green: service {plain(view.namespace)}/"
        f"{plain(view.spec.service)}) on {plain(view.cluster)}",
        markup=False,
        highlight=False,
    )
    routes = (
        f"  routes to {plain(live)} ({plain(view.spec.selector_key)}={plain(live)})"
        if live is not None
        else f"  routes to no known colour: {plain(view.routing.reason or '?')}"
    )
    console.print(routes, markup=False, highlight=False)
    for state in view.colors:
        console.print(_state_line(state, live), markup=False, highlight=False)


def view_json(ref: ServiceRef, view: SwitchView) -> dict[str, Any]:
    """`status -o json` of a blue-green service: the values exactly, for scripts."""
    return {
        "service": ref.name,
        "kind": "BlueGreen",
        "namespace": view.namespace,
        "cluster": view.cluster,
        "serviceName": view.spec.service,
        "selectorKey": view.spec.selector_key,
        "live": view.routing.live_color,
        "notLiveBecause": view.routing.reason,
        "colors": [
            {
                "color": s.color,
                "deployment": s.deployment,
                "found": s.found,
                "version": s.version,
                "replicas": {
                    "desired": s.desired_replicas,
                    "ready": s.ready_replicas,
                    "available": s.available_replicas,
                },
                "scaledDown": s.scaled_down,
                "available": s.available,
                "endpoints": {"total": s.endpoints, "ready": s.ready_endpoints},
            }
            for s in view.colors
        ],
    }


def _plan_lines(plan: SwitchPlan, ready_timeout: float) -> list[str]:
    lines = []
    if plan.needs_scale_up:
        lines.append(
            f"  plan  scale {plain(plan.to_deployment)} up to {plan.scale_to} replicas and wait "
            f"until they are available (up to {format_duration(ready_timeout)})"
        )
    lines.append(
        f"  plan  point Service {plain(plan.service)} from {plain(plan.from_color)} to "
        f"{plain(plan.to_color)}, then wait for its EndpointSlices"
    )
    return lines


async def run_switch(
    args: argparse.Namespace, catalog: Catalog, registry: ClusterRegistry, settings: Settings
) -> int:
    """`switch`, or `status`/`history`/`rollback` of a blue-green service."""
    try:
        ref = catalog.resolve(args.service)
        spec_of(ref)
    except (UnknownService, ConfigError) as exc:
        raise UsageError(str(exc)) from None
    console = plain_console()
    clusters = BlueGreenClusterRegistry(registry)
    me = f"cli@{replica_id()}"
    reporter = ConsoleSwitchReporter(console)
    store_sink = ClusterStoreSink(audit_store(registry, settings), fallback=str(audit_file()))
    audit = AuditTrail([JsonFileSink(audit_file()), KubernetesEventSink(registry, me), store_sink])
    timeout = getattr(args, "timeout", None) or SWITCH_TIMEOUT
    switches = BlueGreenSwitches(
        clusters,
        audit,
        reporter,
        replica_id=me,
        ready_timeout=timeout,
        converge_timeout=min(CONVERGE_TIMEOUT, max(timeout, 10.0)),
        lease_seconds=settings.lease_seconds,
    )
    try:
        return await _run(args, ref, switches, console, settings)
    finally:
        await store_sink.close(AUDIT_FLUSH_SECONDS)


async def _run(
    args: argparse.Namespace,
    ref: ServiceRef,
    switches: BlueGreenSwitches,
    console: Console,
    settings: Settings,
) -> int:
    spec = spec_of(ref)
    actor = cli_actor(settings.kubeconfig, ref.context or settings.kube_context)
    if args.command == "rollback":
        colors = " or ".join(spec.color_names)
        raise UsageError(
            f"{ref.name} is a blue-green service: its rollback is a switch of its Service "
            f"between colours: rollback-bot switch {ref.name} --to {colors}"
        )
    view = await switches.view(ref, actor)
    if args.command in ("status", "history"):
        if getattr(args, "output", "table") == "json":
            print(json.dumps(view_json(ref, view), indent=2))
            return EXIT_OK
        show_view(console, ref, view)
        if args.command == "history":
            names = ", ".join(plain(c.deployment) for c in view.colors)
            console.print(
                f"  each colour's own revisions: rollback-bot history NAMESPACE/DEPLOYMENT "
                f"({names})",
                markup=False,
                highlight=False,
            )
        return EXIT_OK
    to = args.to
    if to not in spec.color_names:
        raise UsageError(
            f"{plain(to, 63)!r} is not a colour of {ref.name}: choose "
            f"{' or '.join(spec.color_names)}"
        )
    show_view(console, ref, view)
    if view.routing.live_color == to:
        console.print(
            f"{plain(ref.name)} already routes to {plain(to)}: nothing to switch",
            markup=False,
            highlight=False,
        )
        return EXIT_OK
    offer = view.offer(to)
    if isinstance(offer, SwitchRefused) or offer is None:
        raise RollbackRefused(f"not switched: {offer.reason if offer else 'nothing to switch'}")
    for line in _plan_lines(offer, switches.ready_timeout):
        console.print(line, markup=False, highlight=False)
    if not args.yes:
        if not sys.stdin.isatty():
            raise RollbackRefused(
                "not switched: confirmation needed; run in a terminal or pass --yes"
            )
        from rich.prompt import Confirm
        from rich.text import Text

        question = f"Switch {plain(ref.name)} to {plain(to)}?"
        if not Confirm.ask(Text(question), console=console):
            raise RollbackRefused("not switched")
    result = await switches.start(
        SwitchRequest(
            ref=ref,
            to_color=to,
            actor=actor,
            via="CLI",
            reason=args.reason,
            expected_live=view.routing.live_color,
        )
    )
    if result.completion is None:
        hint = ""
        if result.outcome == "running" and result.run is not None and result.run.holder:
            hint = f" (lock held by {result.run.holder})"
        raise RollbackRefused(f"not switched: {result.message}{hint}")
    try:
        outcome = await result.completion
    except BaseException:
        # Ctrl-C: the switch stops here, told and recorded, while the cluster still answers
        # (the caller closes it next), rather than going on unseen.
        await switches.shutdown(0)
        raise
    return _ended(console, outcome)


def _ended(console: Console, outcome: SwitchOutcome) -> int:
    plan = outcome.plan
    if outcome.succeeded:
        shown = f" ({outcome.endpoints.message})" if outcome.endpoints is not None else ""
        console.print(
            f"switched {plain(outcome.service)} to {plain(plan.to_color)} in "
            f"{outcome.switch_time}: EndpointSlices show only "
            f"{plain(plan.to_color)}'s pods{plain(shown)}; "
            f"{format_duration(outcome.total_seconds)} in all",
            markup=False,
            highlight=False,
        )
        return EXIT_OK
    said = f"{outcome.error or outcome.ending.value}. {outcome.left}"
    if outcome.ending in (SwitchEnding.NOT_READY, SwitchEnding.NOT_CONVERGED):
        raise RolloutTimedOut(f"stopped waiting: {said}")
    if outcome.ending is SwitchEnding.REFUSED:
        raise RollbackRefused(f"not switched: {said}")
    if outcome.ending is SwitchEnding.FAILED:
        raise RolloutFailed(f"not switched: {said}")
    raise RollbackBotError(f"switch of {outcome.service} not finished: {said}")
