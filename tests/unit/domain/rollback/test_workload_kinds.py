"""A workload's kind carried everywhere a rollback goes: its target's words and lock, the Lease
another replica reads, an approval request, the audit trail, the notes on its update strategy,
the viewer its progress is read by, and how an OnDelete rollout ends."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_deployment, parse_workload
from bot.config.catalog import ServiceRef
from bot.domain import audit_store
from bot.domain.audit import AuditRecord, Step
from bot.domain.rollback.approvals import ApprovalRequest, from_json, to_json
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.locks import lease_name, lease_state, run_annotations
from bot.domain.rollback.models import RunInfo, Target, Thread, WorkloadKind, lock_key
from bot.domain.rollback.progress import Ending, Phase, Progress, ending
from bot.domain.rollback.workload_progress import WorkloadProgress, progress_of
from bot.domain.rollback.workload_undo import strategy_notes
from bot.usecases.audit import slack_step
from tests.builders import deployment, template
from tests.unit.domain.rollback.test_plan_workloads import (
    DS,
    STS,
    pod_template,
    workload_history,
    workload_json,
)

DEPLOY = WorkloadKind.DEPLOYMENT
NOW = datetime(2026, 11, 27, 4, 0, 12, tzinfo=UTC)
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# --- the target ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "lock", "described", "kubectl"),
    [
        (DEPLOY, "checkout", "checkout", "deployment shop/checkout", "deployment/checkout"),
        (
            STS,
            "orders-db",
            "statefulset:orders-db",
            "statefulset shop/orders-db",
            "statefulset/orders-db",
        ),
        (
            DS,
            "log-shipper",
            "daemonset:log-shipper",
            "daemon set shop/log-shipper",
            "daemonset/log-shipper",
        ),
    ],
)
def test_a_target_names_itself_by_its_kind(
    kind: WorkloadKind, name: str, lock: str, described: str, kubectl: str
) -> None:
    target = Target("shop", name, "prod-eu", kind)
    assert target.lock_key == lock == lock_key(kind, name)
    assert target.described == described
    assert target.kubectl == kubectl
    assert str(target) == f"shop/{name}"


def test_a_target_is_a_deployment_unless_told() -> None:
    assert Target("shop", "checkout").kind is DEPLOY
    assert Target("shop", "checkout").lock_key == "checkout"  # the Leases written before kinds


@pytest.mark.parametrize(
    "name", ["orders-db", "a", "db.internal", "x" * 253, "statefulset", "daemonset.x"]
)
def test_workloads_of_one_name_never_share_a_lock(name: str) -> None:
    keys = {kind: lock_key(kind, name) for kind in WorkloadKind}
    leases = {lease_name(key) for key in keys.values()}
    assert len(set(keys.values())) == len(leases) == len(WorkloadKind)
    assert all(DNS_SUBDOMAIN.fullmatch(lease) and len(lease) <= 253 for lease in leases)


def test_workloads_of_one_namespace_never_share_a_lock() -> None:
    # A Deployment's name is a DNS subdomain and may hold dots, so the Deployment
    # "statefulset.orders-db" and the StatefulSet "orders-db" are two workloads of one namespace:
    # sharing a Lease, one's rollback is refused as "already running" while the other's runs,
    # and told with the other's versions.
    deployment_lock = lease_name(lock_key(DEPLOY, "statefulset.orders-db"))
    statefulset_lock = lease_name(lock_key(STS, "orders-db"))
    assert deployment_lock != statefulset_lock


# --- the Lease -----------------------------------------------------------------------------

RUN = RunInfo(
    service="orders-db",
    actor="U0ALICE1",
    from_version="1.2",
    to_version="1.1",
    to_revision=2,
    started_at=NOW,
    via="Slack",
    reason="5xx on orders",
    rollback_id="0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    thread=Thread("C0INCIDENT1", "1764216000.000100", "1764216001.000200"),
    deployment="orders-db",
    from_revision=3,
    target_replicaset="orders-db-6b7f9c8d5e",
    kind=STS,
)


def lease(annotations: dict[str, str], holder: str | None = "bot-1") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "leaseDurationSeconds": 30,
        "acquireTime": "2026-11-27T04:00:12.000000Z",
        "renewTime": "2026-11-27T04:00:20.000000Z",
    }
    if holder is not None:
        spec["holderIdentity"] = holder
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": lease_name(lock_key(RUN.kind, "orders-db")),
            "namespace": "shop",
            "resourceVersion": "7781",
            "annotations": annotations,
        },
        "spec": spec,
    }


@pytest.mark.parametrize("kind", [STS, DS])
def test_a_runs_kind_is_kept_in_its_lease(kind: WorkloadKind) -> None:
    run = dataclasses.replace(RUN, kind=kind)
    notes = run_annotations(run)
    assert notes["rollback-bot.io/kind"] == kind.value
    read = lease_state(lease(notes)).run
    assert read == dataclasses.replace(run, holder="bot-1")


def test_a_deployments_lease_is_written_as_before_kinds() -> None:
    run = dataclasses.replace(RUN, kind=DEPLOY, deployment="checkout")
    notes = run_annotations(run)
    assert "rollback-bot.io/kind" not in notes
    read = lease_state(lease(notes)).run
    assert read is not None and read.kind is DEPLOY


@pytest.mark.parametrize("kind", ["CronJob", "statefulset", "", "StatefulSet " * 40])
def test_an_unknown_kind_in_a_lease_reads_as_a_deployment(kind: str) -> None:
    notes = run_annotations(RUN) | {"rollback-bot.io/kind": kind}
    read = lease_state(lease(notes)).run
    assert read is not None and read.kind is DEPLOY
    assert read.deployment == "orders-db"


def test_a_kind_handed_over_is_kept_for_the_replica_picking_it_up() -> None:
    notes = run_annotations(RUN) | {"rollback-bot.io/handed-over-by": "bot-0"}
    state = lease_state(lease(notes, holder=None))
    assert state.handed_over_by == "bot-0"
    assert state.run is not None and state.run.kind is STS


# --- an approval request -------------------------------------------------------------------

REQUEST = ApprovalRequest(
    id="0a1b2c3d4e5f",
    service="orders-db",
    target=Target("shop", "orders-db", "prod-eu", STS),
    requester="U0ALICE1",
    requester_name="@alice",
    from_version="1.2",
    to_version="1.1",
    target_replicaset="orders-db-6b7f9c8d5e",
    target_revision=2,
    snapshot=Snapshot(
        revision=3, generation=4, target_replicaset="orders-db-6b7f9c8d5e", target_revision=2
    ),
    reason="5xx on orders",
    thread=Thread("C0INCIDENT1", "1764216000.000100", "1764216000.000100"),
    created_at=NOW,
    expires_at=NOW + timedelta(minutes=15),
    needed=1,
)


@pytest.mark.parametrize("kind", [STS, DS, DEPLOY])
def test_a_request_keeps_its_targets_kind(kind: WorkloadKind) -> None:
    request = dataclasses.replace(REQUEST, target=dataclasses.replace(REQUEST.target, kind=kind))
    text = to_json(request)
    assert json.loads(text)["kind"] == kind.value
    assert from_json(text) == request


def stored(**changes: Any) -> str:
    data = json.loads(to_json(REQUEST))
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


def test_a_request_written_before_kinds_is_about_a_deployment() -> None:
    read = from_json(stored(kind=...))
    assert read is not None
    assert read.target == Target("shop", "orders-db", "prod-eu", DEPLOY)
    null = from_json(stored(kind=None))
    assert null is not None and null.target.kind is DEPLOY


@pytest.mark.parametrize("kind", ["CronJob", "statefulset", "", 5, True, ["StatefulSet"], {}])
def test_a_request_of_an_unknown_kind_is_not_a_request(kind: Any) -> None:
    assert from_json(stored(kind=kind)) is None


# --- the audit trail -----------------------------------------------------------------------


def audit(**fields: Any) -> AuditRecord:
    base: dict[str, Any] = {
        "step": Step.STARTED,
        "service": "orders-db",
        "namespace": "shop",
        "deployment": "orders-db",
        "actor": "U0ALICE1",
        "via": "Slack",
        "at": NOW,
        "from_version": "1.2",
        "to_version": "1.1",
        "from_revision": 3,
        "to_revision": 2,
    }
    return AuditRecord(**(base | fields))


def test_an_audit_record_says_its_kind_when_not_a_deployment() -> None:
    assert audit(kind="StatefulSet").to_json()["kind"] == "StatefulSet"
    assert "kind" not in audit().to_json()


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet", None])
def test_an_audit_records_kind_is_stored_and_read_back(kind: str | None) -> None:
    record = audit(kind=kind)
    assert audit_store.decode(audit_store.encode(record)) == record


@pytest.mark.parametrize("kind", [5, True, ["StatefulSet"], {"kind": "StatefulSet"}])
def test_a_stored_kind_that_is_no_text_is_no_record(kind: Any) -> None:
    data = json.loads(audit_store.encode(audit(kind="StatefulSet")))
    data["kind"] = kind
    assert audit_store.decode(json.dumps(data)) is None


def test_a_stored_kind_is_bounded() -> None:
    data = json.loads(audit_store.encode(audit()))
    data["kind"] = "S" * 5000
    read = audit_store.decode(json.dumps(data))
    assert read is not None and read.kind is not None
    assert len(read.kind) == audit_store.FIELD_LIMIT


@pytest.mark.parametrize(("kind", "recorded"), [(STS, "StatefulSet"), (DEPLOY, None)])
def test_a_slack_step_records_the_services_kind(kind: WorkloadKind, recorded: str | None) -> None:
    ref = ServiceRef("orders-db", "shop", "orders-db", "prod-eu", kind=kind)
    assert slack_step(Step.ASKED, ref, "U0ALICE1", NOW).kind == recorded


# --- the update strategy's notes -----------------------------------------------------------

ON_DELETE_NOTE = (
    "update strategy OnDelete: a rollback restores the template only; Kubernetes replaces no "
    "pod, each keeps its version until it is deleted"
)
ORDINAL_NOTE = (
    "pods are replaced one at a time from the highest ordinal, each once the one before is "
    "ready: a pod of the bad version that never becomes ready stops the rollback until it is "
    "deleted"
)


@pytest.mark.parametrize("kind", [STS, DS])
def test_on_delete_is_noted(kind: WorkloadKind) -> None:
    workload = parse_workload(
        kind, workload_json(kind, pod_template("1.2"), strategy={"type": "OnDelete"})
    )
    assert strategy_notes(workload) == (ON_DELETE_NOTE,)


def test_a_statefulset_rolling_update_notes_its_ordinals() -> None:
    workload = parse_workload(STS, workload_json(STS, pod_template("1.2")))
    assert strategy_notes(workload) == (ORDINAL_NOTE,)


@pytest.mark.parametrize(
    ("partition", "replicas", "count"),
    [(2, 5, " (3 of 5)"), (7, 5, " (0 of 5)"), (1, 0, "")],
)
def test_a_partition_is_noted_with_how_many_pods_it_rolls_back(
    partition: int, replicas: int, count: str
) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    obj = workload_json(STS, pod_template("1.2"), strategy=strategy, replicas=replicas)
    assert strategy_notes(parse_workload(STS, obj)) == (
        f"partition {partition}: only the pods of ordinal {partition} and above are rolled "
        f"back{count}; the others keep their version",
        ORDINAL_NOTE,
    )


def test_a_daemonset_rolling_update_and_a_deployment_have_no_note() -> None:
    assert strategy_notes(parse_workload(DS, workload_json(DS, pod_template("1.2")))) == ()
    assert strategy_notes(parse_deployment(deployment(template("2.14.0"), revision=3))) == ()


# --- progress, by the viewer of the kind ---------------------------------------------------


def test_a_deployments_progress_is_read_by_the_deployment_viewer() -> None:
    progress = progress_of(parse_deployment(deployment(template("2.14.0"), revision=3)))
    assert progress.phase is Phase.COMPLETE
    assert progress.message == 'deployment "checkout" successfully rolled out'
    assert progress.revision == 3


def test_a_statefulsets_progress_is_read_by_the_statefulset_viewer() -> None:
    history = workload_history(STS)
    progress = progress_of(history.deployment)
    assert isinstance(progress, WorkloadProgress)
    assert progress.phase is Phase.COMPLETE
    assert progress.message == "partitioned roll out complete: 3 new pods have been updated..."
    assert progress.revision == 3  # the ControllerRevision the history found


def test_a_daemonsets_progress_is_read_by_the_daemonset_viewer() -> None:
    status = {
        "observedGeneration": 4,
        "desiredNumberScheduled": 4,
        "currentNumberScheduled": 4,
        "updatedNumberScheduled": 1,
        "numberReady": 4,
        "numberAvailable": 4,
    }
    progress = progress_of(workload_history(DS, status=status).deployment)
    assert progress.phase is Phase.UPDATING
    assert progress.message == (
        'Waiting for daemon set "log-shipper" rollout to finish: 1 out of 4 new pods have been '
        "updated..."
    )
    assert (progress.desired, progress.updated) == (4, 1)


@pytest.mark.parametrize(
    ("kind", "named"), [(STS, 'statefulset "orders-db"'), (DS, 'daemon set "log-shipper"')]
)
def test_on_delete_progress_ends_with_pods_to_delete(kind: WorkloadKind, named: str) -> None:
    progress = progress_of(workload_history(kind, strategy={"type": "OnDelete"}).deployment)
    assert progress.phase is Phase.PODS_TO_DELETE
    assert progress.finished
    assert isinstance(progress, WorkloadProgress) and progress.pods_must_be_deleted
    assert progress.message.startswith(
        f"rollout status is only available for RollingUpdate strategy type: {named} uses the "
        "OnDelete update strategy"
    )


# --- how it ended --------------------------------------------------------------------------


def observed(phase: Phase) -> Progress:
    return Progress(phase, "m", desired=3, updated=0, ready=3, available=3, total=3, revision=2)


def test_pods_to_delete_is_its_own_ending() -> None:
    assert ending(observed(Phase.PODS_TO_DELETE), None) is Ending.PODS_TO_DELETE


def test_pods_to_delete_with_an_error_is_a_failure_or_unknown() -> None:
    assert ending(observed(Phase.PODS_TO_DELETE), "the API said 500") is Ending.FAILED
    unknown = ending(observed(Phase.PODS_TO_DELETE), "watch lost", unknown=True)
    assert unknown is Ending.UNKNOWN


def test_a_last_observation_of_pods_to_delete_stands_like_a_complete_one() -> None:
    # As for a complete rollout: what was last seen is finished, so losing sight after it
    # changes nothing.
    assert ending(observed(Phase.PODS_TO_DELETE), None, unknown=True) is Ending.PODS_TO_DELETE
    assert ending(observed(Phase.COMPLETE), None, unknown=True) is Ending.SUCCEEDED


@pytest.mark.parametrize("phase", [Phase.UPDATING, Phase.FAILED, Phase.WAITING_FOR_OBSERVATION])
def test_other_phases_do_not_end_with_pods_to_delete(phase: Phase) -> None:
    assert ending(observed(phase), None) is Ending.FAILED
    assert ending(None, None) is Ending.FAILED
