"""`python -m rollback_sandbox.metrics`: serve the simulated cluster's metrics until Ctrl-C or
SIGTERM.

    python -m rollback_sandbox.metrics --kubeconfig sandbox.kubeconfig --port 0 \\
        --port-out metrics.port

`--port 0` picks a free port; `--port-out` receives it (written whole once the server listens,
so a reader never sees half of it), as the cluster writes its kubeconfig.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from rollback_sandbox.metrics.exporter import (
    DEFAULT_RPS,
    POLL_SECONDS,
    MetricsSource,
    cluster_address,
)


def write_port(path: Path, port: int) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(f"{port}\n", encoding="utf-8")
    partial.replace(path)


async def _serve(args: argparse.Namespace) -> int:
    try:
        address = cluster_address(args.kubeconfig)
    except (OSError, ValueError) as exc:
        print(f"rollback-sandbox metrics: cannot read {args.kubeconfig}: {exc}", file=sys.stderr)
        return 1
    source = MetricsSource(address, rps=args.rps, poll_seconds=args.poll_interval)
    try:
        await source.start(args.host, args.port)
    except OSError as exc:
        print(
            f"rollback-sandbox metrics: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    try:
        if args.port_out is not None:
            write_port(args.port_out, source.port)
        print(f"Metrics of the simulated cluster at http://{args.host}:{source.port}/metrics")
        print("Press Ctrl-C to stop.", flush=True)
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # signal handlers need a Unix loop
                loop.add_signal_handler(sig, stopped.set)
        await stopped.wait()
    finally:
        await source.stop()
    return 0


def _rps(text: str) -> float:
    value = float(text)
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 10000]")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0.05 <= value <= 60:
        raise argparse.ArgumentTypeError(f"{text} is not in [0.05, 60]")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rollback_sandbox.metrics",
        description="Serve the simulated cluster's pods' request metrics (Prometheus text "
        "format, /metrics), their error ratio and p99 latency set by the annotations "
        "sandbox.rollback-bot.io/error-ratio and sandbox.rollback-bot.io/p99-seconds.",
    )
    parser.add_argument("--kubeconfig", type=Path, required=True, metavar="PATH")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument(
        "--port-out", type=Path, default=None, metavar="FILE", help="where to write the port"
    )
    parser.add_argument(
        "--rps",
        type=_rps,
        default=DEFAULT_RPS,
        help=f"requests per second per pod ({DEFAULT_RPS:g})",
    )
    parser.add_argument(
        "--poll-interval",
        type=_seconds,
        default=POLL_SECONDS,
        metavar="SECONDS",
        help=f"how often the pods are listed ({POLL_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 130
