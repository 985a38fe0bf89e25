"""`rollback-bot`'s embedded Slack: serve the local workspace until Ctrl-C or SIGTERM.

`run(...)` blocks (for a CLI subcommand); `serve(...)` is the same on a running loop (for an
orchestrating script that also starts the sandbox cluster and the bot); `main()` is
`python -m rollback_sandbox.slack`. The bot talks to it when started with `bot_environment(...)`:

    SLACK_BOT_TOKEN=<bot_token> SLACK_SIGNING_SECRET=<signing_secret> \\
    ROLLBACK_BOT_SLACK_API_URL=http://127.0.0.1:<port>/api/ \\
    ROLLBACK_BOT_HOST=127.0.0.1 ROLLBACK_BOT_PORT=3000 rollback-bot serve

The workspace's own bot token and signing secret come from the environment
(`ROLLBACK_SANDBOX_SLACK_BOT_TOKEN`, `ROLLBACK_SANDBOX_SLACK_SIGNING_SECRET`), never from the
command line, which anyone on the machine can read with `ps`; without them, the made-up local
ones below.

The workspace enforces Slack's documented rate limits (HTTP 429 `ratelimited` past them), as
production Slack would; `--no-rate-limits` or `ROLLBACK_SANDBOX_SLACK_RATE_LIMITS=off` turns
them off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

from rollback_sandbox.slack.web_api import DEFAULT_BOT_TOKEN
from rollback_sandbox.slack.workspace_ui import LocalWorkspace, bot_environment_for

__all__ = [
    "BOT_TOKEN_VARIABLE",
    "DEFAULT_BOT_EVENTS_URL",
    "DEFAULT_PORT",
    "LOCAL_BOT_TOKEN",
    "LOCAL_SIGNING_SECRET",
    "RATE_LIMITS_VARIABLE",
    "SIGNING_SECRET_VARIABLE",
    "bot_environment",
    "credentials",
    "limits_wanted",
    "main",
    "run",
    "serve",
]

DEFAULT_PORT = 3100
#: Where `rollback-bot serve` listens by default (ROLLBACK_BOT_PORT 3000).
DEFAULT_BOT_EVENTS_URL = "http://127.0.0.1:3000/slack/events"
#: The credentials of the local workspace: made up, they open nothing but this stand-in.
LOCAL_BOT_TOKEN = DEFAULT_BOT_TOKEN
LOCAL_SIGNING_SECRET = "local-workspace-signing-secret-0001"  # noqa: S105
#: Where `main()` finds the workspace's credentials (`rollback-bot serve` sets them for the local
#: Slack it starts): the environment, not the command line.
BOT_TOKEN_VARIABLE = "ROLLBACK_SANDBOX_SLACK_BOT_TOKEN"  # noqa: S105 - a variable's name
SIGNING_SECRET_VARIABLE = "ROLLBACK_SANDBOX_SLACK_SIGNING_SECRET"  # noqa: S105 - a variable's name
#: Set to off/0/false/no to serve without Slack's rate limits (default: on).
RATE_LIMITS_VARIABLE = "ROLLBACK_SANDBOX_SLACK_RATE_LIMITS"
_OFF = frozenset({"0", "off", "false", "no"})


def bot_environment(
    port: int,
    *,
    host: str = "127.0.0.1",
    bot_events_url: str = DEFAULT_BOT_EVENTS_URL,
    signing_secret: str = LOCAL_SIGNING_SECRET,
    bot_token: str = LOCAL_BOT_TOKEN,
) -> dict[str, str]:
    """The environment `rollback-bot serve` needs to use the workspace at `host:port`."""
    return bot_environment_for(
        api_url=f"http://{host}:{port}/api/",
        bot_events_url=bot_events_url,
        signing_secret=signing_secret,
        bot_token=bot_token,
    )


def describe(workspace: LocalWorkspace) -> str:
    """What to print once the workspace is up: where to open it, how the bot connects."""
    return "\n".join(
        [
            f"Local Slack workspace: open {workspace.url} in a browser",
            f"  channel #incidents; commands, clicks and submissions go to "
            f"{workspace.bot_events_url}",
            "  start the bot for it with:",
            f"  {workspace.bot_command()}",
        ]
    )


async def serve(
    host: str,
    port: int,
    bot_events_url: str,
    signing_secret: str,
    bot_token: str,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[LocalWorkspace], None] | None = None,
    enforce_limits: bool = True,
) -> int:
    """Serve the workspace until `stop` is set (default: Ctrl-C or SIGTERM); 1 if it cannot
    listen. `on_ready` gets the started workspace (its `url`, `api_url`, `bot_environment()`);
    without it, `describe(...)` is printed. `enforce_limits=False`: no rate limits."""
    workspace = LocalWorkspace(
        bot_events_url=bot_events_url, signing_secret=signing_secret, bot_token=bot_token
    )
    if not enforce_limits:
        workspace.api.use_limits(None)
    try:
        await workspace.start(host, port)
    except OSError as exc:
        print(f"local Slack workspace: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        if on_ready is not None:
            on_ready(workspace)
        else:
            print(describe(workspace), flush=True)
            print("Press Ctrl-C to stop.", flush=True)
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):  # needs a Unix event loop
                    loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await workspace.stop()
    return 0


def run(
    host: str,
    port: int,
    bot_events_url: str,
    signing_secret: str,
    bot_token: str,
    *,
    enforce_limits: bool = True,
) -> int:
    """Start the local workspace, print the URL to open, serve until Ctrl-C or SIGTERM."""
    try:
        return asyncio.run(
            serve(
                host,
                port,
                bot_events_url,
                signing_secret,
                bot_token,
                enforce_limits=enforce_limits,
            )
        )
    except KeyboardInterrupt:
        return 130


def credentials(environ: Mapping[str, str]) -> tuple[str, str]:
    """The workspace's (bot token, signing secret) from `environ`, else the local ones."""
    return (
        environ.get(BOT_TOKEN_VARIABLE) or LOCAL_BOT_TOKEN,
        environ.get(SIGNING_SECRET_VARIABLE) or LOCAL_SIGNING_SECRET,
    )


def limits_wanted(environ: Mapping[str, str], *, flag_off: bool = False) -> bool:
    """Whether to enforce Slack's rate limits: yes unless the flag or `environ` says off."""
    return not flag_off and environ.get(RATE_LIMITS_VARIABLE, "").strip().lower() not in _OFF


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rollback-sandbox-slack",
        description="A local Slack workspace in the browser for rollback-bot (no real Slack).",
        epilog=f"The bot token and signing secret come from {BOT_TOKEN_VARIABLE} and "
        f"{SIGNING_SECRET_VARIABLE} (default: made-up local ones), never from arguments.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--bot-events-url", default=DEFAULT_BOT_EVENTS_URL, metavar="URL")
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="do not answer 429 past Slack's documented rate limits "
        f"(also: {RATE_LIMITS_VARIABLE}=off)",
    )
    parser.add_argument(
        "--print-env",
        action="store_true",
        help="print `export` lines for the bot's environment and exit (for shell scripts)",
    )
    args = parser.parse_args(argv)
    bot_token, signing_secret = credentials(os.environ)
    if args.print_env:
        env = bot_environment(
            args.port,
            host=args.host,
            bot_events_url=args.bot_events_url,
            signing_secret=signing_secret,
            bot_token=bot_token,
        )
        for name, value in env.items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    return run(
        args.host,
        args.port,
        args.bot_events_url,
        signing_secret,
        bot_token,
        enforce_limits=limits_wanted(os.environ, flag_off=args.no_rate_limits),
    )
