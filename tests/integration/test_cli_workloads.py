"""The CLI rolls StatefulSets and DaemonSets back as `kubectl rollout undo` does: a subprocess
against the simulated cluster, checked against what kubectl itself then reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import Kubectl, find_kubectl
from tests.integration.test_cli import cli

CATALOG = (
    "services:\n"
    "  orders-db: {namespace: shop, kind: StatefulSet, name: orders-db}\n"
    "  log-agent: {namespace: shop, kind: DaemonSet, name: log-agent}\n"
)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[SandboxThread, Path]]:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        (tmp_path / "catalog.yaml").write_text(CATALOG)
        yield sandbox, sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def kubectl_history(kubeconfig: Path, what: str) -> str:
    kubectl = Kubectl(find_kubectl(), kubeconfig, kubeconfig.parent / "kube-cache")
    return kubectl("rollout", "history", what, "-n", "shop").stdout


def test_history_and_status_of_a_statefulset(demo: tuple[SandboxThread, Path]) -> None:
    result = cli(demo[1], "history", "orders-db", "--output", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["kind"] == "StatefulSet"
    versions = [(r["version"], r["current"]) for r in data["revisions"]]
    assert versions[0] == ("15.6", True) and ("15.4", False) in versions
    # The same revisions kubectl lists.
    listed = kubectl_history(demo[1], "statefulset/orders-db")
    for revision in data["revisions"]:
        assert f"\n{revision['revision']} " in listed
    status = cli(demo[1], "status", "sts/shop/orders-db")
    assert status.returncode == 0, status.stderr
    assert "version   15.6" in status.stdout and "strategy  RollingUpdate" in status.stdout
    assert "statefulset/shop/orders-db" in status.stdout


def test_rollback_of_a_statefulset_to_a_revision(demo: tuple[SandboxThread, Path]) -> None:
    before = json.loads(cli(demo[1], "history", "orders-db", "--output", "json").stdout)
    previous = next(r for r in before["revisions"] if not r["current"])
    result = cli(
        demo[1],
        "rollback",
        "orders-db",
        "--to-revision",
        str(previous["revision"]),
        "--yes",
        "--reason",
        "replication lag",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ControllerRevision" in result.stdout
    assert "rolled back orders-db to 15.4" in result.stdout
    after = json.loads(cli(demo[1], "history", "orders-db", "--output", "json").stdout)
    current = next(r for r in after["revisions"] if r["current"])
    assert current["version"] == "15.4"
    assert current["replicaSet"] == previous["replicaSet"]  # the ControllerRevision reused
    # kubectl sees the reused ControllerRevision as the newest revision, as after its own undo.
    listed = kubectl_history(demo[1], "statefulset/orders-db").split("\n")
    numbers = [int(line.split()[0]) for line in listed if line[:1].isdigit()]
    assert max(numbers) == current["revision"] and previous["revision"] not in numbers


def test_rollback_of_a_daemonset_named_by_kind_and_its_skip(
    demo: tuple[SandboxThread, Path],
) -> None:
    # KIND/NAMESPACE/NAME finds the catalog's entry for it.
    result = cli(demo[1], "rollback", "daemonset/shop/log-agent", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "log-agent (daemonset/shop/log-agent)" in result.stdout
    assert "rolled back log-agent to 3.1.0" in result.stdout
    status = json.loads(cli(demo[1], "status", "log-agent", "--output", "json").stdout)
    assert status["version"] == "3.1.0" and status["kind"] == "DaemonSet"
    # Asking again for the revision it now runs is kubectl's skip, nothing sent.
    history = json.loads(cli(demo[1], "history", "log-agent", "--output", "json").stdout)
    current = next(r for r in history["revisions"] if r["current"])
    again = cli(
        demo[1], "rollback", "log-agent", "--to-revision", str(current["revision"]), "--yes"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "skipped" in again.stdout


def test_a_revision_not_kept_is_refused_in_kubectls_words(
    demo: tuple[SandboxThread, Path],
) -> None:
    result = cli(demo[1], "rollback", "orders-db", "--to-revision", "99", "--yes")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "unable to find specified revision 99 in history" in result.stdout + result.stderr


def test_a_kind_the_bot_does_not_roll_back_is_a_usage_error(
    demo: tuple[SandboxThread, Path],
) -> None:
    result = cli(demo[1], "status", "cronjob/shop/nightly")
    assert result.returncode == 2
    assert "is not a kind the bot rolls back" in result.stderr
