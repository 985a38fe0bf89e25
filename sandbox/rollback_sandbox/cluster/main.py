"""`rollback-sandbox`: serve the simulated cluster until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from rollback_sandbox.cluster.kubeconfig import write_kubeconfig
from rollback_sandbox.cluster.server import Sandbox


async def _serve(host: str, port: int, kubeconfig: Path, seed: str, speed: float) -> int:
    sandbox = Sandbox(seed=seed, speed=speed)
    try:
        await sandbox.start(host, port)
    except OSError as exc:
        print(f"rollback-sandbox: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    path = write_kubeconfig(
        kubeconfig, sandbox.url, namespace="shop" if seed == "demo" else "default"
    )
    print(f"Simulated Kubernetes API at {sandbox.url} (seed {seed!r}, speed {speed:g}x)")
    print(f"Kubeconfig written to {path.resolve()}")
    print()
    print(f"  export KUBECONFIG={path.resolve()}")
    print("  kubectl get deploy,rs,pods")
    print("  kubectl rollout history deployment/checkout")
    print()
    print("Press Ctrl-C to stop.", flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # signal handlers need a Unix loop
            loop.add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        await sandbox.stop()
    print("sandbox stopped", flush=True)
    return 0


def run(host: str, port: int, kubeconfig: Path, seed: str, speed: float) -> int:
    """Start the sandbox, write its kubeconfig, print how to use it, serve until stopped."""
    try:
        return asyncio.run(_serve(host, port, kubeconfig, seed, speed))
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rollback-sandbox",
        description="Run a simulated Kubernetes cluster (demo data by default) and write its "
        "kubeconfig; kubectl and rollback-bot use it like a real one.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443, help="0 picks a free port")
    parser.add_argument(
        "--kubeconfig-out", type=Path, default=Path("sandbox.kubeconfig"), metavar="PATH"
    )
    parser.add_argument("--seed", choices=("demo", "empty"), default="demo")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second (1.0)"
    )
    args = parser.parse_args(argv)
    return run(args.host, args.port, args.kubeconfig_out, args.seed, args.speed)
