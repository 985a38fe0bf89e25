"""`rollback-bot switch`'s command line, and which commands a blue-green service answers with
its colours: light (argparse and the catalog only), so that `rollback-bot --help` and
`status -o json` load nothing of the switch."""

from __future__ import annotations

import argparse
from typing import Any

from bot.config.catalog import Catalog
from bot.domain.errors import ConfigError, UnknownService
from bot.domain.times import parse_duration

SWITCH_TIMEOUT = 300.0
# The commands that read one Deployment: a blue-green service is answered by the switch instead.
DEPLOYMENT_COMMANDS = ("status", "history", "rollback")


def _positive_duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is no time to wait: give more than 0s")
    return seconds


def add_switch_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The `switch` subcommand, on `rollback-bot`'s subparsers."""
    text = "switch a blue-green SERVICE's traffic back to another colour"
    p = sub.add_parser(
        "switch",
        parents=[common],
        help=text,
        description=text + ": scale the colour up first when it is scaled down, wait until it "
        "is ready, point the Service's selector at it (with a resourceVersion precondition) and "
        "wait until its EndpointSlices show only that colour's pods. Exit codes: 0 switched (or "
        "already there), 1 error, 2 usage, 3 refused (the plan, someone else switching, not "
        "confirmed), 4 the colour's rollout failed, 5 stopped waiting (--timeout).",
    )
    p.add_argument("service", metavar="SERVICE", help="a catalog service of kind BlueGreen")
    p.add_argument("--to", required=True, metavar="COLOR", help="the colour to switch to")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--reason", help="why: recorded in the audit trail")
    p.add_argument(
        "--timeout",
        type=_positive_duration,
        default=SWITCH_TIMEOUT,
        help="how long the colour may take to become ready (5m); the Service is not touched "
        "before it is",
    )


def blue_green_asked(catalog: Catalog, args: argparse.Namespace) -> bool:
    """Whether the command is `switch`, or one of a Deployment's commands naming a blue-green
    service (answered with its colours, never by reading a Deployment of the Service's name)."""
    if args.command == "switch":
        return True
    if args.command not in DEPLOYMENT_COMMANDS:
        return False
    try:
        return catalog.resolve(args.service).blue_green is not None
    except (UnknownService, ConfigError):
        return False  # the command itself says what is wrong with the name
