"""Wiring for the CLI commands: settings → catalog → clusters → engine → Cli, and exit codes."""

from __future__ import annotations

import argparse

from rich.console import Console

from bot.usecases.audit import AuditTrail, JsonLogSink, KubernetesEventSink
from bot.config.catalog import Catalog
from bot.entry.cli.commands import Cli, RollbackOptions
from bot.usecases.rollback.engine import RollbackEngine
from bot.adapters.kube.clusters import ClusterRegistry
from bot.domain.errors import RollbackBotError
from bot.usecases.rollback.runner import RolloutRunner, replica_id
from bot.config.settings import load_settings


async def run_cli(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    registry: ClusterRegistry | None = None
    try:
        settings = load_settings(
            kubeconfig=args.kubeconfig,
            kube_context=args.context,
            config=args.config,
            kube_request_timeout=args.request_timeout,
        )
        catalog = Catalog.load(settings.config) if settings.config else Catalog.empty()
        registry = ClusterRegistry(
            settings.kubeconfig,
            settings.kube_context,
            request_timeout=settings.kube_request_timeout,
        )
        engine = RollbackEngine(registry.get)
        audit = AuditTrail(
            [JsonLogSink(), KubernetesEventSink(registry.get, f"cli@{replica_id()}")]
        )
        timeout = getattr(args, "timeout", 300.0)
        runner = RolloutRunner(
            engine, audit, replica_id=f"cli@{replica_id()}", rollout_timeout=timeout
        )
        cli = Cli(catalog, engine, runner)
        if args.command == "status":
            return await cli.status(args.service, args.output)
        if args.command == "history":
            return await cli.history(args.service, args.output)
        return await cli.rollback(
            args.service,
            RollbackOptions(
                to_revision=args.to_revision,
                dry_run=args.dry_run,
                yes=args.yes,
                reason=args.reason,
                timeout=args.timeout,
            ),
        )
    except RollbackBotError as exc:
        err.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    finally:
        if registry is not None:
            await registry.close()
