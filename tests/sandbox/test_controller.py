"""The deployment controller on a frozen simulated clock, driven pass by pass (no HTTP)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rollback_sandbox.cluster import resources as r
from rollback_sandbox.cluster.seed import settle
from rollback_sandbox.cluster.server import Sandbox
from rollback_sandbox.cluster.store import Event

JsonDict = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
HISTORY = "deployment.kubernetes.io/revision-history"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox(seed="empty")
    sandbox.clock.freeze(datetime.now(UTC).replace(microsecond=0))
    yield sandbox


def web(image: str, replicas: int = 4, **spec: Any) -> JsonDict:
    return {
        "metadata": {"name": "web", "annotations": {"kubernetes.io/change-cause": image}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            **spec,
        },
    }


def deployment(sb: Sandbox) -> JsonDict:
    return sb.registry.get(r.DEPLOYMENTS, "default", "web")


def rollout(sb: Sandbox, image: str) -> None:
    """Change the image as `kubectl set image` would, and let the controllers finish."""
    d = deployment(sb)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = image
    d["metadata"]["annotations"]["kubernetes.io/change-cause"] = image
    sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    settle(sb)


def by_image(sb: Sandbox) -> dict[str, JsonDict]:
    return {
        rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs
        for rs in sb.registry.list(r.REPLICASETS, "default")
    }


def undo(sb: Sandbox, revision: int) -> None:
    """kubectl rollout undo --to-revision: its JSON Patch, built the way rollback.go builds it."""
    d = deployment(sb)
    [target] = [
        rs
        for rs in sb.registry.list(r.REPLICASETS, "default")
        if rs["metadata"]["annotations"][REVISION] == str(revision)
    ]
    template = copy.deepcopy(target["spec"]["template"])
    del template["metadata"]["labels"]["pod-template-hash"]
    skipped = {REVISION, HISTORY, "kubectl.kubernetes.io/last-applied-configuration"}
    annotations = {k: v for k, v in d["metadata"]["annotations"].items() if k in skipped}
    annotations.update(
        {
            k: v
            for k, v in target["metadata"]["annotations"].items()
            if not k.startswith("deployment.kubernetes.io/")
        }
    )
    ops = [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]
    sb.registry.patch(r.DEPLOYMENTS, "default", "web", "application/json-patch+json", ops)
    settle(sb)


def test_first_rollout_writes_the_real_status(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1"))
    settle(sb)
    d = deployment(sb)
    assert d["metadata"]["annotations"][REVISION] == "1"
    status = d["status"]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 4,
        "updatedReplicas": 4,
        "readyReplicas": 4,
        "availableReplicas": 4,
    }
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Available", "True", "MinimumReplicasAvailable"),
        ("Progressing", "True", "NewReplicaSetAvailable"),
    ]
    [rs] = by_image(sb).values()
    assert (
        status["conditions"][1]["message"]
        == f'ReplicaSet "{rs["metadata"]["name"]}" has successfully progressed.'
    )
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "web:1"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "5"


def test_rolling_update_keeps_surge_and_availability_bounds(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1", replicas=4))
    settle(sb)
    d = deployment(sb)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    for _ in range(200):
        sb.reconcile()
        rss = sb.registry.list(r.REPLICASETS, "default")
        # 25% of 4: at most 5 pods wanted, at least 3 available
        assert sum(rs["spec"]["replicas"] for rs in rss) <= 5
        assert sum(rs.get("status", {}).get("availableReplicas", 0) for rs in rss) >= 3
        due = sb.next_timer()
        if due is None:
            break
        sb.clock.advance(due + 0.001)
    images = by_image(sb)
    assert images["web:2"]["spec"]["replicas"] == 4
    assert images["web:1"]["spec"]["replicas"] == 0


def test_rollback_reuses_the_replicaset_with_max_plus_one(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1"))
    settle(sb)
    rollout(sb, "web:2")
    rollout(sb, "web:3")
    undo(sb, 1)
    images = by_image(sb)
    assert images["web:1"]["metadata"]["annotations"][REVISION] == "4"
    assert images["web:1"]["metadata"]["annotations"][HISTORY] == "1"
    assert images["web:1"]["spec"]["replicas"] == 4
    d = deployment(sb)
    assert d["metadata"]["annotations"][REVISION] == "4"
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "web:1"
    undo(sb, 3)
    assert by_image(sb)["web:3"]["metadata"]["annotations"][HISTORY] == "3"
    undo(sb, 4)
    assert by_image(sb)["web:1"]["metadata"]["annotations"][HISTORY] == "1,4"
    assert by_image(sb)["web:1"]["metadata"]["annotations"][REVISION] == "6"


def test_revision_history_limit_deletes_the_oldest_idle_replicasets(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1", revisionHistoryLimit=2))
    settle(sb)
    for version in range(2, 6):
        rollout(sb, f"web:{version}")
    revisions = sorted(int(rs["metadata"]["annotations"][REVISION]) for rs in by_image(sb).values())
    assert revisions == [3, 4, 5]


def test_a_broken_image_times_out_at_the_progress_deadline(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1", progressDeadlineSeconds=120))
    settle(sb)
    d = deployment(sb)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2-broken"
    sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    sb.reconcile()
    sb.clock.advance(110)
    sb.reconcile()
    progressing = [c for c in deployment(sb)["status"]["conditions"] if c["type"] == "Progressing"]
    assert progressing[0]["reason"] == "ReplicaSetUpdated"
    sb.clock.advance(20)
    sb.reconcile()
    cond = next(c for c in deployment(sb)["status"]["conditions"] if c["type"] == "Progressing")
    new_rs = by_image(sb)["web:2-broken"]["metadata"]["name"]
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"] == f'ReplicaSet "{new_rs}" has timed out progressing.'
    # maxUnavailable 1 of 4: one old pod goes, three stay serving
    assert deployment(sb)["status"]["availableReplicas"] == 3


def test_paused_deployments_do_not_roll_but_observe_generations(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1"))
    settle(sb)
    d = deployment(sb)
    d["spec"]["paused"] = True
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    settle(sb)
    d = deployment(sb)
    assert list(by_image(sb)) == ["web:1"]
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"] == 2
    cond = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    )
    d["spec"]["replicas"] = 6  # scaling still works while paused
    sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    settle(sb)
    assert by_image(sb)["web:1"]["spec"]["replicas"] == 6


def test_recreate_scales_old_to_zero_before_the_new_one(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1", strategy={"type": "Recreate"}))
    settle(sb)
    old_pods: list[int] = []  # old pods still there whenever the new ReplicaSet is scaled up

    def watch(event: Event) -> None:
        obj = event.obj
        image = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])[0]
        if (
            event.key == r.REPLICASETS.key
            and image.get("image") == "web:2"
            and obj["spec"]["replicas"] > 0
        ):
            old_pods.append(
                len(sb.registry.list(r.PODS, "default", ())) - obj["status"].get("replicas", 0)
            )

    sb.store.listeners.append(watch)
    d = deployment(sb)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    settle(sb)
    assert by_image(sb)["web:1"]["spec"]["replicas"] == 0
    assert by_image(sb)["web:2"]["spec"]["replicas"] == 4
    assert old_pods and set(old_pods) == {0}


def test_generation_counts_spec_and_annotation_changes_only(sb: Sandbox) -> None:
    sb.registry.create(r.DEPLOYMENTS, "default", web("web:1"))
    d = deployment(sb)
    d["metadata"]["labels"] = {"x": "y"}
    d = sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    assert d["metadata"]["generation"] == 1
    d["metadata"]["annotations"]["note"] = "n"
    d = sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    assert d["metadata"]["generation"] == 2
    rv = d["metadata"]["resourceVersion"]
    same = sb.registry.update(r.DEPLOYMENTS, "default", "web", d)
    assert same["metadata"]["resourceVersion"] == rv  # a no-op write is not written


def test_demo_seed_has_a_settled_three_revision_history() -> None:
    sb = Sandbox(seed="demo")
    d = sb.registry.get(r.DEPLOYMENTS, "shop", "checkout")
    assert d["metadata"]["annotations"][REVISION] == "3"
    assert d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("checkout:2.14.0")
    assert d["status"]["availableReplicas"] == d["status"]["updatedReplicas"] == 3
    checkout = sorted(
        (
            rs
            for rs in sb.registry.list(r.REPLICASETS, "shop", ())
            if rs["metadata"]["name"].startswith("checkout-")
        ),
        key=lambda rs: int(rs["metadata"]["annotations"][REVISION]),
    )
    assert [
        rs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] for rs in checkout
    ] == [
        "2.12.0",
        "2.13.0",
        "2.14.0",
    ]
    assert [rs["spec"]["replicas"] for rs in checkout] == [0, 0, 3]
    newest = datetime.strptime(checkout[-1]["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    age = datetime.now(UTC).replace(tzinfo=None) - newest
    assert 600 < age.total_seconds() < 900
    assert sb.registry.get(r.DEPLOYMENTS, "shop", "cart")["status"]["availableReplicas"] == 2
