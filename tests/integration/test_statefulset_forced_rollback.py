"""A StatefulSet rolled back from a version whose pod never becomes ready stays stuck, as in
Kubernetes ("forced rollback"): the controller waits for that pod before replacing it. The bot
waits (kubectl's words), tells how to get it unstuck, and the rollout ends once the pod is
deleted. Against the simulated cluster's StatefulSet controller, through the bot's engine."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.kube.clusters import ClusterRegistry
from bot.adapters.slack import blocks
from bot.domain.errors import RolloutTimedOut
from bot.domain.rollback.models import Target, WorkloadKind
from bot.domain.rollback.planning import RollbackCause
from bot.domain.rollback.progress import Phase, Progress
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster import resources
from rollback_sandbox.cluster.seed import orders_db
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.builders import OneCluster

ORDERS_DB = Target("shop", "orders-db", kind=WorkloadKind.STATEFULSET)
CAUSE = RollbackCause("@oncall", "test", "the new version never starts", datetime.now(UTC))


@pytest.fixture
def cluster() -> Iterator[SandboxThread]:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        yield sandbox


@pytest.fixture
async def engine(cluster: SandboxThread, tmp_path: Path) -> AsyncIterator[RollbackEngine]:
    registry = ClusterRegistry(str(cluster.write_kubeconfig(tmp_path / "kubeconfig")), None)
    yield RollbackEngine(OneCluster(registry.cluster(None)))
    await registry.close()


def deploy_broken(cluster: SandboxThread) -> None:
    sb = cluster.sandbox
    wanted = orders_db("15.7-broken")

    def apply() -> None:
        live = copy.deepcopy(sb.registry.get(resources.STATEFULSETS, "shop", "orders-db"))
        live["spec"]["template"] = wanted["spec"]["template"]
        sb.registry.update(resources.STATEFULSETS, "shop", "orders-db", live)

    cluster.call(apply)


def pods(cluster: SandboxThread) -> dict[str, dict[str, Any]]:
    sb = cluster.sandbox
    listed = cluster.call(lambda: copy.deepcopy(sb.registry.list(resources.PODS, "shop")))
    return {p["metadata"]["name"]: p for p in listed if p["metadata"]["name"].startswith("orders")}


async def follow(engine: RollbackEngine, within: float) -> list[Progress]:
    seen: list[Progress] = []
    try:
        async for progress in engine.follow(ORDERS_DB, within=within):
            seen.append(progress)
    except RolloutTimedOut:
        pass
    return seen


async def test_a_rollback_from_a_pod_that_never_gets_ready_waits_for_it_to_be_deleted(
    cluster: SandboxThread, engine: RollbackEngine
) -> None:
    deploy_broken(cluster)
    stuck = await follow(engine, within=3)
    assert stuck and stuck[-1].phase is not Phase.COMPLETE  # the bad version never comes up
    plan = await engine.plan(ORDERS_DB, None, CAUSE)
    assert plan.target.version == "15.6"
    await engine.apply(ORDERS_DB, plan, CAUSE, snapshot=plan.snapshot)

    waited = await follow(engine, within=3)
    last = waited[-1]
    assert last.phase is Phase.BECOMING_AVAILABLE, last
    assert last.message == "Waiting for 1 pods to be ready..."  # kubectl's words
    broken = [
        name
        for name, pod in pods(cluster).items()
        if "broken" in pod["spec"]["containers"][0]["image"]
    ]
    assert broken == ["orders-db-2"]  # the highest ordinal, still the bad version
    # What the thread says when the bot stops waiting: how to get it unstuck.
    told = blocks.outcome_message(
        "orders-db", "15.6", "shop", "orders-db", last, 3.0, "stopped waiting",
        unknown=True, kind=WorkloadKind.STATEFULSET,
    )  # fmt: skip
    assert "delete pod &lt;pod&gt;" in str(told.blocks)

    sb = cluster.sandbox
    cluster.call(lambda: sb.registry.delete(resources.PODS, "shop", "orders-db-2"))
    done = await follow(engine, within=60)
    assert done[-1].phase is Phase.COMPLETE, done[-1]
    assert all("15.6" in p["spec"]["containers"][0]["image"] for p in pods(cluster).values())
