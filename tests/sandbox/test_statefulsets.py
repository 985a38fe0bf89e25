"""StatefulSets in the simulated cluster, judged by the real kubectl (v1.33): ControllerRevision
history, `rollout history|undo|status sts/…`, rolling in reverse ordinal order, partitions,
OnDelete, and a broken image that stalls the rollout."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import FAST, Kubectl, find_kubectl

pytestmark = pytest.mark.kubectl

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
HASH_LABEL = "controller.kubernetes.io/hash"
POD_REVISION_LABEL = "controller-revision-hash"


def manifest(image: str, *, replicas: int = 3, strategy: str = "", extra: str = "") -> str:
    return f"""apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: {replicas}
  serviceName: web{strategy}{extra}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 8080
        env:
        - {{name: MODE, value: fast}}
"""


def apply(kubectl: Kubectl, image: str, **kwargs: Any) -> None:
    kubectl("apply", "--validate=false", "-f", "-", stdin=manifest(image, **kwargs))


def deploy_revisions(kubectl: Kubectl, *images: str, **kwargs: Any) -> None:
    for image in images:
        apply(kubectl, image, **kwargs)
        kubectl("rollout", "status", "sts/web", "--timeout=30s")


def get(kubectl: Kubectl, *what: str) -> Any:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def pods(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    """web's pods by name: image, revision label, ready."""
    out = {}
    for pod in get(kubectl, "pods", "-l", "app=web")["items"]:
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod.get("status", {}).get("conditions", [])
        )
        out[pod["metadata"]["name"]] = {
            "image": pod["spec"]["containers"][0]["image"],
            "revision": pod["metadata"]["labels"].get(POD_REVISION_LABEL),
            "ready": ready,
        }
    return out


def revisions(kubectl: Kubectl) -> dict[int, dict[str, Any]]:
    """web's ControllerRevisions by revision number."""
    return {
        cr["revision"]: cr for cr in get(kubectl, "controllerrevisions", "-l", "app=web")["items"]
    }


def history_numbers(kubectl: Kubectl, target: str = "sts/web") -> list[str]:
    lines = kubectl("rollout", "history", target).stdout.splitlines()
    assert lines[1].split() == ["REVISION", "CHANGE-CAUSE"]
    return [line.split()[0] for line in lines[2:] if line.strip()]


# ---------------------------------------------------------------- the documented hash, by hand


def fnv1_32(data: bytes) -> int:
    """hash/fnv.New32 (FNV-1: multiply, then xor), as HashControllerRevision uses it."""
    h = 2166136261
    for byte in data:
        h = (h * 16777619) % 2**32
        h ^= byte
    return h


def expected_revision_name(sts: dict[str, Any], collision_count: int = 0) -> str:
    """What the real controller names the revision of `sts`'s template: getPatch's bytes (Go's
    json.Marshal of a map: sorted keys, compact), FNV-1 over them and the collision count,
    printed in decimal, each digit mapped through rand.SafeEncodeString."""
    patch = {"spec": {"template": {**sts["spec"]["template"], "$patch": "replace"}}}
    raw = json.dumps(patch, sort_keys=True, separators=(",", ":")).encode()
    digits = str(fnv1_32(raw + str(collision_count).encode()))
    return f"{sts['metadata']['name']}-" + "".join(
        SAFE_ALPHABET[ord(d) % len(SAFE_ALPHABET)] for d in digits
    )


def test_fnv1_matches_the_published_test_vectors() -> None:
    # FNV-1 32-bit, not FNV-1a (which gives 0xe40c292c and 0xbf9cf968)
    assert fnv1_32(b"") == 0x811C9DC5
    assert fnv1_32(b"a") == 0x050C5D7E
    assert fnv1_32(b"foobar") == 0x31F0B262


def test_revisions_have_the_real_names_and_history_lists_them_in_order(
    kubectl: Kubectl,
) -> None:
    names = []
    for image in ("web:1.0", "web:2.0", "web:3.0"):
        deploy_revisions(kubectl, image)
        sts = get(kubectl, "sts/web")
        expected = expected_revision_name(sts)
        assert sts["status"]["updateRevision"] == expected
        assert sts["status"]["currentRevision"] == expected
        names.append(expected)
    by_number = revisions(kubectl)
    assert sorted(by_number) == [1, 2, 3]
    assert [by_number[n]["metadata"]["name"] for n in (1, 2, 3)] == names
    sts = get(kubectl, "sts/web")
    for cr in by_number.values():
        meta = cr["metadata"]
        assert meta["labels"][HASH_LABEL] == meta["name"].removeprefix("web-")
        assert meta["labels"]["app"] == "web"
        [owner] = meta["ownerReferences"]
        assert owner == {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": "web",
            "uid": sts["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert cr["data"]["spec"]["template"]["$patch"] == "replace"
    assert history_numbers(kubectl) == ["1", "2", "3"]
    two = kubectl("rollout", "history", "sts/web", "--revision=2").stdout
    assert "statefulset.apps/web with revision #2" in two
    assert "Image:\tweb:2.0" in two
    # the pods: <name>-<ordinal>, all at the revision, spread over the simulated nodes
    assert pods(kubectl) == {
        f"web-{i}": {"image": "web:3.0", "revision": names[2], "ready": True} for i in range(3)
    }
    pod = get(kubectl, "pod/web-1")
    assert pod["spec"]["hostname"] == "web-1"
    assert pod["spec"]["subdomain"] == "web"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"
    crs = kubectl("get", "controllerrevisions").stdout.splitlines()
    assert crs[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert [line.split()[:3] for line in crs[1:]] == sorted(
        [[name, "statefulset.apps/web", str(n)] for n, name in enumerate(names, start=1)]
    )
    table = kubectl("get", "sts/web").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "AGE"]
    assert table[1].split()[:2] == ["web", "3/3"]


def test_rolling_update_replaces_pods_from_the_highest_ordinal_down(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "web:1.0")
    kubectl("set", "image", "sts/web", "web=web:2.0")
    status = kubectl("rollout", "status", "sts/web", "--timeout=30s").stdout
    assert status.strip().endswith("partitioned roll out complete: 3 new pods have been updated...")
    events = get(
        kubectl, "events", "--field-selector", "involvedObject.name=web,reason=SuccessfulDelete"
    )
    deleted = [e["message"] for e in sorted(events["items"], key=lambda e: e["metadata"]["name"])]
    assert deleted == [f"delete Pod web-{i} in StatefulSet web successful" for i in (2, 1, 0)]
    sts = get(kubectl, "sts/web")
    status_fields = {
        k: v for k, v in sts["status"].items() if k not in ("currentRevision", "updateRevision")
    }
    assert status_fields == {
        "observedGeneration": 2,
        "replicas": 3,
        "readyReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "collisionCount": 0,
        "availableReplicas": 3,
    }


def test_undo_restores_a_revision_and_renumbers_it(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "web:1.0", "web:2.0", "web:3.0")
    first = revisions(kubectl)[1]["metadata"]["name"]
    out = kubectl("rollout", "undo", "sts/web", "--to-revision=1").stdout
    assert out.strip() == "statefulset.apps/web rolled back"
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    sts = get(kubectl, "sts/web")
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1.0"
    # the revision of web:1.0 is reused under its old name, renumbered to max + 1
    assert revisions(kubectl)[4]["metadata"]["name"] == first
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == first
    assert history_numbers(kubectl) == ["2", "3", "4"]
    assert {p["revision"] for p in pods(kubectl).values()} == {first}

    skipped = kubectl("rollout", "undo", "sts/web", "--to-revision=4").stdout
    assert skipped.strip() == (
        "statefulset.apps/web skipped rollback (current template already matches revision 4)"
    )
    assert history_numbers(kubectl) == ["2", "3", "4"]

    previous = kubectl("rollout", "undo", "sts/web").stdout  # back to revision 3, web:3.0
    assert previous.strip() == "statefulset.apps/web rolled back"
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    assert history_numbers(kubectl) == ["2", "4", "5"]
    assert {p["image"] for p in pods(kubectl).values()} == {"web:3.0"}

    missing = kubectl("rollout", "undo", "sts/web", "--to-revision=9", check=False)
    assert missing.returncode != 0
    assert "unable to find specified revision 9 in history" in missing.stderr


def test_undo_dry_run_server_changes_nothing(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "web:1.0", "web:2.0")
    before = get(kubectl, "sts/web")
    out = kubectl("rollout", "undo", "sts/web", "--dry-run=server").stdout
    assert out.strip() == "statefulset.apps/web rolled back (server dry run)"
    after = get(kubectl, "sts/web")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_broken_image_stalls_and_undo_needs_the_broken_pod_deleted(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "web:1.0")
    good = get(kubectl, "sts/web")["status"]["currentRevision"]
    kubectl("set", "image", "sts/web", "web=web:2.0-broken")
    stalled = kubectl("rollout", "status", "sts/web", "--timeout=2s", check=False)
    assert stalled.returncode != 0
    assert "timed out waiting for the condition" in stalled.stderr
    assert "Waiting for 1 pods to be ready..." in stalled.stdout
    sts = get(kubectl, "sts/web")
    assert sts["status"]["currentRevision"] == good
    assert sts["status"]["updateRevision"] != good
    assert (sts["status"]["readyReplicas"], sts["status"]["updatedReplicas"]) == (2, 1)
    now = pods(kubectl)
    assert now["web-2"] == {
        "image": "web:2.0-broken",
        "revision": sts["status"]["updateRevision"],
        "ready": False,
    }
    assert now["web-0"]["ready"] and now["web-1"]["ready"]  # the rest keep serving
    assert "CrashLoopBackOff" in kubectl("get", "pod/web-2").stdout

    # as in a real cluster (OrderedReady), reverting the template does not replace a pod that
    # never got ready: the controller waits for it, so it has to be deleted by hand
    assert (
        kubectl("rollout", "undo", "sts/web").stdout.strip() == "statefulset.apps/web rolled back"
    )
    still = kubectl("rollout", "status", "sts/web", "--timeout=1s", check=False)
    assert still.returncode != 0
    assert pods(kubectl)["web-2"]["image"] == "web:2.0-broken"
    kubectl("delete", "pod/web-2")
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    assert {p["image"] for p in pods(kubectl).values()} == {"web:1.0"}
    sts = get(kubectl, "sts/web")
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == good


def test_a_partition_keeps_the_lower_ordinals_at_the_current_revision(kubectl: Kubectl) -> None:
    strategy = "\n  updateStrategy:\n    rollingUpdate: {partition: 2}"
    deploy_revisions(kubectl, "web:1.0", strategy=strategy)
    old = get(kubectl, "sts/web")["status"]["currentRevision"]
    apply(kubectl, "web:2.0", strategy=strategy)
    out = kubectl("rollout", "status", "sts/web", "--timeout=30s").stdout
    assert out.strip().endswith("partitioned roll out complete: 1 new pods have been updated...")
    sts = get(kubectl, "sts/web")
    new = sts["status"]["updateRevision"]
    assert sts["status"]["currentRevision"] == old != new
    assert {n: p["image"] for n, p in pods(kubectl).items()} == {
        "web-0": "web:1.0",
        "web-1": "web:1.0",
        "web-2": "web:2.0",
    }
    # a deleted pod below the partition comes back at the current revision
    kubectl("delete", "pod/web-0")
    wait_for(lambda: pods(kubectl).get("web-0", {}).get("ready") is True, "web-0 back")
    assert pods(kubectl)["web-0"] == {"image": "web:1.0", "revision": old, "ready": True}

    kubectl(
        "patch", "sts/web", "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
    )
    out = kubectl("rollout", "status", "sts/web", "--timeout=30s").stdout
    assert out.strip().endswith("partitioned roll out complete: 3 new pods have been updated...")
    wait_for(
        lambda: get(kubectl, "sts/web")["status"]["currentRevision"] == new,
        "the current revision to become the update revision",
    )
    assert {p["revision"] for p in pods(kubectl).values()} == {new}


def test_on_delete_replaces_a_pod_only_once_it_is_deleted(kubectl: Kubectl) -> None:
    strategy = "\n  updateStrategy:\n    type: OnDelete"
    apply(kubectl, "web:1.0", strategy=strategy)
    wait_for(lambda: len([p for p in pods(kubectl).values() if p["ready"]]) == 3, "three pods")
    refused = kubectl("rollout", "status", "sts/web", "--timeout=5s", check=False)
    assert refused.returncode != 0
    assert "rollout status is only available for RollingUpdate strategy type" in refused.stderr
    old = get(kubectl, "sts/web")["status"]["currentRevision"]
    kubectl("set", "image", "sts/web", "web=web:2.0")
    wait_for(
        lambda: get(kubectl, "sts/web")["status"].get("observedGeneration") == 2,
        "the new template observed",
    )
    sts = get(kubectl, "sts/web")
    new = sts["status"]["updateRevision"]
    assert new != old
    assert {p["image"] for p in pods(kubectl).values()} == {"web:1.0"}
    kubectl("delete", "pod/web-1")
    wait_for(lambda: pods(kubectl).get("web-1", {}).get("ready") is True, "web-1 back")
    now = pods(kubectl)
    assert now["web-1"] == {"image": "web:2.0", "revision": new, "ready": True}
    assert now["web-0"]["image"] == now["web-2"]["image"] == "web:1.0"
    sts = get(kubectl, "sts/web")
    assert (sts["status"]["currentReplicas"], sts["status"]["updatedReplicas"]) == (2, 1)
    assert history_numbers(kubectl) == ["1", "2"]


def test_revision_history_limit_prunes_the_oldest_unused_revisions(kubectl: Kubectl) -> None:
    deploy_revisions(
        kubectl, "web:1.0", "web:2.0", "web:3.0", "web:4.0", extra="\n  revisionHistoryLimit: 1"
    )
    wait_for(lambda: history_numbers(kubectl) == ["3", "4"], "revisions 1 and 2 pruned")


def test_scale_down_removes_the_highest_ordinals(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "web:1.0", replicas=4)
    assert (
        kubectl("scale", "sts/web", "--replicas=2").stdout.strip() == "statefulset.apps/web scaled"
    )
    wait_for(lambda: sorted(pods(kubectl)) == ["web-0", "web-1"], "web-2 and web-3 gone")
    kubectl("rollout", "status", "sts/web", "--timeout=30s")


def test_orphaned_pods_and_revisions_are_adopted_by_a_new_statefulset(kubectl: Kubectl) -> None:
    deploy_revisions(kubectl, "web:1.0", "web:2.0")
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in get(kubectl, "pods")["items"]}
    kubectl("delete", "sts/web", "--cascade=orphan")
    apply(kubectl, "web:2.0")
    kubectl("rollout", "status", "sts/web", "--timeout=30s")
    sts = get(kubectl, "sts/web")
    after = get(kubectl, "pods")["items"]
    # same template: the pods are kept, now owned by the new StatefulSet, and so is the history
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in after} == before
    assert {p["metadata"]["ownerReferences"][0]["uid"] for p in after} == {sts["metadata"]["uid"]}
    assert history_numbers(kubectl) == ["1", "2"]
    assert sts["status"]["currentRevision"] == revisions(kubectl)[2]["metadata"]["name"]


def test_the_demo_has_orders_db_with_two_revisions(tmp_path: Path) -> None:
    with SandboxThread(seed="demo", speed=FAST) as sb:
        config = sb.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        kubectl = Kubectl(find_kubectl(), config, tmp_path / "cache")
        assert history_numbers(kubectl, "sts/orders-db") == ["1", "2"]
        status = kubectl("rollout", "status", "sts/orders-db", "--timeout=30s").stdout
        one = kubectl("rollout", "history", "sts/orders-db", "--revision=1").stdout
        sts = get(kubectl, "sts/orders-db")
    assert "partitioned roll out complete: 3 new pods have been updated..." in status
    assert "orders-db:15.4" in one
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"].endswith("orders-db:15.6")
    assert sts["status"]["currentRevision"] == expected_revision_name(sts)
