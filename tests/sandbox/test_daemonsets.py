"""DaemonSets in the simulated cluster, judged by the real kubectl (v1.33): one pod per simulated
node, ControllerRevision history, `rollout history|undo|status ds/…`, maxUnavailable, maxSurge,
OnDelete, and a broken image that stalls the rollout."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import FAST, Kubectl, find_kubectl

pytestmark = pytest.mark.kubectl

NODES = {"sandbox-node", "sandbox-node-2", "sandbox-node-3"}
REVISION_LABEL = "controller-revision-hash"
GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
# <name>-<hash>, the hash in rand.SafeEncodeString's alphabet (no vowels, no look-alikes)
REVISION_NAME = re.compile(r"agent-([bcdfghjklmnpqrstvwxz2456789]+)")


def manifest(image: str, *, cause: str = "", strategy: str = "", node_selector: str = "") -> str:
    annotations = f"\n  annotations:\n    kubernetes.io/change-cause: {cause}" if cause else ""
    return f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent{annotations}
spec:{strategy}
  selector:
    matchLabels: {{app: agent}}
  template:
    metadata:
      labels: {{app: agent}}
    spec:{node_selector}
      containers:
      - name: agent
        image: {image}
"""


def apply(kubectl: Kubectl, image: str, **kwargs: Any) -> None:
    kubectl("apply", "--validate=false", "-f", "-", stdin=manifest(image, **kwargs))


def deploy_revisions(kubectl: Kubectl, *images: str, **kwargs: Any) -> None:
    for i, image in enumerate(images, start=1):
        apply(kubectl, image, cause=f"v{i}", **kwargs)
        kubectl("rollout", "status", "ds/agent", "--timeout=30s")


def get(kubectl: Kubectl, *what: str) -> Any:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def pods(kubectl: Kubectl) -> list[dict[str, Any]]:
    out = []
    for pod in get(kubectl, "pods", "-l", "app=agent")["items"]:
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod.get("status", {}).get("conditions", [])
        )
        out.append(
            {
                "node": pod["spec"]["nodeName"],
                "image": pod["spec"]["containers"][0]["image"],
                "hash": pod["metadata"]["labels"].get(REVISION_LABEL),
                "generation": pod["metadata"]["labels"].get("pod-template-generation"),
                "ready": ready,
            }
        )
    return out


def revisions(kubectl: Kubectl) -> dict[int, dict[str, Any]]:
    items = get(kubectl, "controllerrevisions", "-l", "app=agent")["items"]
    return {cr["revision"]: cr for cr in items}


def history(kubectl: Kubectl, target: str = "ds/agent") -> list[list[str]]:
    lines = kubectl("rollout", "history", target).stdout.splitlines()
    assert lines[1].split() == ["REVISION", "CHANGE-CAUSE"]
    return [line.split(maxsplit=1) for line in lines[2:] if line.strip()]


def test_one_pod_per_node_and_a_revision_per_template(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "agent:1.0", "agent:2.0")
    ds = get(kubectl, "ds/agent")
    assert ds["metadata"]["annotations"][GENERATION_ANNOTATION] == "2"
    assert ds["status"] == {
        "currentNumberScheduled": 3,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 3,
        "numberReady": 3,
        "observedGeneration": 2,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
    }
    by_number = revisions(kubectl)
    assert sorted(by_number) == [1, 2]
    hashes = {}
    for number, cr in by_number.items():
        meta = cr["metadata"]
        found = REVISION_NAME.fullmatch(meta["name"])
        assert found is not None, meta["name"]
        assert meta["labels"][REVISION_LABEL] == found.group(1)
        assert meta["labels"]["app"] == "agent"
        assert meta["annotations"]["kubernetes.io/change-cause"] == f"v{number}"
        [owner] = meta["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "DaemonSet",
            "agent",
            ds["metadata"]["uid"],
            True,
        )
        template = cr["data"]["spec"]["template"]
        assert template.pop("$patch") == "replace"
        assert template["spec"]["containers"][0]["image"] == f"agent:{number}.0"
        hashes[number] = found.group(1)
    running = pods(kubectl)
    assert {p["node"] for p in running} == NODES
    assert all(
        p
        == {
            "node": p["node"],
            "image": "agent:2.0",
            "hash": hashes[2],
            "generation": "2",
            "ready": True,
        }
        for p in running
    )
    assert history(kubectl) == [["1", "v1"], ["2", "v2"]]
    one = kubectl("rollout", "history", "ds/agent", "--revision=1").stdout
    assert "daemonset.apps/agent with revision #1" in one
    assert "Image:\tagent:1.0" in one
    table = kubectl("get", "ds/agent").stdout.splitlines()
    assert table[0].split()[:6] == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
    ]
    assert table[1].split()[:7] == ["agent", "3", "3", "3", "3", "3", "<none>"]
    # a label-only change to the DaemonSet is no new template: no new revision, same generation
    kubectl("label", "ds/agent", "team=platform")
    assert get(kubectl, "ds/agent")["metadata"]["annotations"][GENERATION_ANNOTATION] == "2"
    assert sorted(revisions(kubectl)) == [1, 2]


def test_undo_restores_a_revision_and_renumbers_it(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "agent:1.0", "agent:2.0", "agent:3.0")
    first = revisions(kubectl)[1]["metadata"]["name"]
    out = kubectl("rollout", "undo", "ds/agent", "--to-revision=1").stdout
    assert out.strip() == "daemonset.apps/agent rolled back"
    status = kubectl("rollout", "status", "ds/agent", "--timeout=30s").stdout
    assert status.strip().endswith('daemon set "agent" successfully rolled out')
    assert revisions(kubectl)[4]["metadata"]["name"] == first
    assert history(kubectl) == [["2", "v2"], ["3", "v3"], ["4", "v1"]]
    assert {p["image"] for p in pods(kubectl)} == {"agent:1.0"}
    assert {p["hash"] for p in pods(kubectl)} == {first.removeprefix("agent-")}
    ds = get(kubectl, "ds/agent")
    assert ds["metadata"]["annotations"][GENERATION_ANNOTATION] == "4"

    skipped = kubectl("rollout", "undo", "ds/agent", "--to-revision=4").stdout
    assert skipped.strip() == (
        "daemonset.apps/agent skipped rollback (current template already matches revision 4)"
    )
    previous = kubectl("rollout", "undo", "ds/agent").stdout  # back to revision 3
    assert previous.strip() == "daemonset.apps/agent rolled back"
    kubectl("rollout", "status", "ds/agent", "--timeout=30s")
    assert [n for n, _ in history(kubectl)] == ["2", "4", "5"]
    assert {p["image"] for p in pods(kubectl)} == {"agent:3.0"}

    missing = kubectl("rollout", "undo", "ds/agent", "--to-revision=9", check=False)
    assert missing.returncode != 0
    assert "unable to find specified revision 9 in history" in missing.stderr


def test_a_broken_image_stalls_at_max_unavailable_and_undo_recovers(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "agent:1.0")
    kubectl("set", "image", "ds/agent", "agent=agent:2.0-broken")
    stalled = kubectl("rollout", "status", "ds/agent", "--timeout=2s", check=False)
    assert stalled.returncode != 0
    assert "timed out waiting for the condition" in stalled.stderr
    assert 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods' in stalled.stdout
    running = pods(kubectl)
    # maxUnavailable 1: one node got the broken pod, the other two keep the old one serving
    assert sorted((p["image"], p["ready"]) for p in running) == [
        ("agent:1.0", True),
        ("agent:1.0", True),
        ("agent:2.0-broken", False),
    ]
    status = get(kubectl, "ds/agent")["status"]
    assert (status["numberAvailable"], status["numberUnavailable"]) == (2, 1)
    assert "CrashLoopBackOff" in kubectl("get", "pods", "-l", "app=agent").stdout
    # the unavailable pod is old after the undo, so it is replaced at once
    assert (
        kubectl("rollout", "undo", "ds/agent").stdout.strip() == "daemonset.apps/agent rolled back"
    )
    kubectl("rollout", "status", "ds/agent", "--timeout=30s")
    assert {(p["image"], p["ready"]) for p in pods(kubectl)} == {("agent:1.0", True)}


def test_max_unavailable_bounds_how_many_nodes_go_at_once(kubectl: Kubectl) -> None:
    strategy = "\n  updateStrategy:\n    rollingUpdate: {maxUnavailable: 2}"
    deploy_revisions(kubectl, "agent:1.0", strategy=strategy)
    kubectl("set", "image", "ds/agent", "agent=agent:2.0-broken")
    wait_for(
        lambda: (
            sorted(p["image"] for p in pods(kubectl))
            == ["agent:1.0", "agent:2.0-broken", "agent:2.0-broken"]
        ),
        "two nodes updated",
    )
    # Once the new pods have crashed, the controller has had its turns to take the third node.
    wait_for(
        lambda: kubectl("get", "pods", "-l", "app=agent").stdout.count("CrashLoopBackOff") == 2,
        "both new pods crash-looping",
    )
    assert sorted(p["image"] for p in pods(kubectl)).count("agent:1.0") == 1


def test_max_surge_starts_the_new_pod_before_the_old_one_goes(kubectl: Kubectl) -> None:
    strategy = "\n  updateStrategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}"
    deploy_revisions(kubectl, "agent:1.0", strategy=strategy)
    kubectl("set", "image", "ds/agent", "agent=agent:2.0-broken")
    wait_for(lambda: len(pods(kubectl)) == 4, "a surge pod")
    # Once the surge pod has crashed, the controller has had its turns to remove an old pod.
    wait_for(
        lambda: "CrashLoopBackOff" in kubectl("get", "pods", "-l", "app=agent").stdout,
        "the surge pod crash-looping",
    )
    running = pods(kubectl)
    assert sorted((p["image"], p["ready"]) for p in running) == [
        ("agent:1.0", True),
        ("agent:1.0", True),
        ("agent:1.0", True),
        ("agent:2.0-broken", False),
    ]
    kubectl("set", "image", "ds/agent", "agent=agent:3.0")
    kubectl("rollout", "status", "ds/agent", "--timeout=30s")
    wait_for(lambda: len(pods(kubectl)) == 3, "the old pods gone")
    assert {(p["image"], p["ready"]) for p in pods(kubectl)} == {("agent:3.0", True)}


def test_on_delete_replaces_a_pod_only_once_it_is_deleted(kubectl: Kubectl) -> None:
    apply(kubectl, "agent:1.0", strategy="\n  updateStrategy:\n    type: OnDelete")
    wait_for(lambda: len([p for p in pods(kubectl) if p["ready"]]) == 3, "three pods")
    refused = kubectl("rollout", "status", "ds/agent", "--timeout=5s", check=False)
    assert refused.returncode != 0
    assert "rollout status is only available for RollingUpdate strategy type" in refused.stderr
    kubectl("set", "image", "ds/agent", "agent=agent:2.0")
    wait_for(
        lambda: get(kubectl, "ds/agent")["status"].get("observedGeneration") == 2,
        "the new template observed",
    )
    assert {p["image"] for p in pods(kubectl)} == {"agent:1.0"}
    [victim] = [
        p["metadata"]["name"]
        for p in get(kubectl, "pods", "-l", "app=agent")["items"]
        if p["spec"]["nodeName"] == "sandbox-node-2"
    ]
    kubectl("delete", f"pod/{victim}")
    wait_for(
        lambda: any(p["node"] == "sandbox-node-2" and p["ready"] for p in pods(kubectl)),
        "a new pod on sandbox-node-2",
    )
    by_node = {p["node"]: p["image"] for p in pods(kubectl)}
    assert by_node == {
        "sandbox-node": "agent:1.0",
        "sandbox-node-2": "agent:2.0",
        "sandbox-node-3": "agent:1.0",
    }
    assert get(kubectl, "ds/agent")["status"]["updatedNumberScheduled"] == 1


def test_a_node_selector_limits_the_nodes(kubectl: Kubectl) -> None:
    selector = "\n      nodeSelector: {kubernetes.io/hostname: sandbox-node-2}"
    deploy_revisions(kubectl, "agent:1.0", node_selector=selector)
    assert [p["node"] for p in pods(kubectl)] == ["sandbox-node-2"]
    status = get(kubectl, "ds/agent")["status"]
    assert (status["desiredNumberScheduled"], status["numberAvailable"]) == (1, 1)
    line = kubectl("get", "ds/agent").stdout.splitlines()[1].split()
    assert line[6] == "kubernetes.io/hostname=sandbox-node-2"


def test_the_demo_has_log_agent_with_two_revisions(tmp_path: Path) -> None:
    with SandboxThread(seed="demo", speed=FAST) as sb:
        config = sb.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        kubectl = Kubectl(find_kubectl(), config, tmp_path / "cache")
        rows = history(kubectl, "ds/log-agent")
        status = kubectl("rollout", "status", "ds/log-agent", "--timeout=30s").stdout
        agents = get(kubectl, "pods", "-l", "app.kubernetes.io/name=log-agent")["items"]
    assert rows == [
        ["1", "deploy log-agent 3.1.0 (pipeline #4751)"],
        ["2", "deploy log-agent 3.2.0 (pipeline #4815)"],
    ]
    assert 'daemon set "log-agent" successfully rolled out' in status
    assert {p["spec"]["nodeName"] for p in agents} == NODES
