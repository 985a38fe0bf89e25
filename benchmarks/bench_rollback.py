"""Rollback engine figures on this machine (not a test: it prints numbers, it asserts nothing).

1. plan + patch: from `rollback` start (read history, plan) to the patch accepted, in-process.
2. CLI wall time (`rollback-bot rollback --yes`, which follows the rollout) against
   `kubectl rollout undo` + `kubectl rollout status`, and both dry runs, on the same sandbox.
3. listing one Deployment's revisions in a namespace holding 2,000 ReplicaSets of others.

Medians of several runs; the machine is shared and noisy, so compare ratios, not absolutes.
Run: `make bench` (or .venv/bin/python -m benchmarks.bench_rollback [--runs N]).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from benchmarks.stack import bot_command, kubectl_binary, running_cluster
from bot.adapters.kube.clusters import ClusterRegistry
from bot.domain.rollback.models import Target
from bot.usecases.rollback.engine import RollbackEngine

CHECKOUT = Target("shop", "checkout")


def median_ms(samples: list[float]) -> str:
    middle, low = statistics.median(samples) * 1000, min(samples) * 1000
    return f"{middle:8.1f} ms (n={len(samples)}, min {low:.1f})"


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def plan_and_patch(kubeconfig: Path, runs: int) -> list[float]:
    clusters = ClusterRegistry(str(kubeconfig), None)
    engine = RollbackEngine(clusters)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        plan = await engine.plan(CHECKOUT, None)  # "previous" each time: alternates two versions
        await engine.apply(CHECKOUT, plan)
        samples.append(time.perf_counter() - start)
        async for progress in engine.follow(CHECKOUT, within=60):
            if progress.finished:
                break
    await clusters.close()
    return samples


def undo_and_wait(run: Callable[[list[str]], None], kubectl: list[str]) -> None:
    run([*kubectl, "rollout", "undo", "deployment/checkout"])
    run([*kubectl, "rollout", "status", "deployment/checkout"])


def cli_vs_kubectl(kubeconfig: Path, runs: int) -> dict[str, list[float]]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    kubectl = [kubectl_binary(), f"--kubeconfig={kubeconfig}", "-n", "shop"]
    bot = bot_command()
    results: dict[str, list[float]] = {k: [] for k in ("cli", "kubectl", "cli-dry", "kubectl-dry")}

    def run(argv: list[str]) -> None:
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)

    for _ in range(runs):
        results["cli"].append(timed(lambda: run([*bot, "rollback", "shop/checkout", "--yes"])))
        results["kubectl"].append(timed(lambda: undo_and_wait(run, kubectl)))
        results["cli-dry"].append(
            timed(lambda: run([*bot, "rollback", "shop/checkout", "--dry-run"]))
        )
        results["kubectl-dry"].append(
            timed(
                lambda: run(
                    [*kubectl, "rollout", "undo", "deployment/checkout", "--dry-run=server"]
                )
            )
        )
    return results


def crowd_namespace(kubeconfig: Path, count: int) -> float:
    """Create `count` ReplicaSets of other Deployments in `shop`; returns seconds taken."""
    api = config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    apps = client.AppsV1Api(api)
    start = time.perf_counter()
    for i in range(count):
        labels = {"app": f"other-{i % 200}", "pod-template-hash": f"h{i}"}
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"other-{i % 200}-h{i}",
                "labels": labels,
                "annotations": {"deployment.kubernetes.io/revision": str(i // 200 + 1)},
            },
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": f"other:{i}"}]},
                },
            },
        }
        # Raw JSON: the typed client would parse every answer into models for nothing.
        try:
            response: Any = apps.create_namespaced_replica_set(
                "shop",
                body,  # type: ignore[arg-type]
                _request_timeout=10,
                _preload_content=False,
            )
        except urllib3.exceptions.ProtocolError as exc:
            sys.exit(f"creating ReplicaSet {i} failed: {exc}")
        response.read()  # all of it, so the pooled connection is clean for the next request
        response.release_conn()
    api.close()
    return time.perf_counter() - start


async def list_revisions(kubeconfig: Path, runs: int) -> list[float]:
    clusters = ClusterRegistry(str(kubeconfig), None)
    engine = RollbackEngine(clusters)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        history = await engine.history(CHECKOUT)
        samples.append(time.perf_counter() - start)
    assert len(history.revisions) <= 10, "other Deployments' ReplicaSets leaked into the history"
    await clusters.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--replicasets", type=int, default=2000)
    args = parser.parse_args()
    runs, replicasets = args.runs, args.replicasets
    # The simulated cluster in its own process, as a real API server would be: it must not
    # share this process's interpreter lock with the code being measured.
    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), speed=200) as cluster:
        run_all(cluster.kubeconfig, runs, replicasets)


def run_all(kubeconfig: Path, runs: int, replicasets: int) -> None:
    print(f"machine: {os.cpu_count()} cores")
    patch_times = asyncio.run(plan_and_patch(kubeconfig, runs))
    print(f"plan + patch (in-process)      {median_ms(patch_times)}")
    figures = cli_vs_kubectl(kubeconfig, runs)
    cli, kubectl = statistics.median(figures["cli"]), statistics.median(figures["kubectl"])
    print(f"CLI rollback --yes (waits)     {median_ms(figures['cli'])}")
    print(f"kubectl undo + rollout status  {median_ms(figures['kubectl'])}")
    print(f"  ratio CLI / kubectl          {cli / kubectl:8.2f}")
    dry, kdry = statistics.median(figures["cli-dry"]), statistics.median(figures["kubectl-dry"])
    print(f"CLI rollback --dry-run         {median_ms(figures['cli-dry'])}")
    print(f"kubectl undo --dry-run=server  {median_ms(figures['kubectl-dry'])}")
    print(f"  ratio CLI / kubectl (dry)    {dry / kdry:8.2f}")
    before = asyncio.run(list_revisions(kubeconfig, runs))
    created = crowd_namespace(kubeconfig, replicasets)
    after = asyncio.run(list_revisions(kubeconfig, runs))
    print(f"list revisions, quiet ns       {median_ms(before)}")
    print(
        f"list revisions, +{replicasets} RSs     {median_ms(after)}   (created in {created:.1f} s)"
    )
    ratio = statistics.median(after) / statistics.median(before)
    print(f"  ratio crowded / quiet        {ratio:8.2f}")


if __name__ == "__main__":
    main()
