"""The CLI as people and scripts use it: a subprocess against the simulated cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import Kubectl, find_kubectl

CATALOG = "services:\n  checkout: {namespace: shop, deployment: checkout}\n"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[SandboxThread, Path]]:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        (tmp_path / "catalog.yaml").write_text(CATALOG)
        yield sandbox, sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def cli(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "KUBECONFIG": str(kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(kubeconfig.parent / "catalog.yaml"),
        "PATH": "/usr/bin:/bin",
        "USER": "carol",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_history_as_json_for_scripts(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "history", "checkout", "--output", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(r["revision"], r["version"], r["current"]) for r in data["revisions"]] == [
        (3, "2.14.0", True),
        (2, "2.13.0", False),
        (1, "2.12.0", False),
    ]
    assert data["revisions"][1]["images"]["checkout"].endswith(":2.13.0")


def test_status_table_for_people(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "status", "shop/checkout")
    assert result.returncode == 0, result.stderr
    assert "version   2.14.0 (revision 3)" in result.stdout
    assert "3/3 ready" in result.stdout


def test_rollback_shows_the_plan_rolls_back_and_exits_0(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    result = cli(demo[1], "rollback", "checkout", "--yes", "--reason", "errors after 2.14.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from  2.14.0 (revision 3)" in result.stdout
    assert (
        "containers[checkout].image: registry.example.com/shop/checkout:2.14.0 →" in result.stdout
    )
    assert "rolled back checkout to 2.13.0" in result.stdout
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    history = kubectl("rollout", "history", "deployment/checkout", "-n", "shop").stdout
    assert "rolled back to revision 2 (2.13.0) by carol via CLI: errors after 2.14.0" in history


def test_dry_run_changes_nothing(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "rollback", "checkout", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    after = json.loads(cli(demo[1], "status", "checkout", "-o", "json").stdout)
    assert after["version"] == "2.14.0"


def test_without_a_terminal_confirmation_is_refused(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "rollback", "checkout", stdin="")
    assert result.returncode == 3
    assert "pass --yes" in result.stdout


def test_a_paused_deployment_is_refused_with_exit_3(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    Kubectl(find_kubectl(), demo[1], tmp_path / "cache")(
        "rollout", "pause", "deployment/checkout", "-n", "shop"
    )
    result = cli(demo[1], "rollback", "checkout", "--yes")
    assert result.returncode == 3
    assert "paused" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failed_rollout_exits_4_and_a_slow_one_5(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    kubectl = Kubectl(find_kubectl(), demo[1], tmp_path / "cache")
    kubectl("patch", "deployment/checkout", "-n", "shop", "-p",
            '{"spec":{"progressDeadlineSeconds":30}}')  # fmt: skip
    broken = "checkout=registry.example.com/shop/checkout:2.15.0-broken"
    kubectl("set", "image", "deployment/checkout", broken, "-n", "shop")
    kubectl("rollout", "status", "deployment/checkout", "-n", "shop", check=False)
    # Back to the broken revision from a good one: it stalls again.
    assert cli(demo[1], "rollback", "checkout", "--yes").returncode == 0  # to 2.14.0
    failed = cli(demo[1], "rollback", "checkout", "--yes", "--to-revision", "4")
    assert failed.returncode == 4, failed.stdout + failed.stderr
    assert "exceeded its progress deadline" in failed.stderr
    kubectl("patch", "deployment/checkout", "-n", "shop", "-p",
            '{"spec":{"progressDeadlineSeconds":6000}}')  # fmt: skip
    # Back on a good version, then towards the broken one with a short wait: timed out.
    assert cli(demo[1], "rollback", "checkout", "--yes", "--to-revision", "5").returncode == 0
    timed_out = cli(
        demo[1], "rollback", "checkout", "--yes", "--to-revision", "6", "--timeout", "1s"
    )
    assert timed_out.returncode == 5, timed_out.stdout + timed_out.stderr
    assert "did not finish within 1s" in timed_out.stderr


def test_unknown_service_and_unreachable_cluster_are_one_sentence(
    demo: tuple[SandboxThread, Path], tmp_path: Path
) -> None:
    unknown = cli(demo[1], "status", "chekout")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: unknown service 'chekout': did you mean 'checkout'?"
    demo[0].stop()
    down = cli(demo[1], "history", "checkout")
    assert down.returncode == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:" in down.stderr
    assert "Traceback" not in down.stderr
