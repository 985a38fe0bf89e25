"""`kubectl rollout undo` of StatefulSets and DaemonSets, case by case, as rollback.go decides."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.controller_revisions import (
    ControllerRevisionInfo,
    InvalidControllerRevision,
    owned_history,
)
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.models import WorkloadKind
from bot.domain.rollback.workload_undo import (
    STRATEGIC_MERGE_PATCH,
    UndoPlan,
    apply_template_replace,
    choose_revision,
    plan_undo,
)

UID = "0b7e6c1e-3f0a-4d57-9a51-5a2f1c7d0e11"
OTHER_UID = "5d1f0c8a-8c55-4b33-a1a6-6a0f5b2e9c42"
STS = WorkloadKind.STATEFULSET
DS = WorkloadKind.DAEMONSET
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def template(version: str, *, debug: bool = False, sidecar: bool = False) -> dict[str, Any]:
    """A pod template as the API server returns it (defaults filled in). `debug` adds what a
    newer release added and an older one lacks: a label, an env var, a volume mount."""
    container: dict[str, Any] = {
        "name": "app",
        "image": f"registry.example.com/shop/app:{version}",
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "MODE", "value": "normal"}],
        "resources": {"limits": {"memory": "512Mi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    labels = {"app": "app", "app.kubernetes.io/version": version}
    spec: dict[str, Any] = {
        "containers": [container],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30,
    }
    if debug:
        labels["debug"] = "on"
        container["env"].append({"name": "DEBUG", "value": "1"})
        container["volumeMounts"] = [{"name": "scratch", "mountPath": "/scratch"}]
        spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    if sidecar:
        spec["containers"].append({"name": "proxy", "image": "registry.example.com/proxy:3.1"})
    return {"metadata": {"creationTimestamp": None, "labels": labels}, "spec": spec}


def workload(
    kind: WorkloadKind,
    current: dict[str, Any],
    *,
    strategy: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    uid: str = UID,
) -> dict[str, Any]:
    """A StatefulSet or DaemonSet as GET returns it."""
    name = "app" if kind is STS else "node-agent"
    default_strategy: dict[str, Any] = (
        {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        if kind is STS
        else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    )
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "uid": uid,
        "resourceVersion": "48211",
        "generation": 7,
        "creationTimestamp": "2026-11-20T09:00:00Z",
    }
    if annotations is not None:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "app"}},
        "template": current,
        "updateStrategy": strategy if strategy is not None else default_strategy,
        "revisionHistoryLimit": 10,
    }
    if kind is STS:
        spec |= {"replicas": 3, "serviceName": "app", "podManagementPolicy": "OrderedReady"}
    return {
        "apiVersion": "apps/v1",
        "kind": kind.value,
        "metadata": metadata,
        "spec": spec,
        "status": {"observedGeneration": 7},
    }


def controller_revision(
    number: int,
    body: dict[str, Any],
    *,
    kind: WorkloadKind = STS,
    name: str | None = None,
    owner: str = UID,
) -> dict[str, Any]:
    """A ControllerRevision as the controller writes it: getPatch of the template."""
    return {
        "metadata": {
            "name": name or f"app-rev{number}",
            "namespace": "shop",
            "creationTimestamp": f"2026-11-2{number % 10}T10:00:00Z",
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": kind.value, "name": "app", "uid": owner}
                | {"controller": True, "blockOwnerDeletion": True}
            ],
        },
        "data": {"spec": {"template": {"$patch": "replace", **copy.deepcopy(body)}}},
        "revision": number,
    }


VERSIONS = {1: template("1.0"), 2: template("1.1"), 3: template("1.2", debug=True, sidecar=True)}


def history(
    kind: WorkloadKind = STS, current: dict[str, Any] | None = None, numbers: tuple[int, ...] = ()
) -> tuple[dict[str, Any], list[ControllerRevisionInfo]]:
    obj = workload(kind, current if current is not None else VERSIONS[3])
    listed = [controller_revision(n, VERSIONS[n], kind=kind) for n in numbers or (3, 1, 2)]
    return obj, owned_history(obj, listed)


# --- which revision -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [STS, DS])
def test_undo_goes_back_to_the_previous_revision(kind: WorkloadKind) -> None:
    obj, revisions = history(kind)
    plan = plan_undo(kind, obj, revisions, 0)
    assert plan.action == "patch"
    assert plan.requested == 0
    assert plan.target.number == 2
    assert plan.from_revision == 3
    assert plan.message == "rolled back"
    assert plan.content_type == STRATEGIC_MERGE_PATCH == "application/strategic-merge-patch+json"
    assert plan.patch == {"spec": {"template": {**VERSIONS[2], "$patch": "replace"}}}
    assert plan.summary == "shop/" + obj["metadata"]["name"] + ": 1.2 → 1.1 (revision 3 → 2)"


def test_undo_to_an_explicit_revision() -> None:
    obj, revisions = history()
    plan = plan_undo(STS, obj, revisions, 1)
    assert (plan.requested, plan.target.number, plan.target.version) == (1, 1, "1.0")
    assert plan.template_after == VERSIONS[1]


def test_the_previous_is_the_second_highest_number_not_the_one_before_the_current() -> None:
    # The StatefulSet was just set to 1.0 again (revision 1) and its controller has not yet
    # renumbered revision 1 to 4: kubectl's undo still takes revision 2, the second highest.
    obj, revisions = history(current=VERSIONS[1])
    plan = plan_undo(STS, obj, revisions, 0)
    assert plan.target.number == 2
    assert plan.from_revision == 1


def test_a_missing_revision_is_refused_in_kubectls_words() -> None:
    obj, revisions = history()
    with pytest.raises(RollbackRefused) as refused:
        plan_undo(STS, obj, revisions, 7)
    assert str(refused.value) == (
        "unable to find specified revision 7 in history "
        "(statefulset shop/app keeps revisions 1, 2, 3)"
    )


def test_a_negative_revision_is_not_found_as_kubectl_says() -> None:
    obj, revisions = history()
    with pytest.raises(RollbackRefused, match=r"^unable to find specified revision -1 in history"):
        plan_undo(STS, obj, revisions, -1)


@pytest.mark.parametrize("numbers", [(3,), ()])
def test_undo_without_a_previous_revision_is_refused(numbers: tuple[int, ...]) -> None:
    obj = workload(STS, VERSIONS[3])
    revisions = owned_history(obj, [controller_revision(n, VERSIONS[n]) for n in numbers])
    with pytest.raises(RollbackRefused) as refused:
        plan_undo(STS, obj, revisions, 0)
    assert str(refused.value).startswith("no last revision to roll back to (statefulset shop/app ")
    assert ("has only revision 3" if numbers else "has no revision yet") in str(refused.value)


def test_an_explicit_revision_of_an_empty_history_is_not_found() -> None:
    obj = workload(DS, VERSIONS[3])
    with pytest.raises(RollbackRefused) as refused:
        plan_undo(DS, obj, [], 2)
    assert str(refused.value) == (
        "unable to find specified revision 2 in history "
        "(daemon set shop/node-agent has no revision yet)"
    )


def test_another_workloads_revisions_do_not_count() -> None:
    obj = workload(STS, VERSIONS[3])
    stranger = workload(STS, VERSIONS[3], uid=OTHER_UID)
    theirs = owned_history(stranger, [controller_revision(2, VERSIONS[1], owner=OTHER_UID)])
    ours = owned_history(obj, [controller_revision(3, VERSIONS[3])])
    with pytest.raises(RollbackRefused, match="no last revision to roll back to"):
        plan_undo(STS, obj, [*ours, *theirs], 0)
    with pytest.raises(RollbackRefused, match="unable to find specified revision 2"):
        choose_revision(STS, obj, [*ours, *theirs], 2)


def test_a_revision_number_held_twice_with_different_templates_is_refused() -> None:
    obj = workload(STS, VERSIONS[3])
    revisions = owned_history(
        obj,
        [
            controller_revision(2, VERSIONS[2], name="app-a"),
            controller_revision(2, VERSIONS[1], name="app-b"),
            controller_revision(3, VERSIONS[3]),
        ],
    )
    with pytest.raises(RollbackRefused, match="held by more than one ControllerRevision"):
        plan_undo(STS, obj, revisions, 2)


def test_a_revision_number_held_twice_with_the_same_template_is_fine() -> None:
    obj = workload(STS, VERSIONS[3])
    revisions = owned_history(
        obj,
        [
            controller_revision(2, VERSIONS[2], name="app-b"),
            controller_revision(2, VERSIONS[2], name="app-a"),
            controller_revision(3, VERSIONS[3]),
        ],
    )
    assert plan_undo(STS, obj, revisions, 2).target.name == "app-a"  # the API's (name) order


# --- skipped --------------------------------------------------------------------------------


def test_a_revision_the_template_already_is_skips_with_kubectls_message() -> None:
    obj, revisions = history()
    plan = plan_undo(STS, obj, revisions, 3)
    assert plan.action == "skip"
    assert plan.message == "skipped rollback (current template already matches revision 3)"
    assert plan.patch == {}
    assert plan.body() == {}
    assert plan.changes == ()
    assert plan.summary == (
        "skipped: statefulset shop/app already has the template of revision 3 (1.2)"
    )


def test_a_skipped_undo_says_revision_0_as_kubectl_does() -> None:
    # Right after a rollback to revision 2, before the controller renumbers it: undo again.
    obj, revisions = history(DS, current=VERSIONS[2])
    plan = plan_undo(DS, obj, revisions, 0)
    assert plan.action == "skip"
    assert plan.target.number == 2
    assert plan.message == "skipped rollback (current template already matches revision 0)"


def test_skipping_compares_the_patch_exactly_not_the_meaning() -> None:
    # A null field the revision holds and the workload lacks: kubectl's bytes differ, so it
    # patches (a no-op for the server) rather than skip.
    current = copy.deepcopy(VERSIONS[2])
    del current["metadata"]["creationTimestamp"]
    obj, revisions = history(current=current)
    assert plan_undo(STS, obj, revisions, 2).action == "patch"


def test_the_pod_template_hash_is_not_ignored_for_these_kinds() -> None:
    current = copy.deepcopy(VERSIONS[2])
    current["metadata"]["labels"]["pod-template-hash"] = "abc"
    obj, revisions = history(current=current)
    assert plan_undo(STS, obj, revisions, 2).action == "patch"


# --- what the patch does: $patch replace ----------------------------------------------------


def test_fields_the_older_revision_lacks_really_disappear() -> None:
    obj, revisions = history()
    plan = plan_undo(STS, obj, revisions, 1)
    after = plan.template_after
    assert after == VERSIONS[1]
    assert "debug" not in after["metadata"]["labels"]
    assert [c["name"] for c in after["spec"]["containers"]] == ["app"]
    assert after["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "normal"}]
    assert "volumeMounts" not in after["spec"]["containers"][0]
    assert "volumes" not in after["spec"]
    assert plan.template_before == VERSIONS[3]
    paths = {c.path for c in plan.changes}
    assert "metadata.labels.debug" in paths
    assert "containers[proxy]" in paths
    assert any(c.path.startswith("volumes") for c in plan.changes)


def test_apply_template_replace_is_what_the_server_makes_of_the_data() -> None:
    obj = workload(STS, VERSIONS[3])
    data = {"spec": {"template": {"$patch": "replace", **VERSIONS[1]}}}
    assert apply_template_replace(obj, data) == VERSIONS[1]
    assert "$patch" in data["spec"]["template"]  # the input is left alone


@pytest.mark.parametrize(
    "data",
    [
        {"spec": {"template": {"$patch": "delete"}}},
        {"spec": {"template": VERSIONS[1]}},
        {"spec": {"replicas": 0, "template": {"$patch": "replace", **VERSIONS[1]}}},
        {"spec": {"template": {"$patch": "replace", **VERSIONS[1]}}, "status": {}},
        [],
        None,
    ],
)
def test_apply_template_replace_refuses_what_would_not_just_replace_the_template(
    data: Any,
) -> None:
    with pytest.raises(InvalidControllerRevision):
        apply_template_replace(workload(STS, VERSIONS[3]), data)


def test_apply_template_replace_needs_a_workload_with_a_template() -> None:
    obj = workload(STS, VERSIONS[3])
    del obj["spec"]["template"]
    with pytest.raises(InvalidControllerRevision, match="has no pod template"):
        apply_template_replace(obj, {"spec": {"template": {"$patch": "replace"}}})


# --- the body sent --------------------------------------------------------------------------


def test_the_body_is_kubectls_with_the_bots_precondition() -> None:
    obj, revisions = history()
    plan = plan_undo(STS, obj, revisions, 2)
    assert plan.body(precondition=False) == plan.patch == revisions[1].data
    body = plan.body(annotations={"rollback-bot.io/rolled-back-by": "alice"})
    assert body == {
        **revisions[1].data,
        "metadata": {
            "resourceVersion": "48211",
            "annotations": {"rollback-bot.io/rolled-back-by": "alice"},
        },
    }
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert plan.patch["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.1")


def test_the_plan_knows_what_it_was_decided_on() -> None:
    obj, revisions = history()
    plan = plan_undo(STS, obj, revisions, 0)
    assert (plan.namespace, plan.name, plan.uid) == ("shop", "app", UID)
    assert (plan.resource_version, plan.generation) == ("48211", 7)
    assert plan.snapshot == Snapshot(
        revision=3, generation=7, target_replicaset="app-rev2", target_revision=2
    )


# --- warnings -------------------------------------------------------------------------------


def test_an_object_kubectl_apply_manages_gets_kubectls_warning() -> None:
    obj = workload(STS, VERSIONS[3], annotations={LAST_APPLIED: "{}"})
    revisions = owned_history(obj, [controller_revision(n, VERSIONS[n]) for n in (1, 2, 3)])
    plan = plan_undo(STS, obj, revisions, 0)
    assert plan.warnings == (
        "Warning: resource statefulsets.apps/app was previously managed with 'kubectl apply'. "
        "Rolling back will not update the kubectl.kubernetes.io/last-applied-configuration "
        "annotation, which may cause unexpected behavior on future 'kubectl apply' operations. "
        "Consider using 'kubectl apply' with your previous configuration file instead.",
    )


@pytest.mark.parametrize("kind", [STS, DS])
def test_on_delete_says_the_pods_must_be_deleted(kind: WorkloadKind) -> None:
    obj = workload(kind, VERSIONS[3], strategy={"type": "OnDelete"})
    revisions = owned_history(obj, [controller_revision(n, VERSIONS[n]) for n in (1, 2, 3)])
    plan = plan_undo(kind, obj, revisions, 0)
    assert plan.action == "patch"
    assert plan.pods_must_be_deleted
    assert plan.update_strategy == "OnDelete"
    (warning,) = plan.warnings
    assert "uses the OnDelete update strategy" in warning
    assert "delete the pods to bring 1.1 (revision 2) back" in warning


def test_a_partition_says_which_pods_keep_their_version() -> None:
    obj = workload(STS, VERSIONS[3], strategy={"type": "RollingUpdate", "rollingUpdate": {}})
    obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2
    revisions = owned_history(obj, [controller_revision(n, VERSIONS[n]) for n in (1, 2, 3)])
    plan = plan_undo(STS, obj, revisions, 0)
    assert (plan.update_strategy, plan.partition, plan.pods_must_be_deleted) == (
        "RollingUpdate",
        2,
        False,
    )
    assert plan.warnings == (
        "statefulset shop/app is partitioned at 2: only its pods of ordinal 2 and up are rolled "
        "back; pods 0 to 1 keep the version they run",
    )


def test_a_plain_rolling_update_warns_of_nothing() -> None:
    obj, revisions = history()
    plan = plan_undo(STS, obj, revisions, 0)
    assert (plan.partition, plan.warnings) == (0, ())


# --- what is not planned here ---------------------------------------------------------------


def test_a_deployment_is_planned_elsewhere() -> None:
    obj, revisions = history()
    with pytest.raises(ValueError, match="plan_rollback"):
        plan_undo(WorkloadKind.DEPLOYMENT, obj, revisions, 0)


def test_an_object_of_another_kind_is_refused() -> None:
    obj, revisions = history(DS)
    with pytest.raises(InvalidControllerRevision, match="is a DaemonSet, not a StatefulSet"):
        plan_undo(STS, obj, revisions, 0)


def test_a_workload_without_a_template_is_refused() -> None:
    obj, revisions = history()
    del obj["spec"]["template"]
    with pytest.raises(InvalidControllerRevision, match="has no pod template"):
        plan_undo(STS, obj, revisions, 0)


def test_the_plan_is_a_frozen_value() -> None:
    obj, revisions = history()
    plan = plan_undo(STS, obj, revisions, 0)
    assert isinstance(plan, UndoPlan)
    with pytest.raises(AttributeError):
        plan.action = "skip"  # type: ignore[misc]


def test_a_revision_built_by_hand_is_checked_before_it_is_sent() -> None:
    obj, revisions = history()
    forged = dataclasses.replace(revisions[1], data={"spec": {"replicas": 0}})
    with pytest.raises(InvalidControllerRevision, match='ControllerRevision "app-rev2"'):
        plan_undo(STS, obj, [revisions[0], forged, revisions[2]], 2)
