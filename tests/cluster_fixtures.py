"""Fixtures for integration tests: a fresh simulated cluster and the pinned real kubectl."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.paths import REPO

# simulated seconds per real second: a pod gets ready in ~15 ms, a 600 s deadline takes 3 s
FAST = 200.0


def find_kubectl() -> str:
    """The pinned kubectl: from PATH (the Makefile puts .tools/bin first), else .tools/bin.

    A system kubectl in /usr/bin is never used: its version is not the one we test against.
    """
    for candidate in (shutil.which("kubectl"), str(REPO / ".tools" / "bin" / "kubectl")):
        if candidate and Path(candidate).is_file() and not candidate.startswith("/usr/bin/"):
            return candidate
    pytest.fail("the pinned kubectl is missing: run `make tools` (scripts/install-tools.sh)")


class Kubectl:
    """Runs the real kubectl against one sandbox, with its own kubeconfig and cache."""

    def __init__(self, binary: str, kubeconfig: Path, cache_dir: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60.0, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            self.binary,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            *args,
        ]
        result = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result


@pytest.fixture
def sandbox() -> Iterator[SandboxThread]:
    """A fresh, empty simulated cluster (only the `default` namespace), running fast."""
    with SandboxThread(seed="empty", speed=FAST) as sb:
        yield sb


@pytest.fixture
def kubectl(sandbox: SandboxThread, tmp_path: Path) -> Kubectl:
    """The real kubectl, pointed at `sandbox` with `default` as its namespace."""
    config = sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="default")
    return Kubectl(find_kubectl(), config, tmp_path / "kube-cache")
