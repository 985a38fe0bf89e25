"""`rollback-bot switch SERVICE --to COLOR` as people and scripts run it: a subprocess against
the simulated demo cluster (shop/web routing to web-green, web-blue scaled to 0), checked with
the real kubectl. Pods are ready a second after they start, so a second switch can be asked
while the first waits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import Kubectl, find_kubectl
from tests.integration.test_cli import cli

pytestmark = pytest.mark.kubectl

CATALOG = """services:
  checkout: {namespace: shop, deployment: checkout}
  web:
    kind: BlueGreen
    namespace: shop
    service: web
    selector_key: color
    blue: web-blue
    green: web-green
"""
SERVICE_NAME = "kubernetes.io/service-name"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, Kubectl]]:
    with SandboxThread(seed="demo", speed=40, ready_after=40.0) as sandbox:
        (tmp_path / "catalog.yaml").write_text(CATALOG)
        kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        yield kubeconfig, Kubectl(find_kubectl(), kubeconfig, tmp_path / "kubectl-cache")


def get(kubectl: Kubectl, *what: str) -> Any:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def slice_pods(kubectl: Kubectl) -> set[str]:
    listed = get(kubectl, "endpointslices", "-l", f"{SERVICE_NAME}=web")
    return {
        ep["targetRef"]["name"]
        for s in listed["items"]
        for ep in s.get("endpoints") or []
        if ep["conditions"]["ready"]
    }


def audit(kubeconfig: Path) -> list[dict[str, Any]]:
    lines = (kubeconfig.parent / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_switch_scales_blue_up_switches_and_tells_the_time(demo: tuple[Path, Kubectl]) -> None:
    kubeconfig, kubectl = demo
    status = cli(kubeconfig, "status", "web")
    assert status.returncode == 0, status.stderr
    assert "routes to green (color=green)" in status.stdout
    assert "web-blue 4.1.0: scaled down (0 replicas)" in status.stdout

    result = cli(kubeconfig, "switch", "web", "--to", "blue", "--yes", "--reason", "5xx on green")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "plan  scale web-blue up to 3 replicas and wait until they are available" in out
    assert "switching web: green (4.2.0) → blue (4.1.0)" in out
    assert "scaling up web-blue from 0 to 3 replicas" in out
    assert "blue is ready: 3/3 available" in out
    assert "Service web now selects blue" in out
    took = re.search(
        r"switched web to blue in (under 0\.1s|[\d.]+s): EndpointSlices show only blue's pods "
        r"\(3 of 3 endpoints are blue's pods\); ([\d.]+)s in all",
        out,
    )
    assert took is not None, out
    assert took.group(1) == "under 0.1s" or float(took.group(1).rstrip("s")) < 1.0

    service = get(kubectl, "service/web")
    assert service["spec"]["selector"] == {"app": "web", "color": "blue"}
    pods = slice_pods(kubectl)
    assert len(pods) == 3 and all(p.startswith("web-blue-") for p in pods)
    assert get(kubectl, "deploy/web-blue")["spec"]["replicas"] == 3

    records = [r for r in audit(kubeconfig) if r["service"] == "web"]
    assert [r["step"] for r in records][:2] == ["confirmed", "started"]
    assert records[-1]["step"] == "succeeded"
    assert {r["kind"] for r in records} == {"BlueGreen"}
    assert records[-1]["from_version"] == "green (4.2.0)"
    assert records[-1]["to_version"] == "blue (4.1.0)"
    assert records[-1]["reason"] == "5xx on green"
    assert records[-1]["via"] == "CLI"

    again = cli(kubeconfig, "switch", "web", "--to", "blue", "--yes")
    assert again.returncode == 0, again.stderr
    assert "web already routes to blue: nothing to switch" in again.stdout


def test_usage_refusals_and_a_blue_green_service_is_never_rolled_back_as_a_deployment(
    demo: tuple[Path, Kubectl],
) -> None:
    kubeconfig, kubectl = demo
    status = cli(kubeconfig, "status", "web", "-o", "json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert (data["kind"], data["serviceName"], data["live"]) == ("BlueGreen", "web", "green")
    blue, green = data["colors"]
    assert (blue["deployment"], blue["version"], blue["scaledDown"]) == ("web-blue", "4.1.0", True)
    assert green["endpoints"] == {"total": 3, "ready": 3}
    history = cli(kubeconfig, "history", "web")
    assert history.returncode == 0 and "each colour's own revisions" in history.stdout
    rollback = cli(kubeconfig, "rollback", "web", "--yes")
    assert rollback.returncode == 2
    assert "rollback-bot switch web --to blue or green" in rollback.stderr
    unknown = cli(kubeconfig, "switch", "web", "--to", "red", "--yes")
    assert unknown.returncode == 2
    assert "'red' is not a colour of web: choose blue or green" in unknown.stderr
    deployment = cli(kubeconfig, "switch", "checkout", "--to", "blue", "--yes")
    assert deployment.returncode == 2
    assert "checkout is not a blue-green service" in deployment.stderr
    # no terminal, no --yes: nothing changes
    unconfirmed = cli(kubeconfig, "switch", "web", "--to", "blue")
    assert unconfirmed.returncode == 3
    assert "confirmation needed" in unconfirmed.stderr
    assert get(kubectl, "service/web")["spec"]["selector"]["color"] == "green"
    assert get(kubectl, "deploy/web-blue")["spec"]["replicas"] == 0


def test_a_second_switch_while_one_runs_is_refused(demo: tuple[Path, Kubectl]) -> None:
    kubeconfig, kubectl = demo
    env = {
        "KUBECONFIG": str(kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(kubeconfig.parent / "catalog.yaml"),
        "ROLLBACK_BOT_AUDIT_FILE": str(kubeconfig.parent / "audit.jsonl"),
        "PATH": "/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    first = subprocess.Popen(
        [sys.executable, "-m", "bot", "switch", "web", "--to", "blue", "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        deadline = time.monotonic() + 20
        seen = ""
        while "scaling up" not in seen and time.monotonic() < deadline:
            seen += first.stdout.readline()
        assert "scaling up" in seen, seen
        # blue takes a second to be ready: the first holds the Service's lock meanwhile
        second = cli(kubeconfig, "switch", "web", "--to", "blue", "--yes")
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 3, second.stderr
    assert "not switched:" in second.stderr and "is already switching web to blue" in second.stderr
    assert "lock held by cli@" in second.stderr
    assert first.returncode == 0, err
    assert "switched web to blue" in out
    assert get(kubectl, "service/web")["spec"]["selector"]["color"] == "blue"
