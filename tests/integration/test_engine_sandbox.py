"""The engine against the simulated cluster over real HTTP with the official client:
rollouts to completion and to a stall, conflicts, dropped and expired watches, a sick API."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.kube.clusters import ClusterRegistry, KubernetesCluster
from bot.domain.errors import ClusterError, RolloutTimedOut, Stale
from bot.domain.rollback.models import Target
from bot.domain.rollback.planning import RollbackCause
from bot.domain.rollback.progress import Phase, Progress
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.builders import OneCluster
from tests.integration.kube_history import (
    VERSIONS,
    Kubectl,
    apply,
    build_history,
    create_namespace,
    get,
    manifest,
)

pytestmark = pytest.mark.kubectl

CAUSE = RollbackCause(actor="bob", via="CLI", reason=None, at=datetime.now(UTC))
WEB = Target("apps", "web")


@pytest.fixture
async def cluster(sandbox: SandboxThread, tmp_path: Path) -> AsyncIterator[KubernetesCluster]:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "engine.kubeconfig", namespace="default")
    cluster = ClusterRegistry(str(kubeconfig), None, request_timeout=2).cluster(None)
    yield cluster
    await cluster.close()


@pytest.fixture
def engine(cluster: KubernetesCluster) -> RollbackEngine:
    return RollbackEngine(OneCluster(cluster))


async def follow(
    engine: RollbackEngine, target: Target = WEB, within: float = 30
) -> list[Progress]:
    return [p async for p in engine.follow(target, within=within)]


async def test_rollout_to_completion(kubectl: Kubectl, engine: RollbackEngine) -> None:
    build_history(kubectl, "apps")
    applied = await engine.apply(WEB, await engine.plan(WEB, 2, CAUSE), CAUSE)
    assert applied.attempts == 1
    seen = await follow(engine)
    assert seen[-1].phase is Phase.COMPLETE
    assert seen[-1].available == seen[-1].desired == 3
    # It was watched, not just read once: intermediate states were seen.
    assert len({p.phase for p in seen}) > 1
    deployment = await engine.status(WEB)
    assert (deployment.version, deployment.revision) == ("1.1.0", 5)


async def test_a_stalled_rollout_fails_with_counts_and_the_condition(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    versions = ["0.9.0-broken", "1.0.0"]
    # The broken first revision never became ready; the second did once it replaced it.
    create_namespace(kubectl, "apps")

    for version in versions:
        apply(kubectl, manifest("web", "apps", version, {}, "envoy:1", progressDeadlineSeconds=20))
    kubectl("rollout", "status", "deployment/web", "-n", "apps", "--timeout=60s")
    await engine.apply(WEB, await engine.plan(WEB, 1, CAUSE), CAUSE)
    seen = await follow(engine)
    assert seen[-1].phase is Phase.FAILED
    assert "exceeded its progress deadline" in seen[-1].message
    # The new version never got its pods updated and ready; the old ones kept serving.
    assert seen[-1].updated < seen[-1].desired


async def test_an_injected_conflict_is_retried_on_fresh_state(
    kubectl: Kubectl, engine: RollbackEngine, sandbox: SandboxThread
) -> None:
    build_history(kubectl, "apps")
    plan = await engine.plan(WEB, 2, CAUSE)
    sandbox.faults.fail_next(1, status=409, method="PATCH")
    applied = await engine.apply(WEB, plan, CAUSE)
    assert applied.attempts == 2
    assert (
        get(kubectl, "deployment", "web", "apps")["spec"]["template"]["metadata"]["labels"][
            "app.kubernetes.io/version"
        ]
        == "1.1.0"
    )


async def test_a_real_race_replans_towards_the_same_replicaset(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    build_history(kubectl, "apps")
    plan = await engine.plan(WEB, None, CAUSE)  # previous = 1.2.0, revision 3
    # Someone else rolls back first: revision 3 becomes revision 5.
    kubectl("rollout", "undo", "deployment/web", "-n", "apps")
    applied = await engine.apply(WEB, plan, CAUSE)
    assert applied.attempts == 2
    # "previous" was not recomputed to 1.3.0: it is already at the chosen target.
    assert applied.plan.action == "skip"
    assert applied.plan.target.version == "1.2.0"


async def test_a_dropped_watch_is_resumed(
    kubectl: Kubectl, engine: RollbackEngine, sandbox: SandboxThread
) -> None:
    build_history(kubectl, "apps")
    await engine.apply(WEB, await engine.plan(WEB, 1, CAUSE), CAUSE)
    seen: list[Progress] = []
    async for progress in engine.follow(WEB, within=30):
        seen.append(progress)
        if len(seen) in (1, 3):
            sandbox.faults.drop_watches()
    assert seen[-1].phase is Phase.COMPLETE


async def test_an_expired_watch_lists_again(
    kubectl: Kubectl, engine: RollbackEngine, sandbox: SandboxThread
) -> None:
    build_history(kubectl, "apps")
    await engine.apply(WEB, await engine.plan(WEB, 1, CAUSE), CAUSE)
    seen: list[Progress] = []
    async for progress in engine.follow(WEB, within=30):
        seen.append(progress)
        if len(seen) == 1:
            sandbox.faults.compact_history()
            sandbox.faults.drop_watches()
    assert seen[-1].phase is Phase.COMPLETE


async def test_waiting_longer_than_asked_times_out(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    build_history(kubectl, "apps", versions=VERSIONS[:2], progressDeadlineSeconds=600)
    kubectl("rollout", "pause", "deployment/web", "-n", "apps")
    kubectl("set", "image", "deployment/web", "app=registry.example.com/web:9", "-n", "apps")
    with pytest.raises(RolloutTimedOut, match=r"did not finish within 0\.5s"):
        await follow(engine, within=0.5)


async def test_server_errors_are_one_sentence(
    kubectl: Kubectl, engine: RollbackEngine, sandbox: SandboxThread
) -> None:
    build_history(kubectl, "apps", versions=VERSIONS[:2])
    sandbox.faults.fail_next(5, status=503)
    with pytest.raises(ClusterError) as info:
        await engine.history(WEB)
    message = str(info.value)
    assert "503" in message
    assert "\n" not in message
    assert "Traceback" not in message


async def test_a_slow_api_times_out_with_a_clear_message(
    kubectl: Kubectl, engine: RollbackEngine, sandbox: SandboxThread
) -> None:
    build_history(kubectl, "apps", versions=VERSIONS[:2])
    sandbox.faults.set_latency(3.0)
    try:
        with pytest.raises(ClusterError, match="did not answer within 2s"):
            await engine.status(WEB)
    finally:
        sandbox.faults.set_latency(0.0)


async def test_an_unreachable_api_is_one_clear_sentence(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    from rollback_sandbox.cluster.kubeconfig import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path / "down", f"http://127.0.0.1:{port}")
    cluster = ClusterRegistry(str(kubeconfig), None, request_timeout=2).cluster(None)
    try:
        with pytest.raises(ClusterError) as info:
            await RollbackEngine(OneCluster(cluster)).status(WEB)
    finally:
        await cluster.close()
    assert str(info.value) == (
        f"reading deployment apps/web: cannot reach the Kubernetes API at http://127.0.0.1:{port}"
    )


async def test_a_deploy_between_read_and_patch_is_refused_not_rolled_over(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    build_history(kubectl, "apps")
    plan = await engine.plan(WEB, None, CAUSE)  # what the person confirmed: revision 3 → 2
    # A deploy lands after the read: the patch's resourceVersion precondition gives 409, and the
    # re-read shows a new revision, which the person never saw.
    kubectl("set", "image", "deployment/web", "app=registry.example.com/web:9.9.9", "-n", "apps")
    with pytest.raises(Stale, match="not rolled back: the deployment moved from revision"):
        await engine.apply(WEB, plan, CAUSE, snapshot=plan.snapshot)
    deployed = await engine.status(WEB)
    # The deploy stands; nothing was rolled over it.
    assert deployed.containers[0].image == "registry.example.com/web:9.9.9"


async def test_a_status_only_conflict_still_rolls_back(
    kubectl: Kubectl, engine: RollbackEngine, sandbox: SandboxThread
) -> None:
    build_history(kubectl, "apps")
    plan = await engine.plan(WEB, None, CAUSE)
    sandbox.faults.fail_next(1, 409, method="PATCH", path_contains="deployments")
    applied = await engine.apply(WEB, plan, CAUSE, snapshot=plan.snapshot)
    assert applied.attempts == 2 and applied.plan.action == "patch"


async def test_one_503_on_the_watchs_first_list_is_listed_again(
    kubectl: Kubectl, engine: RollbackEngine, sandbox: SandboxThread
) -> None:
    build_history(kubectl, "apps")
    await engine.apply(WEB, await engine.plan(WEB, 1, CAUSE), CAUSE)
    sandbox.faults.fail_next(1, 503, method="GET", path_contains="deployments")
    seen = [progress async for progress in engine.follow(WEB, within=30)]
    assert sandbox.faults.injected == 1
    assert seen[-1].phase is Phase.COMPLETE
