"""`rollback-bot`: serve the bot, or look and roll back from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from bot.config.settings import default_prometheus_url
from bot.domain.times import parse_duration, parse_since
from bot.entry.cli.switch_args import add_switch_parser


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_duration(text: str) -> float:
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is no time to wait: give more than 0s")
    return seconds


def _since(text: str) -> timedelta:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _revision(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a revision number (1, 2, …)")
    return int(text)


def _prometheus_url(text: str) -> str:
    try:
        return default_prometheus_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG)")
    common.add_argument("--context", help="kubeconfig context (default: its current context)")
    common.add_argument("--config", type=Path, help="service catalog YAML ($ROLLBACK_BOT_CONFIG)")
    common.add_argument(
        "--request-timeout", type=_duration, help="timeout of each Kubernetes API call (10s)"
    )

    parser = argparse.ArgumentParser(
        prog="rollback-bot",
        description="Roll Kubernetes Deployments back exactly as `kubectl rollout undo`.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, text in (
        ("status", "the deployed version and rollout health of SERVICE"),
        ("history", "the revisions of SERVICE, newest first"),
    ):
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.add_argument("service", metavar="SERVICE", help="catalog name or NAMESPACE/DEPLOYMENT")
        p.add_argument("-o", "--output", choices=("table", "json"), default="table")

    p = sub.add_parser(
        "rollback",
        parents=[common],
        help="roll SERVICE back (to the previous revision by default)",
        description="Roll SERVICE back, as `kubectl rollout undo`, and follow the rollout. "
        "Exit codes: 0 rolled out (or already at the target), 1 error, 2 usage, "
        "3 refused, 4 rollout failed, 5 stopped waiting (--timeout; the rollout goes on).",
    )
    p.add_argument("service", metavar="SERVICE", help="catalog name or NAMESPACE/DEPLOYMENT")
    p.add_argument("--to-revision", type=int, metavar="N", help="revision to restore")
    p.add_argument("--dry-run", action="store_true", help="server-side dry run; change nothing")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--reason", help="why: recorded in the Deployment's change-cause")
    p.add_argument(
        "--timeout",
        type=_positive_duration,
        default=300.0,
        help="how long to follow the rollout (5m); after it the rollout goes on, unfollowed",
    )
    p.add_argument(
        "--wait",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="when someone else is rolling SERVICE back, wait this long for it to end (0s)",
    )
    p.add_argument(
        "--override-migration-guard",
        action="store_true",
        help="break glass: roll back past an irreversible schema migration (needs --reason and "
        "the service's name typed; recorded)",
    )
    p.add_argument(
        "--confirm-service",
        metavar="NAME",
        help="the service's name, for --override-migration-guard without a terminal",
    )

    p = sub.add_parser(
        "abort",
        parents=[common],
        help="abort the update of an Argo Rollout SERVICE: its traffic back to stable at once",
        description="Abort the canary (or blue-green) update in progress of an Argo Rollout, as "
        "`kubectl argo rollouts abort`, and follow it until the stable version serves all its "
        "replicas. Exit codes as for rollback.",
    )
    p.add_argument("service", metavar="SERVICE", help="catalog name or rollout/NAMESPACE/NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--reason", help="why: recorded")
    p.add_argument(
        "--timeout",
        type=_positive_duration,
        default=300.0,
        help="how long to follow the abort (5m)",
    )
    p.add_argument(
        "--wait",
        type=_duration,
        default=0.0,
        metavar="DURATION",
        help="when someone else is rolling SERVICE back, wait this long for it to end (0s)",
    )

    add_switch_parser(sub, common)  # blue-green: `switch SERVICE --to COLOR`

    text = "judge a revision of SERVICE against Prometheus, as automatic rollback does, once"
    p = sub.add_parser(
        "analyze",
        parents=[common],
        help=text,
        description=text + ": its signals against the previous revision's pods (or the window "
        "before the deploy), from its deploy to now. Exit codes: 0 healthy, 1 error, 2 usage, "
        "3 no verdict (no data, not enough traffic, Prometheus unreachable, the window not "
        "passed yet), 4 breach.",
    )
    p.add_argument("service", metavar="SERVICE", help="catalog name or NAMESPACE/DEPLOYMENT")
    p.add_argument(
        "--revision", type=_revision, metavar="N", help="the revision to judge (the deployed one)"
    )
    p.add_argument("--chart", type=Path, metavar="PNG", help="draw the deciding signal there")
    p.add_argument(
        "--prometheus",
        type=_prometheus_url,
        metavar="URL",
        help="Prometheus for services whose auto_rollback block names none "
        "($ROLLBACK_BOT_PROMETHEUS_URL)",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")

    text = "the audit trail of SERVICE kept in the cluster, newest first"
    p = sub.add_parser(
        "audit",
        parents=[common],
        help=text,
        description=text + ": the records the bot's replicas and the CLI keep in ConfigMaps of "
        "the bot's namespace ($ROLLBACK_BOT_NAMESPACE).",
    )
    p.add_argument("service", metavar="SERVICE", help="catalog name or NAMESPACE/DEPLOYMENT")
    p.add_argument(
        "--since",
        type=_since,
        default=timedelta(days=7),
        metavar="AGE",
        help="how far back: 7d (default), 36h, 1d12h, 90m",
    )
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")

    sub.add_parser(
        "serve",
        parents=[common],
        help="run the Slack bot (HTTP or Socket Mode), with an embedded cluster if none is set",
        description="Run the bot. Settings come from the environment (see README); with no "
        "Kubernetes configuration it starts the embedded simulated cluster with demo data.",
    )

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from bot.entry.serve.main import run_serve

        return run_serve(args)
    from bot.entry.cli.main import run_cli

    return asyncio.run(run_cli(args))


if __name__ == "__main__":
    sys.exit(main())
