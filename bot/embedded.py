"""Embedded defaults for `rollback-bot serve` on a machine with no cluster configured: the
simulated cluster runs as a separate process (the bot only speaks HTTP to it), with demo data."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from bot.catalog import Catalog, ServiceEntry

START_TIMEOUT = 30.0


def cluster_configured(kubeconfig: str | None) -> bool:
    """A kubeconfig given or at its default place, or running inside a cluster."""
    return bool(
        kubeconfig
        or os.environ.get("KUBECONFIG")
        or Path("~/.kube/config").expanduser().exists()
        or os.environ.get("KUBERNETES_SERVICE_HOST")
    )


def demo_catalog() -> Catalog:
    return Catalog(
        services={
            "checkout": ServiceEntry(namespace="shop", deployment="checkout"),
            "cart": ServiceEntry(namespace="shop", deployment="cart"),
        },
        source="embedded demo",
    )


@contextlib.contextmanager
def embedded_cluster(speed: float = 2.0) -> Iterator[Path]:
    """Run `rollback-bot sandbox` (demo seed, a free port) and yield its kubeconfig path."""
    with tempfile.TemporaryDirectory(prefix="rollback-bot-") as tmp:
        kubeconfig = Path(tmp) / "sandbox.kubeconfig"
        process = subprocess.Popen(
            [
                sys.executable, "-m", "bot", "sandbox", "--port", "0", "--seed", "demo",
                "--speed", str(speed), "--kubeconfig-out", str(kubeconfig),
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _readable(kubeconfig):
                if process.poll() is not None:
                    raise RuntimeError("the embedded simulated cluster exited at start")
                if time.monotonic() > deadline:
                    raise RuntimeError("the embedded simulated cluster did not start in time")
                time.sleep(0.05)
            yield kubeconfig
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _readable(path: Path) -> bool:
    try:
        return bool(yaml.safe_load(path.read_text()).get("clusters"))
    except (OSError, AttributeError, yaml.YAMLError):
        return False
