"""`rollback-bot analyze` as people and scripts run it: a subprocess, against the real Prometheus
(Debian's, scraping the harness' test exporter every second) and the simulated cluster.

Two services, each deployed at 1.0.0 and then at 1.1.0 through the cluster's API. The exporter
serves each revision's pods under the pod-template-hash the cluster gave its ReplicaSet (read
back after deploying): the old pods at 0.5 % errors, then, from the second deploy on, the new
pods beside them, at 20 % errors for `payments` and 0.5 % for `search`. The catalog watches both
with a short analysis (20 s window, every 2 s, rates over 5 s, 2 breaching intervals in a row).

One Prometheus and one cluster for the module: the world is built once (about 30 s: Prometheus'
first samples, then the window after the deploy) and the CLI runs against it several times.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import FAST
from tests.integration.deploys import deploy, replicaset_of
from tests.integration.prometheus import (
    Prometheus,
    TestExporter,
    exporting,
    requires_prometheus,
    running_prometheus,
)

pytestmark = [requires_prometheus, pytest.mark.asyncio(loop_scope="module")]

NAMESPACE = "default"
WINDOW_SECONDS = 20
BAD, GOOD = "payments", "search"
ERROR_RATIOS = {BAD: 0.2, GOOD: 0.005}
BASELINE_ERRORS = 0.005
ANALYSIS = "      window: 20s\n      interval: 2s\n      query_window: 5s\n      consecutive: 2\n"


async def deploy_version(cluster: SandboxThread, name: str, version: str) -> tuple[str, datetime]:
    """Deploy `version` of `name` as a CI would; the new revision's pod-template-hash and its
    ReplicaSet's creation time, once the cluster made it."""
    async with aiohttp.ClientSession() as http:
        await deploy(http, cluster, NAMESPACE, name, version)
        return await replicaset_of(http, cluster, NAMESPACE, name, version)


def catalog_text(prometheus_url: str) -> str:
    entries = [
        f"  {name}:\n    namespace: {NAMESPACE}\n    deployment: {name}\n    auto_rollback:\n"
        f"      prometheus: {{url: '{prometheus_url}'}}\n{ANALYSIS}"
        for name in (BAD, GOOD)
    ]
    # The same Deployment without a block: analysed only with a Prometheus given.
    plain = f"  {BAD}-presets:\n    namespace: {NAMESPACE}\n    deployment: {BAD}\n"
    return "services:\n" + "".join(entries) + plain


@dataclass
class World:
    cluster: SandboxThread
    kubeconfig: Path
    catalog: Path
    prometheus: Prometheus
    exporter: TestExporter
    hashes: dict[str, tuple[str, str]]  # service → (old, new) pod-template-hash
    workdir: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    workdir = tmp_path_factory.mktemp("analyze")
    with SandboxThread(seed="empty", speed=FAST) as cluster:
        async with exporting() as exporter:
            old = {name: (await deploy_version(cluster, name, "1.0.0"))[0] for name in (BAD, GOOD)}
            for name, pods in old.items():
                exporter.set_version(
                    pods,
                    namespace=NAMESPACE,
                    deployment=name,
                    rps=50,
                    error_ratio=BASELINE_ERRORS,
                    served_for=60,
                )
            async with running_prometheus(workdir / "prometheus", [exporter.target]) as prometheus:
                for pods in old.values():
                    await prometheus.wait_for_samples(
                        f'http_requests_total{{pod_template_hash="{pods}"}}', timeout=30
                    )
                hashes: dict[str, tuple[str, str]] = {}
                went_out: list[datetime] = []
                for name in (BAD, GOOD):
                    new, created = await deploy_version(cluster, name, "1.1.0")
                    went_out.append(created)
                    exporter.set_version(
                        new,
                        namespace=NAMESPACE,
                        deployment=name,
                        rps=50,
                        error_ratio=ERROR_RATIOS[name],
                    )
                    hashes[name] = (old[name], new)
                catalog = workdir / "catalog.yaml"
                catalog.write_text(catalog_text(prometheus.url))
                kubeconfig = cluster.write_kubeconfig(workdir / "kubeconfig", namespace=NAMESPACE)
                # The whole window after the deploys, and a scrape more, for a healthy verdict.
                ready = max(went_out) + timedelta(seconds=WINDOW_SECONDS + 2)
                await asyncio.sleep(max(0.0, (ready - datetime.now(UTC)).total_seconds()))
                yield World(cluster, kubeconfig, catalog, prometheus, exporter, hashes, workdir)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


async def cli(world: World, *args: str, env: Mapping[str, str] | None = None) -> Run:
    """`rollback-bot ARGS` as a subprocess, awaited: the exporter serves its scrapes meanwhile."""
    base = {
        "KUBECONFIG": str(world.kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(world.catalog),
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "200",
        "HOME": str(world.workdir),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=world.workdir,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode(), stderr.decode())


async def test_a_bad_new_version_exits_4_with_the_evidence_and_draws_its_chart(
    world: World,
) -> None:
    chart = world.workdir / "payments.png"
    run = await cli(world, "analyze", BAD, "--chart", str(chart))
    assert run.code == 4, run.stdout + run.stderr
    old, new = world.hashes[BAD]
    out = run.stdout
    assert f"revision 2 (1.1.0), pod-template-hash {new}" in out
    assert f"baseline   revision 1 (pod-template-hash {old}): its pods running alongside" in out
    assert "BREACH  breach confirmed: 2 intervals in a row breached" in out
    # The table's row: signal, baseline, new, rule, outcome.
    row = next(line for line in out.splitlines() if "error ratio" in line and "│" in line)
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells == ["error ratio", "0.5%", "20%", "new > 3× baseline and > 1%", "breach"]
    assert "error ratio breached: 20% is above 3× the baseline 0.5%" in out
    assert f'pod_template_hash="{new}",code=~"5.."}}[5s]' in out
    assert f"graph     {world.prometheus.url}/graph?g0.expr=" in out
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert run.stderr == ""


async def test_a_good_new_version_exits_0_and_scripts_get_the_figures(world: World) -> None:
    run = await cli(world, "analyze", GOOD, "-o", "json")
    assert run.code == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    old, new = world.hashes[GOOD]
    assert (report["verdict"], report["exitCode"]) == ("healthy", 0)
    assert report["reason"].startswith("healthy: no breach confirmed in less than a minute")
    assert (report["revision"], report["podTemplateHash"]) == (2, new)
    assert report["baseline"]["podTemplateHash"] == old
    assert report["baseline"]["alongsideIntervals"] >= 8
    errors = report["signals"][0]
    assert (errors["name"], errors["outcome"]) == ("error ratio", "pass")
    judged = [p for p in errors["points"] if p["new"] is not None]
    assert judged and all(p["new"] == pytest.approx(0.005, rel=0.05) for p in judged)
    assert errors["link"].startswith(f"{world.prometheus.url}/graph?")


async def test_prometheus_stopped_gives_no_verdict_and_exit_3(world: World) -> None:
    async with running_prometheus(world.workdir / "stopped", [world.exporter.target]) as stopped:
        url = stopped.url
    catalog = world.workdir / "stopped.yaml"
    catalog.write_text(catalog_text(url))
    run = await cli(world, "analyze", BAD, env={"ROLLBACK_BOT_CONFIG": str(catalog)})
    assert run.code == 3, run.stdout + run.stderr
    assert f"NO VERDICT  no verdict: Prometheus at {url} is unreachable: connection refused" in (
        run.stdout
    )
    assert "Traceback" not in run.stderr


async def test_a_service_without_auto_rollback_needs_a_prometheus(world: World) -> None:
    run = await cli(world, "analyze", f"{BAD}-presets")
    assert run.code == 2
    assert run.stderr == (
        f"error: {BAD}-presets has no auto_rollback block in the service catalog, and no "
        "Prometheus is known to analyse it with the default signals: give --prometheus URL or "
        "set ROLLBACK_BOT_PROMETHEUS_URL\n"
    )
    # With one, the default signals (a 10-minute window, every 30 s): too early to judge yet.
    run = await cli(
        world, "analyze", f"{BAD}-presets", "--prometheus", world.prometheus.url, "-o", "json"
    )
    assert run.code == 3, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert (report["windowSeconds"], report["intervalSeconds"]) == (600, 30)
    assert report["reason"].startswith("no verdict yet")
