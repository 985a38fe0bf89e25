"""`plan_rollback` of a StatefulSet or a DaemonSet, over a History read from the API's JSON and
its ControllerRevisions by `parse_workload_history`: the revision kubectl picks, its refusals,
the strategic merge patch with the bot's record, the migration guard and the update strategy.

The builders here (`pod_template`, `workload_json`, `revision_json`, `workload_history`) are
shared by the other tests of the workload kinds."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_history, parse_workload_history
from bot.domain.errors import RollbackRefused
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.migrations import MIGRATION_ANNOTATION, MigrationRefused
from bot.domain.rollback.models import History, WorkloadKind
from bot.domain.rollback.planning import RollbackCause, plan_rollback
from tests.builders import deployment, replicaset, template

JsonDict = dict[str, Any]

STS = WorkloadKind.STATEFULSET
DS = WorkloadKind.DAEMONSET
NAMES = {STS: "orders-db", DS: "log-shipper"}
UIDS = {
    STS: "3c6f1a2e-7d4b-4e0a-9b8c-1f2e3d4c5b6a",
    DS: "8e2d4f6a-1b3c-4d5e-8f9a-0b1c2d3e4f5a",
}
STRANGER_UID = "f00dfeed-0000-4000-8000-00000000beef"
VERSIONS = {1: "1.0", 2: "1.1", 3: "1.2", 4: "1.3"}
HASHES = {1: "5d8c7b9f6d", 2: "6b7f9c8d5e", 3: "7c9d8f6b4a", 4: "84f6c9d7b5", 9: "9a8b7c6d5e"}
RESOURCE_VERSION = "90211"
GENERATION = 4
AT = datetime(2026, 11, 27, 4, 0, 12, tzinfo=UTC)
CAUSE = RollbackCause(
    actor="@alice", via="Slack", reason="5xx on orders since 1.2", at=AT, actor_id="U0ALICE1"
)
BOT = "rollback-bot.io/"
CHANGE_CAUSE = "kubernetes.io/change-cause"


def pod_template(
    version: str, *, app: str = "orders-db", migration: str | None = None, debug: bool = False
) -> JsonDict:
    """A pod template as the API server returns it (defaults filled in)."""
    container: JsonDict = {
        "name": app,
        "image": f"registry.example.com/shop/{app}:{version}",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 5432, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "1Gi"}},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if debug:
        container["env"] = [{"name": "DEBUG", "value": "1"}]
    metadata: JsonDict = {
        "creationTimestamp": None,
        "labels": {"app": app, "app.kubernetes.io/version": version},
    }
    if migration is not None:
        metadata["annotations"] = {MIGRATION_ANNOTATION: migration}
    return {
        "metadata": metadata,
        "spec": {
            "containers": [container],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    }


def revision_name(kind: WorkloadKind, number: int) -> str:
    return f"{NAMES[kind]}-{HASHES[number]}"


def workload_json(
    kind: WorkloadKind,
    current: JsonDict,
    *,
    strategy: JsonDict | None = None,
    annotations: dict[str, str] | None = None,
    replicas: int | None = 3,
    status: JsonDict | None = None,
    history_limit: int = 10,
    update_revision: int | None = 3,
) -> JsonDict:
    """A StatefulSet or DaemonSet as GET returns it, settled at its current template."""
    name = NAMES[kind]
    metadata: JsonDict = {
        "name": name,
        "namespace": "shop",
        "uid": UIDS[kind],
        "resourceVersion": RESOURCE_VERSION,
        "generation": GENERATION,
        "creationTimestamp": "2026-11-20T09:00:00Z",
        "labels": {"app": name},
    }
    if annotations is not None:
        metadata["annotations"] = annotations
    spec: JsonDict = {
        "selector": {"matchLabels": {"app": name}},
        "template": copy.deepcopy(current),
        "revisionHistoryLimit": history_limit,
    }
    if kind is STS:
        spec["serviceName"] = name
        spec["podManagementPolicy"] = "OrderedReady"
        spec["updateStrategy"] = (
            strategy
            if strategy is not None
            else {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        )
        if replicas is not None:
            spec["replicas"] = replicas
        settled: JsonDict = {
            "observedGeneration": GENERATION,
            "replicas": 3,
            "readyReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            "collisionCount": 0,
        }
        if update_revision is not None:
            settled["currentRevision"] = revision_name(kind, update_revision)
            settled["updateRevision"] = revision_name(kind, update_revision)
    else:
        spec["updateStrategy"] = (
            strategy
            if strategy is not None
            else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
        )
        settled = {
            "observedGeneration": GENERATION,
            "desiredNumberScheduled": 4,
            "currentNumberScheduled": 4,
            "updatedNumberScheduled": 4,
            "numberReady": 4,
            "numberAvailable": 4,
            "numberMisscheduled": 0,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": kind.value,
        "metadata": metadata,
        "spec": spec,
        "status": status if status is not None else settled,
    }


def revision_json(
    kind: WorkloadKind,
    number: int,
    tpl: JsonDict,
    *,
    owner_uid: str | None = None,
    name: str | None = None,
    change_cause: str | None = None,
) -> JsonDict:
    """A ControllerRevision as the controller writes it: getPatch of the template."""
    metadata: JsonDict = {
        "name": name or revision_name(kind, number),
        "namespace": "shop",
        "uid": f"cr-{kind.kubectl}-{number}",
        "resourceVersion": str(1000 + number),
        "creationTimestamp": f"2026-11-2{number % 10}T10:00:00Z",
        "labels": {"app": NAMES[kind], "controller-revision-hash": HASHES.get(number, "x")},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": kind.value,
                "name": NAMES[kind],
                "uid": owner_uid or UIDS[kind],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if change_cause is not None:
        metadata["annotations"] = {CHANGE_CAUSE: change_cause}
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": metadata,
        "data": {"spec": {"template": {"$patch": "replace", **copy.deepcopy(tpl)}}},
        "revision": number,
    }


def templates(kind: WorkloadKind, **migrations: str) -> dict[int, JsonDict]:
    """The pod template of each revision: 1.0, 1.1, 1.2 (1.2 with DEBUG on), 1.3.
    `migrations` by revision ("r3": "irreversible") annotate those templates."""
    return {
        n: pod_template(v, app=NAMES[kind], debug=n == 3, migration=migrations.get(f"r{n}"))
        for n, v in VERSIONS.items()
    }


def workload_history(
    kind: WorkloadKind = STS,
    *,
    current: int | JsonDict = 3,
    numbers: tuple[int, ...] = (1, 2, 3),
    extra: tuple[JsonDict, ...] = (),
    tpls: dict[int, JsonDict] | None = None,
    **workload: Any,
) -> History:
    """The workload at template `current` (a revision's number, or a template of its own) and
    its ControllerRevisions `numbers` (listed out of order, as a list may return them), plus
    `extra` objects in the list."""
    tpls = tpls or templates(kind)
    now = tpls[current] if isinstance(current, int) else current
    if isinstance(current, int) and kind is STS:
        workload.setdefault("update_revision", current)
    obj = workload_json(kind, now, **workload)
    listed = [
        revision_json(kind, n, tpls[n], change_cause=f"deploy {VERSIONS[n]}") for n in numbers
    ]
    listed.reverse()
    return parse_workload_history(kind, obj, [*listed, *extra])


def stranger_revision(kind: WorkloadKind, number: int = 9) -> JsonDict:
    """A ControllerRevision another workload (same labels, another uid) controls."""
    return revision_json(
        kind, number, pod_template("6.6.6", app=NAMES[kind]), owner_uid=STRANGER_UID
    )


def data_of(tpl: JsonDict) -> JsonDict:
    return {"spec": {"template": {**tpl, "$patch": "replace"}}}


# --- which revision ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [STS, DS])
def test_undo_goes_to_the_second_highest_revision_with_its_controller_revision(
    kind: WorkloadKind,
) -> None:
    plan = plan_rollback(workload_history(kind), None)
    assert plan.kind is kind
    assert plan.action == "patch"
    assert (plan.namespace, plan.name) == ("shop", NAMES[kind])
    assert (plan.from_revision, plan.from_version) == (3, "1.2")
    assert (plan.target.number, plan.target.version) == (2, "1.1")
    assert plan.target.replicaset == revision_name(kind, 2)
    assert (plan.resource_version, plan.generation) == (RESOURCE_VERSION, GENERATION)
    assert plan.summary == f"shop/{NAMES[kind]}: 1.2 → 1.1 (revision 3 → 2)"


def test_the_previous_is_the_second_highest_number_not_the_one_before_the_current() -> None:
    # Back at 1.0's template; the controller has not yet renumbered revision 1 to 4: kubectl's
    # undo still takes revision 2, the second highest number, which is not what ran before.
    plan = plan_rollback(workload_history(current=1), None)
    assert (plan.from_revision, plan.target.number, plan.target.version) == (1, 2, "1.1")


def test_the_target_revision_keeps_what_the_history_read_of_it() -> None:
    history = workload_history()
    plan = plan_rollback(history, None)
    assert plan.target == history.revision(2)
    assert plan.target.change_cause == "deploy 1.1"
    assert not plan.target.current


@pytest.mark.parametrize("kind", [STS, DS])
def test_an_explicit_revision_is_restored_exactly(kind: WorkloadKind) -> None:
    tpls = templates(kind)
    plan = plan_rollback(workload_history(kind), 1)
    assert (plan.target.number, plan.target.version) == (1, "1.0")
    assert plan.merge_patch is not None
    assert plan.merge_patch["spec"] == data_of(tpls[1])["spec"]
    assert plan.merge_patch["spec"]["template"]["$patch"] == "replace"


def test_a_missing_revision_is_refused_in_kubectls_words() -> None:
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback(workload_history(), 7)
    assert str(refused.value) == (
        "unable to find specified revision 7 in history "
        "(statefulset shop/orders-db keeps revisions 1, 2, 3)"
    )


def test_a_missing_revision_of_a_daemonset_names_it_as_kubectl_does() -> None:
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback(workload_history(DS, numbers=(2, 3)), 1)
    assert str(refused.value) == (
        "unable to find specified revision 1 in history "
        "(daemon set shop/log-shipper keeps revisions 2, 3)"
    )


def test_a_negative_revision_is_not_found() -> None:
    with pytest.raises(RollbackRefused, match=r"^unable to find specified revision -2 in history"):
        plan_rollback(workload_history(), -2)


def test_without_a_previous_revision_there_is_no_last_revision() -> None:
    with pytest.raises(RollbackRefused) as refused:
        plan_rollback(workload_history(numbers=(3,)), None)
    assert str(refused.value) == (
        "no last revision to roll back to (statefulset shop/orders-db has only revision 3)"
    )


def test_another_workloads_revision_is_neither_chosen_nor_found() -> None:
    history = workload_history(numbers=(2, 3), extra=(stranger_revision(STS),))
    # The stranger's 9 is the highest number listed: counted, it would make 3 the previous.
    assert plan_rollback(history, None).target.number == 2
    with pytest.raises(RollbackRefused, match="unable to find specified revision 9 in history"):
        plan_rollback(history, 9)


# --- skip --------------------------------------------------------------------------------


def test_already_at_the_asked_template_is_skipped_without_a_patch() -> None:
    plan = plan_rollback(workload_history(current=2), 2, CAUSE)
    assert plan.action == "skip"
    assert plan.merge_patch is None
    assert not plan.body  # nothing is sent
    assert plan.summary == "skipped: statefulset shop/orders-db is already at revision 2 (1.1)"


def test_a_skip_is_not_refused_by_the_migration_guard() -> None:
    # At 1.0 again and asked for 1.0: nothing changes, so nothing is refused either.
    history = workload_history(current=1, tpls=templates(STS, r3="irreversible"))
    plan = plan_rollback(history, 1)
    assert plan.action == "skip" and plan.overridden is None


# --- the patch ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [STS, DS])
def test_the_patch_is_the_revisions_data_the_precondition_and_the_bots_record(
    kind: WorkloadKind,
) -> None:
    tpls = templates(kind)
    plan = plan_rollback(workload_history(kind), None, CAUSE)
    assert plan.merge_patch == {
        "spec": {"template": {**tpls[2], "$patch": "replace"}},
        "metadata": {
            "resourceVersion": RESOURCE_VERSION,
            "annotations": {
                CHANGE_CAUSE: "rolled back to revision 2 (1.1) by @alice via Slack: "
                "5xx on orders since 1.2",
                f"{BOT}from-version": "1.2",
                f"{BOT}rolled-back-by": "@alice",
                f"{BOT}rolled-back-via": "Slack",
                f"{BOT}rolled-back-at": "2026-11-27T04:00:12Z",
                f"{BOT}from-revision": "3",
                f"{BOT}to-revision": "2",
                f"{BOT}reason": "5xx on orders since 1.2",
                f"{BOT}rolled-back-by-id": "U0ALICE1",
            },
        },
    }
    assert plan.patch == ()


def test_the_bots_stale_keys_are_removed_with_null_and_others_left_alone() -> None:
    earlier = {
        f"{BOT}from-version": "1.3",
        f"{BOT}reason": "an earlier incident",
        f"{BOT}rolled-back-by-id": "U0BOB1",
        f"{BOT}written-by-an-older-bot": "x",
        CHANGE_CAUSE: "deploy 1.2",
        "team": "payments",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    quiet = RollbackCause(actor="os user carol", via="CLI", reason=None, at=AT)
    plan = plan_rollback(workload_history(annotations=earlier), None, quiet)
    assert plan.merge_patch is not None
    annotations = plan.merge_patch["metadata"]["annotations"]
    assert annotations[CHANGE_CAUSE] == "rolled back to revision 2 (1.1) by os user carol via CLI"
    assert annotations[f"{BOT}from-version"] == "1.2"  # this rollback's, not the stale one
    assert annotations[f"{BOT}reason"] is None
    assert annotations[f"{BOT}rolled-back-by-id"] is None
    assert annotations[f"{BOT}written-by-an-older-bot"] is None
    # A strategic merge patch keeps what it does not name: nobody else's keys are in it.
    assert "team" not in annotations
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    assert {k for k, v in annotations.items() if v is None} == {
        f"{BOT}reason",
        f"{BOT}rolled-back-by-id",
        f"{BOT}written-by-an-older-bot",
    }


def test_without_a_cause_there_are_no_annotations_at_all() -> None:
    stale = {f"{BOT}reason": "an earlier incident", CHANGE_CAUSE: "deploy 1.2"}
    plan = plan_rollback(workload_history(annotations=stale), None)
    assert plan.merge_patch is not None
    assert plan.merge_patch["metadata"] == {"resourceVersion": RESOURCE_VERSION}


def test_the_body_is_the_merge_patch_dict() -> None:
    plan = plan_rollback(workload_history(DS), None, CAUSE)
    assert isinstance(plan.body, dict)
    assert plan.body is plan.merge_patch


def test_the_patch_does_not_share_the_historys_data() -> None:
    history = workload_history()
    first = plan_rollback(history, None)
    assert first.merge_patch is not None
    first.merge_patch["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    first.merge_patch["metadata"]["resourceVersion"] = "1"
    again = plan_rollback(history, None)
    assert again.merge_patch is not None
    assert again.merge_patch["metadata"]["resourceVersion"] == RESOURCE_VERSION
    image = again.merge_patch["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/shop/orders-db:1.1"


def test_a_template_the_controller_has_not_numbered_yet_is_from_an_unknown_revision() -> None:
    # A DaemonSet has no updateRevision to fall back on: the new template's revision is unknown.
    new = pod_template("1.3", app=NAMES[DS])
    plan = plan_rollback(workload_history(DS, current=new), None, CAUSE)
    assert (plan.from_revision, plan.from_version, plan.target.number) == (None, "1.3", 2)
    assert plan.summary == "shop/log-shipper: 1.3 → 1.1 (revision ? → 2)"
    assert plan.merge_patch is not None
    assert plan.merge_patch["metadata"]["annotations"][f"{BOT}from-revision"] == ""


def test_a_statefulset_not_yet_matching_falls_back_to_its_update_revision() -> None:
    new = pod_template("1.3", app=NAMES[STS])
    plan = plan_rollback(workload_history(STS, current=new, update_revision=3), None)
    assert plan.from_revision == 3


def test_the_snapshot_names_the_controller_revision() -> None:
    plan = plan_rollback(workload_history(), 1)
    assert plan.snapshot == Snapshot(
        revision=3,
        generation=GENERATION,
        target_replicaset=revision_name(STS, 1),
        target_revision=1,
    )


# --- the migration guard --------------------------------------------------------------------


def test_a_revision_older_than_an_irreversible_migration_is_refused() -> None:
    history = workload_history(tpls=templates(STS, r3="irreversible"))
    with pytest.raises(MigrationRefused) as refused:
        plan_rollback(history, None, CAUSE)
    assert str(refused.value) == "1.1 cannot run against the schema migrated by 1.2 (revision 3)"
    assert refused.value.block.target_revision == 2


def test_the_migration_guard_overridden_is_said_in_the_plan() -> None:
    history = workload_history(tpls=templates(STS, r3="irreversible"))
    plan = plan_rollback(history, None, CAUSE, override=True)
    assert plan.action == "patch"
    assert plan.overridden == "1.1 cannot run against the schema migrated by 1.2 (revision 3)"
    assert plan.merge_patch is not None and plan.target.number == 2


def test_a_revision_at_or_after_the_migration_is_not_refused() -> None:
    history = workload_history(DS, tpls=templates(DS, r2="irreversible"))
    plan = plan_rollback(history, 2)
    assert plan.action == "patch" and plan.overridden is None
    with pytest.raises(MigrationRefused):
        plan_rollback(history, 1)


def test_an_override_not_needed_is_not_recorded() -> None:
    plan = plan_rollback(workload_history(), None, CAUSE, override=True)
    assert plan.overridden is None


# --- the update strategy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "where"),
    [(STS, "statefulset shop/orders-db"), (DS, "daemon set shop/log-shipper")],
)
def test_on_delete_warns_that_the_pods_must_be_deleted(kind: WorkloadKind, where: str) -> None:
    plan = plan_rollback(workload_history(kind, strategy={"type": "OnDelete"}), None, CAUSE)
    assert plan.update_strategy == "OnDelete"
    assert plan.pods_must_be_deleted
    assert plan.warnings == (
        f"{where} uses the OnDelete update strategy: the controller replaces no pod, so each "
        "keeps the version it runs until it is deleted; delete the pods to bring 1.1 "
        "(revision 2) back",
    )
    assert plan.merge_patch is not None  # the template is still rolled back


@pytest.mark.parametrize("kind", [STS, DS])
def test_a_rolling_update_needs_no_pod_deleted_and_warns_of_nothing(kind: WorkloadKind) -> None:
    plan = plan_rollback(workload_history(kind), None)
    assert plan.update_strategy == "RollingUpdate"
    assert not plan.pods_must_be_deleted
    assert plan.warnings == ()


def test_a_partition_is_warned_of() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    plan = plan_rollback(workload_history(strategy=strategy), None)
    assert plan.warnings == (
        "statefulset shop/orders-db is partitioned at 2: only its pods of ordinal 2 and up are "
        "rolled back; pods 0 to 1 keep the version they run",
    )
    assert not plan.pods_must_be_deleted


def test_an_object_kubectl_apply_manages_is_warned_of_as_kubectl_does() -> None:
    notes = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    plan = plan_rollback(workload_history(annotations=notes), None)
    assert len(plan.warnings) == 1
    assert plan.warnings[0].startswith(
        "Warning: resource statefulsets.apps/orders-db was previously managed with 'kubectl apply'"
    )


# --- a Deployment, as before -----------------------------------------------------------------


def deployment_history() -> History:
    rss = [
        replicaset(
            template(v),
            revision=n,
            pod_hash=f"h{n}",
            created=f"2026-11-2{n}T10:00:00Z",
            replicas=3 if n == 3 else 0,
        )
        for n, v in {1: "2.12.0", 2: "2.13.0", 3: "2.14.0"}.items()
    ]
    return parse_history(deployment(template("2.14.0"), revision=3), rss)


def test_a_deployment_is_still_planned_as_kubectls_json_patch() -> None:
    plan = plan_rollback(deployment_history(), None, CAUSE)
    assert plan.kind is WorkloadKind.DEPLOYMENT
    assert plan.merge_patch is None
    assert plan.body is plan.patch
    assert isinstance(plan.body, tuple)
    assert [(op["op"], op["path"]) for op in plan.body] == [
        ("replace", "/metadata/resourceVersion"),
        ("replace", "/spec/template"),
        ("replace", "/metadata/annotations"),
    ]
    assert plan.target.replicaset == "checkout-h2"
    assert (plan.warnings, plan.update_strategy) == ((), "")
    assert not plan.pods_must_be_deleted


def test_a_deployment_never_has_pods_to_delete_whatever_its_strategy_says() -> None:
    plan = plan_rollback(deployment_history(), None)
    assert not dataclasses.replace(plan, update_strategy="OnDelete").pods_must_be_deleted
    workload_plan = plan_rollback(workload_history(), None)
    assert dataclasses.replace(workload_plan, update_strategy="OnDelete").pods_must_be_deleted


def test_a_deployments_revision_zero_is_still_refused() -> None:
    with pytest.raises(RollbackRefused, match="revision 0 is not valid"):
        plan_rollback(deployment_history(), 0)
