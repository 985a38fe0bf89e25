"""The CLI's wiring: settings → catalog → clusters → engine (and, to roll back, the runner with
the terminal's reporter) → `Cli`; errors become one sentence on stderr and an exit code.

Only what the command needs is imported: `status -o json` loads neither rich nor the runner."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.adapters.kube.clusters import ClusterRegistry
from bot.config.catalog import Catalog
from bot.config.settings import describe_invalid, load_settings
from bot.domain.errors import RollbackBotError
from bot.entry.cli.audit_trail import AUDIT_FLUSH_SECONDS, audit_file, audit_store
from bot.entry.cli.commands import Cli, RollbackOptions
from bot.entry.cli.switch_args import blue_green_asked
from bot.entry.cli.text import plain
from bot.usecases.rollback.engine import RollbackEngine

if TYPE_CHECKING:
    from bot.adapters.audit import ClusterStoreSink
    from bot.usecases.audit import AuditTrail
    from bot.usecases.rollback.gitops import GitopsGuard

RED_ERROR = "\033[31merror:\033[0m"
ERROR_LIMIT = 2000  # one sentence, but it may carry several values from outside


class _PlainLogLines(logging.Formatter):
    """`warning: …` for a person, like the CLI's own errors: one line, no terminal controls."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {plain(record.getMessage(), ERROR_LIMIT)}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def _ours_or_an_error(record: logging.LogRecord) -> bool:
    """The CLI's own warnings, and errors from anyone: the libraries' chatter (urllib3's
    `Retrying …` before the CLI says the API cannot be reached, Python warnings) is not shown."""
    return record.name == "bot" or record.name.startswith("bot.") or record.levelno >= logging.ERROR


def configure_cli_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PlainLogLines())
    handler.addFilter(_ours_or_an_error)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)  # `warnings.warn` from libraries, as records of `py.warnings`


def _error(text: str) -> None:
    label = RED_ERROR if sys.stderr.isatty() else "error:"
    # Errors carry names and values from the cluster and the catalog: no terminal controls.
    sys.stderr.write(f"{label} {plain(text, ERROR_LIMIT)}\n")


async def run_cli(args: argparse.Namespace) -> int:
    configure_cli_logging()
    registry: ClusterRegistry | None = None
    store_sink: ClusterStoreSink | None = None
    try:
        settings = load_settings(
            kubeconfig=args.kubeconfig,
            kube_context=args.context,
            config=args.config,
            kube_request_timeout=args.request_timeout,
            prometheus_url=getattr(args, "prometheus", None),  # analyze's --prometheus
        )
        catalog = Catalog.load(settings.config) if settings.config else Catalog.empty()
        registry = ClusterRegistry(
            settings.kubeconfig,
            settings.kube_context,
            request_timeout=settings.kube_request_timeout,
        )
        engine = RollbackEngine(registry)
        if blue_green_asked(catalog, args):  # a Service switched between colours
            from bot.entry.cli.switch import run_switch

            return await run_switch(args, catalog, registry, settings)
        if args.command == "status":
            return await Cli(catalog, engine, None).status(args.service, args.output)
        if args.command == "history":
            return await Cli(catalog, engine, None).history(args.service, args.output)
        if args.command == "analyze":
            from bot.entry.cli.analyze import run_analyze

            return await run_analyze(
                catalog,
                registry,
                service=args.service,
                revision=args.revision,
                output=args.output,
                chart=args.chart,
                prometheus_url=settings.prometheus_url,
            )
        if args.command == "audit":
            from bot.entry.cli.audit import show_audit
            from bot.usecases.audit import AuditReader

            reader = AuditReader(
                audit_store(registry, settings),
                retention_days=settings.audit_retention_days,
            )
            return await show_audit(catalog, reader, args.service, args.since, args.output)
        # Only a rollback needs the runner, its audit trail and the terminal's live bar.
        from bot.adapters.audit import ClusterStoreSink, JsonFileSink, KubernetesEventSink
        from bot.entry.cli.console import ConsoleReporter
        from bot.usecases.audit import AuditTrail
        from bot.usecases.rollback.runner import RolloutRunner, replica_id

        me = f"cli@{replica_id()}"
        reporter = ConsoleReporter()
        # The bot's audit trail in the cluster too, when these credentials may write it; when
        # they may not, that is said once and the local file keeps the record.
        store_sink = ClusterStoreSink(audit_store(registry, settings), fallback=str(audit_file()))
        audit = AuditTrail(
            [JsonFileSink(audit_file()), KubernetesEventSink(registry, me), store_sink]
        )
        runner = RolloutRunner(
            engine,
            audit,
            reporter,
            replica_id=me,
            rollout_timeout=args.timeout,
            # The catalog's `gitops:` policy: refused, or auto-sync suspended first.
            gitops=_gitops_guard(registry, settings.gitops_namespaces, audit),
        )
        cli = Cli(
            catalog,
            engine,
            runner,
            reporter.console,
            kubeconfig=settings.kubeconfig,
            default_context=settings.kube_context,
        )
        return await cli.rollback(
            args.service,
            RollbackOptions(
                to_revision=getattr(args, "to_revision", None),
                dry_run=getattr(args, "dry_run", False),
                yes=args.yes,
                reason=args.reason,
                timeout=args.timeout,
                wait=args.wait,
                override_migration_guard=getattr(args, "override_migration_guard", False),
                confirm_service=getattr(args, "confirm_service", None),
                abort=args.command == "abort",
            ),
        )
    except RollbackBotError as exc:
        _error(str(exc))
        return exc.exit_code
    except ValidationError as exc:  # the environment's settings; never their values
        _error(f"invalid settings: {describe_invalid(exc)}")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    finally:
        if store_sink is not None:
            await store_sink.close(AUDIT_FLUSH_SECONDS)
        if registry is not None:
            await registry.close()


def _gitops_guard(
    registry: ClusterRegistry, namespaces: list[str], audit: AuditTrail
) -> GitopsGuard:
    """The GitOps check of a rollback, as the bot makes it (no Slack thread to tell)."""
    from bot.adapters.kube.gitops import KubeGitOps
    from bot.usecases.rollback.gitops import GitopsGuard

    gitops = KubeGitOps(lambda context: registry.cluster(context).kube, namespaces)
    return GitopsGuard(gitops, registry, audit)
