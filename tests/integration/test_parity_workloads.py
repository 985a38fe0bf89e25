"""The real kubectl is the oracle for StatefulSets and DaemonSets too: the same random history
rolled back by `kubectl rollout undo` and by the bot's plan (`bot.domain.rollback.workload_undo`,
its body sent over the API as a strategic merge patch) gives the same `spec.template`.

Two namespaces get the same history through kubectl (each version applied and rolled out in
turn); one is rolled back by kubectl, the other by the plan, read from the API server the way
the bot reads it (the workload, then its ControllerRevisions by the workload's selector).
Histories are random but seeded: containers added and removed, env vars changed, images,
labels and annotations of the template, so a field an older revision lacks must disappear.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bot.adapters.kube.clusters import ClusterRegistry
from bot.domain.errors import RollbackRefused
from bot.domain.rollback.controller_revisions import owned_history
from bot.domain.rollback.models import CHANGE_CAUSE_ANNOTATION, Target, WorkloadKind
from bot.domain.rollback.planning import RollbackCause
from bot.domain.rollback.progress import Phase
from bot.domain.rollback.workload_undo import plan_undo
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.builders import OneCluster
from tests.integration.kube_history import Kubectl, apply, create_namespace, get

pytestmark = pytest.mark.kubectl

KINDS = {
    WorkloadKind.STATEFULSET: ("statefulset", "statefulsets"),
    WorkloadKind.DAEMONSET: ("daemonset", "daemonsets"),
}


def random_versions(seed: int, count: int) -> list[dict[str, Any]]:
    """`count` pod templates, each a random change of the one before."""
    rng = random.Random(seed)  # noqa: S311 - a seeded history, not a secret
    versions: list[dict[str, Any]] = []
    env = {"MODE": "safe"}
    sidecar: str | None = "envoy:1.29"
    note: str | None = None
    for n in range(count):
        version = f"1.{n}.0"
        if rng.random() < 0.5:
            env = {**env, f"FLAG_{rng.randrange(5)}": rng.choice(["on", "off"])}
        if rng.random() < 0.3 and len(env) > 1:
            env.pop(rng.choice(sorted(env)))
        if rng.random() < 0.4:
            sidecar = None if sidecar else f"envoy:1.{rng.randrange(28, 32)}"
        if rng.random() < 0.4:
            note = None if note else f"note-{rng.randrange(100)}"
        versions.append({"version": version, "env": dict(env), "sidecar": sidecar, "note": note})
    return versions


def manifest(kind: WorkloadKind, name: str, namespace: str, v: dict[str, Any]) -> str:
    containers: list[dict[str, Any]] = [
        {
            "name": "app",
            "image": f"registry.example.com/{name}:{v['version']}",
            "env": [{"name": k, "value": value} for k, value in sorted(v["env"].items())],
        }
    ]
    if v["sidecar"]:
        containers.append({"name": "proxy", "image": v["sidecar"]})
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name, "app.kubernetes.io/version": v["version"]}},
        "spec": {"containers": containers},
    }
    if v["note"]:
        template["metadata"]["annotations"] = {"example.com/note": v["note"]}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template}
    if kind is WorkloadKind.STATEFULSET:
        spec |= {"replicas": 2, "serviceName": name}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": kind.value,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def build(kubectl: Kubectl, kind: WorkloadKind, namespace: str, versions: list[Any]) -> None:
    singular = KINDS[kind][0]
    create_namespace(kubectl, namespace)
    for v in versions:
        apply(kubectl, manifest(kind, "web", namespace, v))
        kubectl("rollout", "status", f"{singular}/web", "-n", namespace, "--timeout=60s")


async def undo_by_plan(
    sandbox: SandboxThread, kind: WorkloadKind, namespace: str, to_revision: int
) -> str:
    """Read the workload and its ControllerRevisions over the API, plan, send the plan's body:
    the plan's message (kubectl's words)."""
    plural = KINDS[kind][1]
    base = f"{sandbox.url}/apis/apps/v1/namespaces/{namespace}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/{plural}/web") as answer:
            assert answer.status == 200, await answer.text()
            workload = await answer.json()
        labels = workload["spec"]["selector"]["matchLabels"]
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        async with http.get(
            f"{base}/controllerrevisions", params={"labelSelector": selector}
        ) as answer:
            assert answer.status == 200, await answer.text()
            listed = await answer.json()
        plan = plan_undo(kind, workload, owned_history(workload, listed), to_revision)
        if plan.action == "patch":
            async with http.patch(
                f"{base}/{plural}/web",
                data=json.dumps(plan.body()),
                headers={"Content-Type": plan.content_type},
            ) as answer:
                assert answer.status == 200, await answer.text()
        return plan.message


def template_of(kubectl: Kubectl, kind: WorkloadKind, namespace: str) -> dict[str, Any]:
    template: dict[str, Any] = get(kubectl, KINDS[kind][0], "web", namespace)["spec"]["template"]
    return template


@pytest.mark.parametrize("kind", list(KINDS), ids=[k.value for k in KINDS])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_histories_roll_back_to_exactly_kubectls_template(
    kubectl: Kubectl, sandbox: SandboxThread, kind: WorkloadKind, seed: int
) -> None:
    rng = random.Random(seed * 7919)  # noqa: S311 - a seeded choice, not a secret
    versions = random_versions(seed, rng.randrange(2, 5))
    to_revision = rng.choice([0, *range(1, len(versions))])
    build(kubectl, kind, "by-kubectl", versions)
    build(kubectl, kind, "by-bot", versions)
    before = template_of(kubectl, kind, "by-bot")

    undo = ["rollout", "undo", f"{KINDS[kind][0]}/web", "-n", "by-kubectl"]
    if to_revision:
        undo.append(f"--to-revision={to_revision}")
    said = kubectl(*undo).stdout
    message = await undo_by_plan(sandbox, kind, "by-bot", to_revision)

    assert template_of(kubectl, kind, "by-bot") == template_of(kubectl, kind, "by-kubectl")
    assert message in said, (message, said)
    # Not vacuous: the rollback went to another version than the one running.
    expected = versions[(to_revision or len(versions) - 1) - 1]["version"]
    after = template_of(kubectl, kind, "by-bot")["metadata"]["labels"]["app.kubernetes.io/version"]
    assert after == expected
    assert after != before["metadata"]["labels"]["app.kubernetes.io/version"]


@pytest.mark.parametrize("kind", list(KINDS), ids=[k.value for k in KINDS])
async def test_already_at_the_revision_is_skipped_by_both_in_kubectls_words(
    kubectl: Kubectl, sandbox: SandboxThread, kind: WorkloadKind
) -> None:
    versions = random_versions(5, 2)
    build(kubectl, kind, "skip", versions)
    before = get(kubectl, KINDS[kind][0], "web", "skip")["metadata"]["resourceVersion"]
    said = kubectl("rollout", "undo", f"{KINDS[kind][0]}/web", "-n", "skip", "--to-revision=2")
    message = await undo_by_plan(sandbox, kind, "skip", 2)
    assert message == "skipped rollback (current template already matches revision 2)"
    assert message in said.stdout
    after = get(kubectl, KINDS[kind][0], "web", "skip")["metadata"]["resourceVersion"]
    assert after == before


@pytest.mark.parametrize("kind", list(KINDS), ids=[k.value for k in KINDS])
async def test_a_missing_revision_is_refused_by_both(
    kubectl: Kubectl, sandbox: SandboxThread, kind: WorkloadKind
) -> None:
    build(kubectl, kind, "missing", random_versions(6, 2))
    refused = kubectl(
        "rollout", "undo", f"{KINDS[kind][0]}/web", "-n", "missing", "--to-revision=9", check=False
    )
    assert refused.returncode != 0
    assert "unable to find specified revision 9 in history" in refused.stderr
    with pytest.raises(RollbackRefused, match="unable to find specified revision 9 in history"):
        await undo_by_plan(sandbox, kind, "missing", 9)


@pytest.mark.parametrize("kind", list(KINDS), ids=[k.value for k in KINDS])
@pytest.mark.parametrize("seed", [4, 5])
async def test_the_bots_engine_rolls_back_to_exactly_kubectls_template(
    kubectl: Kubectl, sandbox: SandboxThread, kind: WorkloadKind, seed: int, tmp_path: Path
) -> None:
    """The whole path the bot takes (the kube adapter's read of the workload and its
    ControllerRevisions, `plan_rollback`, the engine's patch with its precondition and record,
    the follow to the end) against kubectl's own undo of the same history."""
    rng = random.Random(seed * 104729)  # noqa: S311 - a seeded choice, not a secret
    versions = random_versions(seed, rng.randrange(2, 5))
    to_revision = rng.choice([0, *range(1, len(versions))])
    build(kubectl, kind, "kubectl-undo", versions)
    build(kubectl, kind, "bot-undo", versions)
    undo = ["rollout", "undo", f"{KINDS[kind][0]}/web", "-n", "kubectl-undo"]
    if to_revision:
        undo.append(f"--to-revision={to_revision}")
    kubectl(*undo)

    registry = ClusterRegistry(str(sandbox.write_kubeconfig(tmp_path / "kubeconfig")), None)
    engine = RollbackEngine(OneCluster(registry.cluster(None)))
    target = Target("bot-undo", "web", kind=kind)
    cause = RollbackCause("@parity", "test", None, datetime.now(UTC))
    try:
        plan = await engine.plan(target, to_revision or None, cause)
        applied = await engine.apply(target, plan, cause, snapshot=plan.snapshot)
        assert applied.deployment is not None and applied.deployment.kind is kind
        last = [p async for p in engine.follow(target, within=60)][-1]
    finally:
        await registry.close()

    assert last.phase is Phase.COMPLETE, last.message
    assert template_of(kubectl, kind, "bot-undo") == template_of(kubectl, kind, "kubectl-undo")
    annotations = get(kubectl, KINDS[kind][0], "web", "bot-undo")["metadata"]["annotations"]
    assert annotations[CHANGE_CAUSE_ANNOTATION].startswith(
        f"rolled back to revision {plan.target.number} "
    )
