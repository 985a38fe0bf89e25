"""Argo Rollouts in the simulated cluster, judged by the real kubectl (v1.33) and the official
Python client: `kubectl get ro`, a canary run step by step (setWeight, timed and indefinite
pauses), the plugin's `abort` (a status merge patch) and `undo` (a JSON patch of spec.template,
built by the bot's domain exactly as the plugin builds it), a broken image that stalls, history
pruning, and the seeded shop/payments-canary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from bot.domain.rollback.argo_rollouts import (
    HASH_LABEL,
    JSON_PATCH,
    MERGE_PATCH,
    REVISION_ANNOTATION,
    RolloutRefused,
    abort_progress,
    plan_abort,
    plan_undo,
    rollout_history,
    rollout_progress,
    rollout_state,
)
from bot.domain.rollback.progress import Phase
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import FAST, Kubectl, find_kubectl

pytestmark = pytest.mark.kubectl

JsonDict = dict[str, Any]
ABORT = '{"status":{"abort":true}}'
PROMOTE = '{"status":{"pauseConditions":null}}'  # the plugin's promote of a paused canary


def manifest(
    version: str,
    steps: list[JsonDict],
    *,
    image: str | None = None,
    replicas: int = 5,
    extra: JsonDict | None = None,
) -> str:
    labels = {"app": "web", "app.kubernetes.io/version": version}
    spec: JsonDict = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"canary": {"steps": steps}},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": image or f"registry.example.com/web:{version}",
                        "ports": [{"name": "http", "containerPort": 8080}],
                    }
                ]
            },
        },
        **(extra or {}),
    }
    obj = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web"},
        "spec": spec,
    }
    return json.dumps(obj)


def apply(kubectl: Kubectl, version: str, steps: list[JsonDict], **kwargs: Any) -> None:
    kubectl("apply", "--validate=false", "-f", "-", stdin=manifest(version, steps, **kwargs))


def get(kubectl: Kubectl, *what: str) -> Any:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def status(kubectl: Kubectl) -> JsonDict:
    found: JsonDict = get(kubectl, "rollout", "web").get("status") or {}
    return found


def wait_status(
    kubectl: Kubectl, check: Callable[[JsonDict], bool], what: str, timeout: float = 10.0
) -> JsonDict:
    seen: list[JsonDict] = []

    def probe() -> bool:
        seen[:] = [status(kubectl)]
        return check(seen[0])

    wait_for(probe, what, timeout)
    return seen[0]


def healthy(s: JsonDict) -> bool:
    return s.get("phase") == "Healthy" and s.get("stableRS") == s.get("currentPodHash")


def deploy(kubectl: Kubectl, version: str, steps: list[JsonDict], **kwargs: Any) -> JsonDict:
    apply(kubectl, version, steps, **kwargs)
    return wait_status(
        kubectl,
        lambda s: healthy(s) and get_version(kubectl) == version,
        f"{version} healthy",
    )


def get_version(kubectl: Kubectl) -> str:
    ro = get(kubectl, "rollout", "web")
    labels: dict[str, str] = ro["spec"]["template"]["metadata"]["labels"]
    return labels["app.kubernetes.io/version"]


def replicasets(kubectl: Kubectl) -> dict[int, JsonDict]:
    """web's ReplicaSets by revision."""
    return {
        int(rs["metadata"]["annotations"][REVISION_ANNOTATION]): rs
        for rs in get(kubectl, "rs", "-l", "app=web")["items"]
    }


def by_hash(kubectl: Kubectl, pod_hash: str) -> JsonDict:
    found: list[JsonDict] = [
        rs
        for rs in get(kubectl, "rs", "-l", "app=web")["items"]
        if rs["metadata"]["labels"][HASH_LABEL] == pod_hash
    ]
    [rs] = found
    return rs


def pods_of(kubectl: Kubectl, pod_hash: str) -> list[JsonDict]:
    found: list[JsonDict] = get(kubectl, "pods", "-l", f"{HASH_LABEL}={pod_hash}")["items"]
    return found


def events(kubectl: Kubectl) -> list[str]:
    """The Rollout's event messages, oldest first (the recorder names them by time)."""
    items = get(kubectl, "events", "--field-selector", "involvedObject.name=web")["items"]
    items = [e for e in items if e["involvedObject"]["kind"] == "Rollout"]
    return [e["message"] for e in sorted(items, key=lambda e: e["metadata"]["name"])]


def condition(s: JsonDict, kind: str) -> JsonDict:
    found: JsonDict = next(c for c in s["conditions"] if c["type"] == kind)
    return found


def table(kubectl: Kubectl, *args: str) -> list[list[str]]:
    lines = kubectl(*args).stdout.splitlines()
    return [line.split() for line in lines]


# ---------------------------------------------------------------------- served like the CRD


def test_rollouts_are_served_as_the_crd_serves_them(kubectl: Kubectl) -> None:
    resources = table(kubectl, "api-resources", "--api-group=argoproj.io")
    assert ["rollouts", "ro", "argoproj.io/v1alpha1", "true", "Rollout"] in resources
    s = deploy(kubectl, "1.0", [{"setWeight": 50}, {"pause": {"duration": 5}}])
    rows = table(kubectl, "get", "ro")
    assert rows[0] == ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][:5] == ["web", "5", "5", "5", "5"]
    assert table(kubectl, "get", "rollouts.argoproj.io")[1][:5] == rows[1][:5]
    assert kubectl("get", "rollout", "web", "-o", "name").stdout.strip() == (
        "rollout.argoproj.io/web"
    )
    # the first template goes straight to stable, its ReplicaSet owned and labelled
    [rs] = replicasets(kubectl).values()
    pod_hash = s["currentPodHash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["labels"][HASH_LABEL] == pod_hash
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: pod_hash}
    assert rs["metadata"]["annotations"][REVISION_ANNOTATION] == "1"
    assert rs["metadata"]["annotations"]["rollout.argoproj.io/desired-replicas"] == "5"
    [owner] = rs["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Rollout", "web", True)
    ro = get(kubectl, "rollout", "web")
    assert owner["uid"] == ro["metadata"]["uid"]
    assert ro["metadata"]["annotations"][REVISION_ANNOTATION] == "1"
    assert (s["stableRS"], s["currentStepIndex"], s["observedGeneration"]) == (pod_hash, 2, "1")
    assert (s["replicas"], s["updatedReplicas"], s["availableReplicas"]) == (5, 5, 5)
    assert s["selector"] == "app=web" and "abort" not in s and "pauseConditions" not in s
    assert condition(s, "Progressing")["reason"] == "NewReplicaSetAvailable"
    for kind in ("Available", "Healthy", "Completed"):
        assert condition(s, kind)["status"] == "True"
    assert "Rollout completed update to revision 1 (" in " ".join(events(kubectl))
    # the scale subresource, as the CRD declares it
    kubectl("scale", "rollout", "web", "--replicas=3")
    wait_status(kubectl, lambda s: healthy(s) and s.get("availableReplicas") == 3, "3 replicas")
    assert len(pods_of(kubectl, pod_hash)) == 3


# ---------------------------------------------------------------------- the canary steps


def test_a_template_change_runs_the_canary_steps(kubectl: Kubectl, sandbox: SandboxThread) -> None:
    steps: list[JsonDict] = [
        {"setWeight": 20},
        {"pause": {"duration": "400s"}},  # two real seconds at FAST
        {"setWeight": 60},
        {"pause": {}},
    ]
    first = deploy(kubectl, "1.0", steps)
    stable_hash = first["currentPodHash"]
    apply(kubectl, "2.0", steps)
    s = wait_status(
        kubectl, lambda s: s.get("currentStepIndex") == 1 and s.get("phase") == "Paused", "pause 1"
    )
    canary_hash = s["currentPodHash"]
    assert canary_hash != stable_hash and s["stableRS"] == stable_hash
    assert s["message"] == "CanaryPauseStep" and s["controllerPause"] is True
    [pause] = s["pauseConditions"]
    assert pause["reason"] == "CanaryPauseStep" and pause["startTime"]
    canary_rs, stable_rs = by_hash(kubectl, canary_hash), by_hash(kubectl, stable_hash)
    assert (canary_rs["spec"]["replicas"], stable_rs["spec"]["replicas"]) == (1, 4)
    assert condition(s, "Progressing")["reason"] == "RolloutPaused"
    # the timed pause ends on the sandbox clock: its timer is what the loop sleeps towards
    left = sandbox.call(sandbox.sandbox.argo_rollouts.next_timer)
    assert left is not None and 0 < left <= 400
    s = wait_status(
        kubectl, lambda s: s.get("currentStepIndex") == 3 and s.get("phase") == "Paused", "pause 2"
    )
    assert s["stableRS"] == stable_hash
    assert by_hash(kubectl, canary_hash)["spec"]["replicas"] == 3  # ceil(60% of 5)
    assert by_hash(kubectl, stable_hash)["spec"]["replicas"] == 2
    assert table(kubectl, "get", "ro")[1][:5] == ["web", "5", "5", "3", "5"]
    # an indefinite pause waits for a person: the plugin's promote clears the pause conditions
    time.sleep(0.3)
    assert status(kubectl)["currentStepIndex"] == 3
    kubectl("patch", "rollout", "web", "--subresource=status", "--type", "merge", "-p", PROMOTE)
    s = wait_status(kubectl, healthy, "2.0 promoted")
    assert s["stableRS"] == canary_hash and s["currentStepIndex"] == 4
    assert by_hash(kubectl, stable_hash)["spec"]["replicas"] == 0
    assert len(pods_of(kubectl, canary_hash)) == 5
    assert [m for m in events(kubectl) if m.startswith("Rollout step")] == [
        "Rollout step 1/4 completed (setWeight: 20)",
        "Rollout step 2/4 completed (pause: 400s)",
        "Rollout step 3/4 completed (setWeight: 60)",
        "Rollout step 4/4 completed (pause)",
    ]


def test_a_full_promotion_skips_the_remaining_steps(kubectl: Kubectl) -> None:
    steps: list[JsonDict] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
    stable_hash = deploy(kubectl, "1.0", steps)["currentPodHash"]
    apply(kubectl, "2.0", steps)
    s = wait_status(kubectl, lambda s: s.get("phase") == "Paused", "the canary paused")
    assert s["currentStepIndex"] == 1
    full = '{"status":{"promoteFull":true}}'  # the plugin's promote --full
    kubectl("patch", "rollout", "web", "--subresource=status", "--type", "merge", "-p", full)
    s = wait_status(kubectl, healthy, "2.0 fully promoted")
    assert s["stableRS"] != stable_hash and "promoteFull" not in s
    assert s["currentStepIndex"] == 4
    assert any(m.endswith(": Full promotion requested") for m in events(kubectl))
    assert not any(m.startswith("Rollout step 2/4") for m in events(kubectl))


# ---------------------------------------------------------------------- abort


def test_abort_mid_canary_goes_back_to_stable_at_once(kubectl: Kubectl) -> None:
    steps: list[JsonDict] = [{"setWeight": 40}, {"pause": {}}]
    stable_hash = deploy(kubectl, "1.0", steps)["currentPodHash"]
    apply(kubectl, "2.0", steps)
    s = wait_status(kubectl, lambda s: s.get("phase") == "Paused", "the canary paused")
    canary_hash = s["currentPodHash"]
    assert by_hash(kubectl, canary_hash)["spec"]["replicas"] == 2
    plan = plan_abort(get(kubectl, "rollout", "web"), get(kubectl, "rs"))
    assert plan.content_type == MERGE_PATCH and plan.subresource == "status"
    assert json.dumps(plan.body(), separators=(",", ":")) == ABORT
    assert plan.effect == "traffic back to stable 1.0 at once"
    kubectl("patch", "rollout", "web", "--subresource=status", "--type", "merge", "-p", ABORT)
    s = wait_status(
        kubectl,
        lambda s: s.get("phase") == "Degraded" and not pods_of(kubectl, canary_hash),
        "the abort",
    )
    assert s["message"] == "RolloutAborted: Rollout aborted update to revision 2"
    assert s["abort"] is True and s["abortedAt"]
    assert s["currentStepIndex"] == 0 and "pauseConditions" not in s
    assert (s["stableRS"], s["currentPodHash"]) == (stable_hash, canary_hash)
    progressing = condition(s, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False",
        "RolloutAborted",
        "Rollout aborted update to revision 2",
    )
    assert by_hash(kubectl, canary_hash)["spec"]["replicas"] == 0
    stable = by_hash(kubectl, stable_hash)
    assert stable["spec"]["replicas"] == 5
    wait_for(
        lambda: by_hash(kubectl, stable_hash)["status"].get("availableReplicas") == 5, "stable"
    )
    ro = get(kubectl, "rollout", "web")
    assert abort_progress(ro).phase is Phase.COMPLETE
    assert rollout_progress(ro).phase is Phase.FAILED
    assert rollout_state(ro).aborted
    with pytest.raises(RolloutRefused, match="already aborted"):
        plan_abort(ro)
    assert "Rollout aborted update to revision 2" in events(kubectl)
    # a new deploy (here a merge patch of the template) clears the abort and starts the steps
    template = {
        "metadata": {"labels": {"app.kubernetes.io/version": "3.0"}},
        "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:3.0"}]},
    }
    patch = json.dumps({"spec": {"template": template}})
    kubectl("patch", "rollout", "web", "--type", "merge", "-p", patch)
    s = wait_status(
        kubectl, lambda s: s.get("phase") == "Paused" and "abort" not in s, "3.0 canary"
    )
    assert s["currentStepIndex"] == 1 and s["stableRS"] == stable_hash
    assert (
        by_hash(kubectl, s["currentPodHash"])["metadata"]["annotations"][REVISION_ANNOTATION] == "3"
    )


def test_undo_to_stable_after_an_abort_skips_the_steps(kubectl: Kubectl) -> None:
    steps: list[JsonDict] = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 80}, {"pause": {}}]
    stable_hash = deploy(kubectl, "1.0", steps)["currentPodHash"]
    apply(kubectl, "2.0", steps)
    wait_status(kubectl, lambda s: s.get("phase") == "Paused", "the canary paused")
    kubectl("patch", "rollout", "web", "--subresource=status", "--type", "merge", "-p", ABORT)
    wait_status(kubectl, lambda s: s.get("phase") == "Degraded", "the abort")
    steps_before = [m for m in events(kubectl) if m.startswith("Rollout step")]
    assert steps_before == ["Rollout step 1/4 completed (setWeight: 20)"]
    plan = plan_undo(get(kubectl, "rollout", "web"), get(kubectl, "rs"), 0)
    assert (plan.action, plan.to_revision, plan.to_version) == ("patch", 1, "1.0")
    kubectl("patch", "rollout", "web", "--type", "json", "-p", json.dumps(plan.body()))
    s = wait_status(kubectl, lambda s: healthy(s) and "abort" not in s, "back on stable")
    assert s["currentPodHash"] == stable_hash and s["currentStepIndex"] == 4
    assert "Rollback to stable ReplicaSets" in events(kubectl)
    assert [m for m in events(kubectl) if m.startswith("Rollout step")] == steps_before
    revisions = replicasets(kubectl)
    assert sorted(revisions) == [2, 3]
    assert revisions[3]["metadata"]["labels"][HASH_LABEL] == stable_hash
    assert revisions[3]["metadata"]["annotations"]["rollout.argoproj.io/revision-history"] == "1"
    assert revisions[2]["spec"]["replicas"] == 0


# ---------------------------------------------------------------------- undo


def test_the_plugins_undo_patch_reuses_the_old_replicaset_under_a_new_revision(
    kubectl: Kubectl,
) -> None:
    steps: list[JsonDict] = [{"setWeight": 50}, {"pause": {"duration": 10}}]
    hashes = [deploy(kubectl, v, steps)["currentPodHash"] for v in ("1.0", "2.0", "3.0")]
    generation = get(kubectl, "rollout", "web")["metadata"]["generation"]
    ro, rss = get(kubectl, "rollout", "web"), get(kubectl, "rs")
    plan = plan_undo(ro, rss, 0)
    assert (plan.from_revision, plan.to_revision, plan.to_version) == (3, 2, "2.0")
    assert plan.content_type == JSON_PATCH
    # exactly what the plugin sends: the ReplicaSet's template without the hash label
    target = replicasets(kubectl)[2]["spec"]["template"]
    del target["metadata"]["labels"][HASH_LABEL]
    assert plan.body() == [{"op": "replace", "path": "/spec/template", "value": target}]
    kubectl(
        "patch", "rollout", "web", "--type", "json", "-p", json.dumps(plan.body(precondition=True))
    )
    s = wait_status(
        kubectl, lambda s: healthy(s) and s["currentPodHash"] == hashes[1], "back at 2.0"
    )
    ro = get(kubectl, "rollout", "web")
    assert ro["metadata"]["generation"] == generation + 1
    assert s["observedGeneration"] == str(generation + 1)
    assert ro["metadata"]["annotations"][REVISION_ANNOTATION] == "4"
    revisions = replicasets(kubectl)
    assert sorted(revisions) == [1, 3, 4]  # no new ReplicaSet: revision 2 became 4
    assert revisions[4]["metadata"]["name"] == f"web-{hashes[1]}"
    assert revisions[4]["metadata"]["annotations"]["rollout.argoproj.io/revision-history"] == "2"
    # it ran the canary steps again, as for any template that is not the stable one
    assert events(kubectl).count("Rollout step 1/2 completed (setWeight: 50)") == 3
    history = rollout_history(ro, get(kubectl, "rs"))
    assert [(r.number, r.version, r.current) for r in history.revisions] == [
        (4, "2.0", True),
        (3, "3.0", False),
        (1, "1.0", False),
    ]
    # undoing to where it is is skipped; a stale resourceVersion is refused by the server
    assert plan_undo(ro, get(kubectl, "rs"), 4).message == (
        "skipped rollback (current template already matches revision 4)"
    )
    stale = plan_undo(ro, get(kubectl, "rs"), 1)
    kubectl("annotate", "rollout", "web", "touched=yes")
    refused = kubectl(
        "patch",
        "rollout",
        "web",
        "--type",
        "json",
        "-p",
        json.dumps(stale.body(precondition=True)),
        check=False,
    )
    assert refused.returncode != 0 and "Conflict" in refused.stderr + refused.stdout
    with pytest.raises(RolloutRefused, match="unable to find specified revision 2 in history"):
        plan_undo(ro, get(kubectl, "rs"), 2)


# ---------------------------------------------------------------------- a broken image


def test_a_broken_canary_stalls_then_times_out(kubectl: Kubectl) -> None:
    steps: list[JsonDict] = [{"setWeight": 20}, {"pause": {}}]
    extra = {"progressDeadlineSeconds": 300}  # 1.5 s at FAST
    stable_hash = deploy(kubectl, "1.0", steps, extra=extra)["currentPodHash"]
    apply(kubectl, "2.0", steps, image="registry.example.com/web:2.0-broken", extra=extra)
    s = wait_status(kubectl, lambda s: s.get("currentPodHash") != stable_hash, "the canary")
    canary_hash = s["currentPodHash"]
    wait_for(lambda: len(pods_of(kubectl, canary_hash)) == 1, "the canary pod")
    s = status(kubectl)
    assert (s["phase"], s["message"], s["currentStepIndex"]) == (
        "Progressing",
        "more replicas need to be updated",
        0,
    )
    s = wait_status(kubectl, lambda s: s.get("phase") == "Degraded", "the progress deadline")
    assert s["message"] == (
        f'ProgressDeadlineExceeded: ReplicaSet "web-{canary_hash}" has timed out progressing.'
    )
    assert s["currentStepIndex"] == 0
    assert rollout_progress(get(kubectl, "rollout", "web")).phase is Phase.FAILED
    # the controller does not go back on its own: an abort does
    plan = plan_abort(get(kubectl, "rollout", "web"), get(kubectl, "rs"))
    assert plan.canary_version == "2.0" and plan.stable_version == "1.0"
    kubectl("patch", "rollout", "web", "--subresource=status", "--type", "merge", "-p", ABORT)
    s = wait_status(
        kubectl, lambda s: s.get("message", "").startswith("RolloutAborted"), "the abort"
    )
    wait_for(lambda: not pods_of(kubectl, canary_hash), "the canary pod gone")
    assert by_hash(kubectl, stable_hash)["spec"]["replicas"] == 5


# ---------------------------------------------------------------------- history pruning


def test_old_replicasets_beyond_the_history_limit_are_deleted(kubectl: Kubectl) -> None:
    extra = {"revisionHistoryLimit": 1}
    for version in ("1.0", "2.0", "3.0", "4.0"):
        deploy(kubectl, version, [], extra=extra)
    wait_for(lambda: sorted(replicasets(kubectl)) == [3, 4], "revisions 3 and 4 only")


# ---------------------------------------------------------------------- the official client


@pytest.fixture
def custom(sandbox: SandboxThread, tmp_path: Path) -> Iterator[Any]:
    path = sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="default")
    loader: Any = config  # the loader has no type hints
    api_client = loader.new_client_from_config(config_file=str(path))
    yield client.CustomObjectsApi(api_client)
    api_client.close()


def test_the_official_client_reads_and_patches_rollouts(custom: Any) -> None:
    """CustomObjectsApi (typed loosely: its hints say `object`) lists, reads, merge-patches the
    spec and, as the plugin's abort does, the status subresource."""
    args = ("argoproj.io", "v1alpha1", "default", "rollouts")
    steps: list[JsonDict] = [{"setWeight": 40}, {"pause": {}}]
    custom.create_namespaced_custom_object(*args, json.loads(manifest("1.0", steps)))

    def read() -> JsonDict:
        found: JsonDict = custom.get_namespaced_custom_object(*args, "web")
        return found

    wait_for(lambda: healthy(read().get("status") or {}), "1.0 healthy")
    listed = custom.list_namespaced_custom_object(*args)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["web"]
    assert listed["kind"] == "RolloutList"
    assert custom.get_namespaced_custom_object_status(*args, "web")["status"]["phase"] == "Healthy"
    assert rollout_progress(read()).phase is Phase.COMPLETE
    image = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}
    custom.patch_namespaced_custom_object(*args, "web", image)  # a merge patch
    wait_for(lambda: (read().get("status") or {}).get("phase") == "Paused", "the canary")
    assert rollout_state(read()).in_progress
    custom.patch_namespaced_custom_object_status(*args, "web", {"status": {"abort": True}})
    wait_for(lambda: abort_progress(read()).phase is Phase.COMPLETE, "the abort done")
    assert read()["status"]["phase"] == "Degraded"
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(*args, "nope")
    assert missing.value.status == 404


# ---------------------------------------------------------------------- the demo seed


def test_the_demo_seed_has_a_settled_canary_rollout(tmp_path: Path) -> None:
    with SandboxThread(seed="demo", speed=FAST) as sb:
        config_path = sb.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        kubectl = Kubectl(find_kubectl(), config_path, tmp_path / "kube-cache")
        ro = get(kubectl, "rollout", "payments-canary")
        rss = get(kubectl, "rs", "-l", "app.kubernetes.io/name=payments-canary")
    s = ro["status"]
    assert healthy(s) and s["currentStepIndex"] == 4
    assert [step for step in ro["spec"]["strategy"]["canary"]["steps"]] == [
        {"setWeight": 20},
        {"pause": {"duration": "30s"}},
        {"setWeight": 50},
        {"pause": {"duration": "30s"}},
    ]
    history = rollout_history(ro, rss)
    assert [(r.number, r.version, r.current) for r in history.revisions] == [
        (3, "2.3.0", True),
        (2, "2.2.0", False),
        (1, "2.1.0", False),
    ]
    assert history.revisions[0].replicas == 5
    assert all(r.replicas == 0 for r in history.revisions[1:])
    assert history.revisions[0].change_cause == "deploy payments-canary 2.3.0 (pipeline #4819)"
    with pytest.raises(RolloutRefused, match="nothing to abort"):
        plan_abort(ro, rss)
    assert plan_undo(ro, rss, 0).to_version == "2.2.0"
