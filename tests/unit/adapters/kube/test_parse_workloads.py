"""`parse_workload` and `parse_workload_history`: a StatefulSet's or DaemonSet's JSON and its
ControllerRevisions as the domain's values, their counts in a Deployment's terms, and hostile
JSON read without an exception (or refused in a sentence)."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_workload, parse_workload_history
from bot.domain.errors import RollbackRefused
from bot.domain.rollback.controller_revisions import InvalidControllerRevision
from bot.domain.rollback.models import Container, Deployment, WorkloadKind
from tests.builders import deployment, template
from tests.unit.domain.rollback.test_plan_workloads import (
    DS,
    NAMES,
    STS,
    UIDS,
    pod_template,
    revision_json,
    revision_name,
    stranger_revision,
    templates,
    workload_json,
)

JsonDict = dict[str, Any]


def sts(**overrides: Any) -> JsonDict:
    return workload_json(STS, pod_template("1.2"), **overrides)


def ds(**overrides: Any) -> JsonDict:
    return workload_json(DS, pod_template("1.2", app="log-shipper"), **overrides)


# --- a StatefulSet -------------------------------------------------------------------------


def test_a_statefulset_is_read_in_a_deployments_terms() -> None:
    obj = sts(
        replicas=5,
        strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
        annotations={"team": "payments", "kubernetes.io/change-cause": "deploy 1.2"},
        status={
            "observedGeneration": 3,
            "replicas": 5,
            "updatedReplicas": 2,
            "readyReplicas": 4,
            "availableReplicas": 3,
            "currentReplicas": 3,
        },
    )
    workload = parse_workload(STS, obj, revision=7)
    assert workload.kind is STS
    assert (workload.namespace, workload.name, workload.uid) == ("shop", "orders-db", UIDS[STS])
    assert (workload.resource_version, workload.generation) == ("90211", 4)
    assert workload.desired_replicas == 5
    assert workload.revision == 7
    assert workload.version == "1.2"
    assert workload.containers == (
        Container("orders-db", "registry.example.com/shop/orders-db:1.2"),
    )
    assert workload.created_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    status = workload.status
    assert (
        status.observed_generation,
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
        status.unavailable_replicas,
        status.conditions,
    ) == (3, 5, 2, 4, 3, 0, ())
    assert (workload.update_strategy, workload.partition) == ("RollingUpdate", 2)
    assert workload.pod_management == "OrderedReady"
    assert workload.revision_history_limit == 10
    assert workload.paused is False
    assert workload.change_cause == "deploy 1.2"
    assert workload.annotations["team"] == "payments"
    assert workload.selector == {"matchLabels": {"app": "orders-db"}}
    assert workload.template == obj["spec"]["template"]
    assert workload.raw is obj  # its undo and progress read the JSON itself
    assert workload.target.kind is STS


def test_a_statefulset_without_replicas_wants_one_as_the_api_defaults() -> None:
    assert parse_workload(STS, sts(replicas=None)).desired_replicas == 1


def test_a_statefulset_scaled_to_zero_wants_zero() -> None:
    assert parse_workload(STS, sts(replicas=0)).desired_replicas == 0


def test_the_revision_is_known_from_the_history_only() -> None:
    assert parse_workload(STS, sts()).revision is None


@pytest.mark.parametrize("policy", ["Parallel", "OrderedReady"])
def test_the_pod_management_policy_is_kept(policy: str) -> None:
    obj = sts()
    obj["spec"]["podManagementPolicy"] = policy
    assert parse_workload(STS, obj).pod_management == policy


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ({"type": "OnDelete"}, ("OnDelete", None)),
        ({"type": "RollingUpdate"}, ("RollingUpdate", None)),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}, ("RollingUpdate", 0)),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": "2"}}, ("RollingUpdate", None)),
        ({"type": "RollingUpdate", "rollingUpdate": {"partition": True}}, ("RollingUpdate", None)),
        ({"type": 5}, ("", None)),
        ({}, ("", None)),
    ],
)
def test_the_update_strategy_and_partition(
    strategy: JsonDict, expected: tuple[str, int | None]
) -> None:
    workload = parse_workload(STS, sts(strategy=strategy))
    assert (workload.update_strategy, workload.partition) == expected


@pytest.mark.parametrize("strategy", [None, "OnDelete", ["OnDelete"]], ids=repr)
def test_an_update_strategy_absent_or_not_an_object_is_none(strategy: Any) -> None:
    obj = sts()
    if strategy is None:
        del obj["spec"]["updateStrategy"]
    else:
        obj["spec"]["updateStrategy"] = strategy
    workload = parse_workload(STS, obj)
    assert (workload.update_strategy, workload.partition) == ("", None)


# --- a DaemonSet ---------------------------------------------------------------------------


def test_a_daemonset_counts_nodes_desired_is_desired_number_scheduled() -> None:
    obj = ds(
        status={
            "observedGeneration": 4,
            "desiredNumberScheduled": 6,
            "currentNumberScheduled": 7,
            "updatedNumberScheduled": 3,
            "numberReady": 5,
            "numberAvailable": 4,
            "numberUnavailable": 2,
            "numberMisscheduled": 1,
        }
    )
    workload = parse_workload(DS, obj)
    assert workload.kind is DS
    assert workload.desired_replicas == 6
    status = workload.status
    assert (
        status.observed_generation,
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
        status.unavailable_replicas,
    ) == (4, 7, 3, 5, 4, 2)
    assert workload.name == "log-shipper"
    assert workload.version == "1.2"


def test_a_daemonset_has_no_partition_and_no_pod_management_policy() -> None:
    obj = ds(strategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 3}})
    workload = parse_workload(DS, obj)
    assert (workload.update_strategy, workload.partition) == ("RollingUpdate", None)
    assert workload.pod_management == ""


def test_a_daemonset_not_yet_scheduled_wants_zero() -> None:
    workload = parse_workload(DS, ds(status={}))
    assert workload.desired_replicas == 0
    assert workload.status.replicas == 0


def test_a_deployment_is_read_as_before() -> None:
    obj = deployment(template("2.14.0"), revision=3)
    workload = parse_workload(WorkloadKind.DEPLOYMENT, obj, revision=99)
    assert workload.kind is WorkloadKind.DEPLOYMENT
    assert workload.revision == 3  # its own annotation, not the argument
    assert workload.raw == {}


# --- hostile JSON --------------------------------------------------------------------------

NOT_COUNTS = [
    "many",
    "",
    "1e3",
    True,
    False,
    None,
    [],
    [3],
    {},
    {"value": 3},
    math.inf,
    -math.inf,
    math.nan,
    "9" * 5000,  # beyond what int() reads from text
]


@pytest.mark.parametrize("value", NOT_COUNTS, ids=repr)
@pytest.mark.parametrize("kind", [STS, DS])
def test_a_status_count_that_is_no_number_reads_as_zero(kind: WorkloadKind, value: Any) -> None:
    keys = (
        ["replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "observedGeneration"]
        if kind is STS
        else [
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "updatedNumberScheduled",
            "numberReady",
            "numberAvailable",
            "numberUnavailable",
            "observedGeneration",
        ]
    )
    obj = sts() if kind is STS else ds()
    obj["status"] = dict.fromkeys(keys, value)
    obj["metadata"]["generation"] = value
    workload = parse_workload(kind, obj)
    status = workload.status
    assert workload.generation == 0
    assert (
        status.observed_generation,
        status.replicas,
        status.updated_replicas,
        status.ready_replicas,
        status.available_replicas,
        status.unavailable_replicas,
    ) == (0, 0, 0, 0, 0, 0)
    if kind is DS:
        assert workload.desired_replicas == 0


@pytest.mark.parametrize("value", NOT_COUNTS, ids=repr)
def test_statefulset_replicas_that_are_no_number_never_raise(value: Any) -> None:
    obj = sts()
    obj["spec"]["replicas"] = value
    desired = parse_workload(STS, obj).desired_replicas
    assert desired == (1 if value is None else 0)


def test_huge_numbers_are_kept_without_an_exception() -> None:
    huge = 10**40
    obj = sts(replicas=huge, status={"readyReplicas": huge, "observedGeneration": huge})
    workload = parse_workload(STS, obj)
    assert (workload.desired_replicas, workload.status.ready_replicas) == (huge, huge)
    assert workload.status.observed_generation == huge


def test_numbers_as_json_floats_or_numeric_text_are_read_as_whole_numbers() -> None:
    obj = ds(status={"desiredNumberScheduled": 4.0, "numberReady": "3"})
    workload = parse_workload(DS, obj)
    assert (workload.desired_replicas, workload.status.ready_replicas) == (4, 3)


@pytest.mark.parametrize("kind", [STS, DS])
@pytest.mark.parametrize("part", ["metadata", "spec", "status"])
@pytest.mark.parametrize("value", ["text", 7, True, None, ["a"]], ids=repr)
def test_a_part_of_the_wrong_type_reads_as_empty(kind: WorkloadKind, part: str, value: Any) -> None:
    obj = sts() if kind is STS else ds()
    obj[part] = value
    workload = parse_workload(kind, obj)
    assert isinstance(workload, Deployment)
    if part == "metadata":
        assert (workload.namespace, workload.name, workload.uid) == ("", "", "")
        assert workload.annotations == {} and workload.created_at is None
    elif part == "spec":
        assert workload.template == {} and workload.version == "unknown"
        assert (workload.update_strategy, workload.partition) == ("", None)
        assert workload.desired_replicas == (1 if kind is STS else 4)
    else:
        assert workload.status.ready_replicas == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("annotations", ["a", "b"]),
        ("annotations", "team=payments"),
        ("creationTimestamp", 1764216000),
        ("creationTimestamp", "yesterday"),
        ("name", 12345),
        ("resourceVersion", {"v": 1}),
    ],
)
def test_metadata_fields_of_the_wrong_type_never_raise(field: str, value: Any) -> None:
    obj = sts()
    obj["metadata"][field] = value
    workload = parse_workload(STS, obj)
    if field == "annotations":
        assert workload.annotations == {}
    elif field == "creationTimestamp":
        assert workload.created_at is None
    elif field == "name":
        assert workload.name == "12345"
    else:
        assert isinstance(workload.resource_version, str)


def test_annotations_of_other_types_are_read_as_text() -> None:
    obj = sts(annotations={"replicas": 3, "enabled": True})
    assert dict(parse_workload(STS, obj).annotations) == {"replicas": "3", "enabled": "True"}


def test_long_texts_are_bounded() -> None:
    obj = sts()
    obj["metadata"] |= {"name": "n" * 10_000, "namespace": "s" * 10_000, "uid": "u" * 10_000}
    obj["spec"]["podManagementPolicy"] = "P" * 10_000
    workload = parse_workload(STS, obj)
    assert len(workload.name) == 253
    assert len(workload.namespace) == 63
    assert len(workload.uid) == 64
    assert len(workload.pod_management) == 40


@pytest.mark.parametrize("value", [True, "10", 2.5, None, [10]], ids=repr)
def test_a_revision_history_limit_that_is_no_whole_number_is_not_set(value: Any) -> None:
    obj = sts()
    obj["spec"]["revisionHistoryLimit"] = value
    assert parse_workload(STS, obj).revision_history_limit is None


@pytest.mark.parametrize(
    "tpl",
    [
        {"spec": "x"},
        {"metadata": "x"},
        {"metadata": {"labels": "app=orders-db"}},
        {"spec": {"containers": "orders-db"}},
        {"spec": {"containers": [1, None]}},
    ],
    ids=repr,
)
def test_a_pod_template_of_the_wrong_shape_never_raises(tpl: JsonDict) -> None:
    # parse_workload reads every other part of the JSON defensively; the pod template it hands
    # to version_of/containers_of unchecked.
    obj = sts()
    obj["spec"]["template"] = tpl
    workload = parse_workload(STS, obj)
    assert isinstance(workload.version, str)


# --- the history ---------------------------------------------------------------------------


def listed(kind: WorkloadKind, numbers: tuple[int, ...]) -> list[JsonDict]:
    tpls = templates(kind)
    return [revision_json(kind, n, tpls[n], change_cause=f"deploy {n}") for n in numbers]


@pytest.mark.parametrize("kind", [STS, DS])
def test_the_history_is_newest_first_with_the_current_one_by_its_template(
    kind: WorkloadKind,
) -> None:
    tpls = templates(kind)
    obj = workload_json(kind, tpls[2], update_revision=None)
    history = parse_workload_history(kind, obj, listed(kind, (2, 3, 1)))
    assert [r.number for r in history.revisions] == [3, 2, 1]
    assert [r.current for r in history.revisions] == [False, True, False]
    assert history.current is not None and history.current.replicaset == revision_name(kind, 2)
    assert history.deployment.revision == 2
    assert history.deployment.kind is kind
    assert [r.version for r in history.revisions] == ["1.2", "1.1", "1.0"]


def test_a_revision_is_read_with_what_its_controller_revision_says() -> None:
    tpls = templates(STS)
    history = parse_workload_history(STS, workload_json(STS, tpls[3]), listed(STS, (1, 2, 3)))
    first = history.revision(1)
    assert first is not None
    assert first.replicaset == "orders-db-5d8c7b9f6d"
    assert first.change_cause == "deploy 1"
    assert first.created_at == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert first.template == tpls[1]  # what it restores, without the $patch directive
    assert "$patch" not in first.template
    assert (first.replicas, first.ready_replicas) == (0, 0)


def test_the_newest_matching_revision_is_the_current_one() -> None:
    # Rolled back to 1.0: the controller renumbered its revision to 4, the old 1 is gone; an
    # older duplicate of the same template may linger as revision 1 too.
    tpls = templates(DS)
    crs = [
        revision_json(DS, 1, tpls[1], name="log-shipper-old"),
        revision_json(DS, 2, tpls[2]),
        revision_json(DS, 4, tpls[1]),
    ]
    history = parse_workload_history(DS, workload_json(DS, tpls[1]), crs)
    assert [(r.number, r.current) for r in history.revisions] == [(4, True), (2, False), (1, False)]
    assert history.deployment.revision == 4


def test_a_statefulset_matching_none_is_at_its_update_revision() -> None:
    obj = workload_json(STS, pod_template("1.3"), update_revision=3)
    history = parse_workload_history(STS, obj, listed(STS, (1, 2, 3)))
    assert history.current is not None and history.current.number == 3
    assert history.deployment.revision == 3


def test_a_daemonset_matching_none_has_no_current_revision() -> None:
    obj = workload_json(DS, pod_template("1.3", app="log-shipper"))
    history = parse_workload_history(DS, obj, listed(DS, (1, 2, 3)))
    assert history.current is None
    assert history.deployment.revision is None


def test_others_revisions_are_left_out_of_the_history_but_kept_as_listed() -> None:
    tpls = templates(STS)
    theirs = stranger_revision(STS)
    history = parse_workload_history(
        STS, workload_json(STS, tpls[3]), [*listed(STS, (2, 3)), theirs]
    )
    assert [r.number for r in history.revisions] == [3, 2]
    assert theirs in history.owned_json  # the plan re-reads the list as listed


def test_what_is_not_an_object_in_the_list_is_left_out() -> None:
    tpls = templates(STS)
    items: list[Any] = [None, "orders-db-x", 7, [], *listed(STS, (2, 3))]
    history = parse_workload_history(STS, workload_json(STS, tpls[3]), items)
    assert [r.number for r in history.revisions] == [3, 2]
    assert all(isinstance(item, dict) for item in history.owned_json)


def test_a_malformed_revision_of_another_workload_is_ignored() -> None:
    theirs = stranger_revision(STS)
    theirs["revision"] = "nine"
    theirs["data"] = {"spec": {"replicas": 100}}
    history = parse_workload_history(
        STS, workload_json(STS, templates(STS)[3]), [*listed(STS, (2, 3)), theirs]
    )
    assert [r.number for r in history.revisions] == [3, 2]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"revision": "two"},
            'ControllerRevision "orders-db-6b7f9c8d5e": its revision "two" is not a whole number',
        ),
        (
            {"revision": -1},
            'ControllerRevision "orders-db-6b7f9c8d5e": its revision -1 is out of range',
        ),
        (
            {"data": {"spec": {"replicas": 0, "template": {"$patch": "replace"}}}},
            'ControllerRevision "orders-db-6b7f9c8d5e": its data\'s spec holds "replicas"',
        ),
        (
            {"data": "{}"},
            'ControllerRevision "orders-db-6b7f9c8d5e": its data is a string, not a JSON object',
        ),
    ],
)
def test_a_malformed_revision_of_its_own_refuses_the_history(change: JsonDict, said: str) -> None:
    ours = listed(STS, (2, 3))
    ours[0] |= change
    with pytest.raises(InvalidControllerRevision) as refused:
        parse_workload_history(STS, workload_json(STS, templates(STS)[3]), ours)
    assert str(refused.value).startswith(said)
    assert isinstance(refused.value, RollbackRefused)


@pytest.mark.parametrize(
    "tpl",
    [
        {"spec": {"containers": "orders-db"}},
        {"spec": {"containers": [1]}},
        {"metadata": "x", "spec": {"containers": []}},
        {"metadata": {"labels": ["a"]}, "spec": {"containers": []}},
    ],
    ids=repr,
)
def test_a_revision_whose_template_is_of_the_wrong_shape_reads_without_crashing(
    tpl: JsonDict,
) -> None:
    # ControllerRevision.data is a RawExtension: the API server stores any JSON there. Data of
    # the controller's outer shape holding a template no pod could have never crashes the read:
    # its parts of the wrong shape read as absent (no version, no containers), and sending it
    # back is the API server's to refuse.
    ours = listed(STS, (2, 3))
    ours[0]["data"] = {"spec": {"template": {"$patch": "replace", **copy.deepcopy(tpl)}}}
    history = parse_workload_history(STS, workload_json(STS, templates(STS)[3]), ours)
    odd = next(r for r in history.revisions if r.number == 2)
    assert odd.version == "unknown" and odd.containers == ()


def test_a_workload_without_uid_has_no_history() -> None:
    obj = workload_json(STS, templates(STS)[3])
    del obj["metadata"]["uid"]
    with pytest.raises(InvalidControllerRevision, match="the workload has no uid"):
        parse_workload_history(STS, obj, listed(STS, (2, 3)))


def test_an_empty_history_has_no_revisions() -> None:
    history = parse_workload_history(DS, workload_json(DS, templates(DS)[3]), [])
    assert history.revisions == () and history.current is None
    assert history.deployment.name == NAMES[DS]
