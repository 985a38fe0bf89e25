"""The real kubectl is the oracle: the same history rolled back by `kubectl rollout undo` and by
the bot's engine gives the same Deployment.

Two namespaces get the same history through kubectl; one is rolled back by kubectl, the other
by the engine, over real HTTP with the official client. Compared: spec.template and all
annotations (the bot's own and the change-cause it writes aside), then the revision the
controller assigns once both settle.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.kube.clusters import ClusterRegistry
from bot.domain.errors import RollbackRefused
from bot.domain.rollback.models import (
    BOT_ANNOTATION_PREFIX,
    CHANGE_CAUSE_ANNOTATION,
    LAST_APPLIED_ANNOTATION,
    Target,
)
from bot.domain.rollback.planning import RollbackCause
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.builders import OneCluster
from tests.integration.kube_history import Kubectl, build_history, get

pytestmark = pytest.mark.kubectl

CAUSE = RollbackCause(actor="alice", via="CLI", reason="bad deploy", at=datetime.now(UTC))


@pytest.fixture
async def engine(sandbox: SandboxThread, tmp_path: Path) -> AsyncIterator[RollbackEngine]:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "engine.kubeconfig", namespace="default")
    cluster = ClusterRegistry(str(kubeconfig), None, request_timeout=5).cluster(None)
    yield RollbackEngine(OneCluster(cluster))
    await cluster.close()


def comparable(deployment: dict[str, Any], *, drop_bot: bool) -> dict[str, Any]:
    annotations = dict(deployment["metadata"].get("annotations") or {})
    # kubectl apply recorded each copy's own namespace; nothing else may differ.
    namespace = deployment["metadata"]["namespace"]
    annotations[LAST_APPLIED_ANNOTATION] = annotations[LAST_APPLIED_ANNOTATION].replace(
        f'"namespace":"{namespace}"', '"namespace":"NS"'
    )
    if drop_bot:
        annotations = {
            k: v for k, v in annotations.items() if not k.startswith(BOT_ANNOTATION_PREFIX)
        }
        annotations.pop(CHANGE_CAUSE_ANNOTATION, None)
    return {"template": copy.deepcopy(deployment["spec"]["template"]), "annotations": annotations}


async def roll_back_both(
    kubectl: Kubectl, engine: RollbackEngine, to_revision: int | None, cause: RollbackCause | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    build_history(kubectl, "by-kubectl")
    build_history(kubectl, "by-bot")
    undo = ["rollout", "undo", "deployment/web", "-n", "by-kubectl"]
    if to_revision is not None:
        undo.append(f"--to-revision={to_revision}")
    kubectl(*undo)
    target = Target("by-bot", "web")
    plan = await engine.plan(target, to_revision, cause)
    applied = await engine.apply(target, plan, cause)
    assert applied.deployment is not None
    return get(kubectl, "deployment", "web", "by-kubectl"), get(
        kubectl, "deployment", "web", "by-bot"
    )


@pytest.mark.parametrize("to_revision", [2, 1, None], ids=["to-2", "to-1", "previous"])
async def test_exactly_kubectls_result(
    kubectl: Kubectl, engine: RollbackEngine, to_revision: int | None
) -> None:
    by_kubectl, by_bot = await roll_back_both(kubectl, engine, to_revision, cause=None)
    assert comparable(by_bot, drop_bot=False) == comparable(by_kubectl, drop_bot=False)
    # Not vacuous: the rollback changed the template to the target's version.
    expected = {2: "1.1.0", 1: "1.0.0", None: "1.2.0"}[to_revision]
    assert by_bot["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == expected


async def test_with_the_bots_record_only_its_own_annotations_and_change_cause_differ(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    by_kubectl, by_bot = await roll_back_both(kubectl, engine, 2, cause=CAUSE)
    assert comparable(by_bot, drop_bot=True) == comparable(by_kubectl, drop_bot=True)
    notes = by_bot["metadata"]["annotations"]
    assert notes[CHANGE_CAUSE_ANNOTATION] == (
        "rolled back to revision 2 (1.1.0) by alice via CLI: bad deploy"
    )
    assert notes["rollback-bot.io/rolled-back-by"] == "alice"
    assert by_kubectl["metadata"]["annotations"][CHANGE_CAUSE_ANNOTATION] == "deploy 1.1.0"


async def test_the_controller_gives_both_the_same_new_revision_and_history(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    await roll_back_both(kubectl, engine, 2, cause=None)
    for namespace in ("by-kubectl", "by-bot"):
        kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    histories = {
        ns: kubectl("rollout", "history", "deployment/web", "-n", ns).stdout.splitlines()[1:]
        for ns in ("by-kubectl", "by-bot")
    }
    assert histories["by-bot"] == histories["by-kubectl"]
    # Revision 2's ReplicaSet was reused as revision 5, as the real controller does.
    assert [line.split()[0] for line in histories["by-bot"] if line.strip()][-3:] == ["3", "4", "5"]
    history = await engine.history(Target("by-bot", "web"))
    assert history.current is not None
    assert (history.current.number, history.current.version) == (5, "1.1.0")


async def test_server_side_dry_run_persists_nothing_in_either(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    build_history(kubectl, "dry")
    before = get(kubectl, "deployment", "web", "dry")
    out = kubectl("rollout", "undo", "deployment/web", "-n", "dry", "--dry-run=server").stdout
    assert "rolled back (server dry run)" in out
    target = Target("dry", "web")
    applied = await engine.apply(
        target, await engine.plan(target, None, CAUSE), CAUSE, dry_run=True
    )
    assert applied.deployment is not None
    assert applied.deployment.version == "1.2.0"  # what it would become
    after = get(kubectl, "deployment", "web", "dry")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["template"] == before["spec"]["template"]


async def test_paused_is_refused_by_both(kubectl: Kubectl, engine: RollbackEngine) -> None:
    build_history(kubectl, "paused")
    kubectl("rollout", "pause", "deployment/web", "-n", "paused")
    result = kubectl("rollout", "undo", "deployment/web", "-n", "paused", check=False)
    assert result.returncode != 0
    assert "you cannot rollback a paused deployment" in result.stderr
    with pytest.raises(RollbackRefused, match="you cannot roll back a paused deployment"):
        await engine.plan(Target("paused", "web"), None)


async def test_already_at_target_is_skipped_by_both_without_a_patch(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    build_history(kubectl, "same")
    before = get(kubectl, "deployment", "web", "same")
    out = kubectl("rollout", "undo", "deployment/web", "-n", "same", "--to-revision=4").stdout
    assert "skipped rollback (current template already matches revision 4)" in out
    target = Target("same", "web")
    applied = await engine.apply(target, await engine.plan(target, 4, CAUSE), CAUSE)
    assert applied.plan.action == "skip"
    assert applied.deployment is None
    after = get(kubectl, "deployment", "web", "same")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


async def test_a_missing_revision_is_refused_by_both(
    kubectl: Kubectl, engine: RollbackEngine
) -> None:
    build_history(kubectl, "missing")
    result = kubectl(
        "rollout", "undo", "deployment/web", "-n", "missing", "--to-revision=9", check=False
    )
    assert result.returncode != 0
    assert "unable to find specified revision 9 in history" in result.stderr
    with pytest.raises(RollbackRefused, match="unable to find revision 9"):
        await engine.plan(Target("missing", "web"), 9)


async def test_no_history_is_refused_by_both(kubectl: Kubectl, engine: RollbackEngine) -> None:
    build_history(kubectl, "fresh", versions=[{"version": "1.0.0", "env": {}, "proxy": "envoy:1"}])
    result = kubectl("rollout", "undo", "deployment/web", "-n", "fresh", check=False)
    assert result.returncode != 0
    assert "no rollout history found" in result.stderr
    with pytest.raises(RollbackRefused, match="no rollout history found"):
        await engine.plan(Target("fresh", "web"), None)
