"""A StatefulSet's or DaemonSet's history from its ControllerRevisions, as kubectl reads it, and
the hostile ones refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.controller_revisions import (
    MAX_REVISIONS,
    InvalidControllerRevision,
    as_revision,
    check_revision_data,
    controller_of,
    current_revision,
    json_equal,
    owned_history,
    parse_controller_revision,
    restore_patch,
    template_matches,
)
from bot.domain.rollback.models import WorkloadKind

UID = "0b7e6c1e-3f0a-4d57-9a51-5a2f1c7d0e11"
OTHER_UID = "5d1f0c8a-8c55-4b33-a1a6-6a0f5b2e9c42"


def template(version: str, *, sidecar: bool = False) -> dict[str, Any]:
    """A pod template as the API server returns it inside a StatefulSet (defaults filled in)."""
    containers: list[dict[str, Any]] = [
        {
            "name": "db",
            "image": f"registry.example.com/shop/db:{version}",
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 5432, "name": "pg", "protocol": "TCP"}],
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
        }
    ]
    if sidecar:
        containers.append({"name": "exporter", "image": "registry.example.com/pg-exporter:0.15"})
    return {
        "metadata": {
            "creationTimestamp": None,
            "labels": {"app": "db", "app.kubernetes.io/version": version},
        },
        "spec": {
            "containers": containers,
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        },
    }


def statefulset(current: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": "db",
            "namespace": "shop",
            "uid": UID,
            "resourceVersion": "48211",
            "generation": 4,
            "creationTimestamp": "2026-11-20T09:00:00Z",
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "db"}},
            "serviceName": "db",
            "template": current,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        },
        "status": {"observedGeneration": 4, "replicas": 3, **status},
    }


def revision(
    number: Any,
    version: str = "1.0",
    *,
    name: str | None = None,
    owner: str | None = UID,
    data: Any = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ControllerRevision as a List of them returns it (no kind in the items)."""
    metadata: dict[str, Any] = {
        "name": name or f"db-{version.replace('.', '')}f7c9",
        "namespace": "shop",
        "uid": f"cr-{version}",
        "resourceVersion": "1200",
        "creationTimestamp": "2026-11-21T10:00:00Z",
        "labels": {"app": "db", "controller.kubernetes.io/hash": "f7c9"},
    }
    if annotations is not None:
        metadata["annotations"] = annotations
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": "db",
                "uid": owner,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "metadata": metadata,
        "data": restore_patch(template(version)) if data is None else data,
        "revision": number,
    }


def replaced(body: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"$patch": "replace", **body}}}


# --- parsing ---------------------------------------------------------------------------------


def test_a_revision_is_parsed_with_the_template_it_restores() -> None:
    parsed = parse_controller_revision(
        revision(2, "1.1", annotations={"kubernetes.io/change-cause": "deploy 1.1"})
    )
    assert parsed.name == "db-11f7c9"
    assert parsed.namespace == "shop"
    assert parsed.number == 2
    assert parsed.created_at == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert (parsed.owner_uid, parsed.owner_kind, parsed.owner_name) == (UID, "StatefulSet", "db")
    assert parsed.change_cause == "deploy 1.1"
    assert parsed.template == template("1.1")
    assert "$patch" not in parsed.template
    assert parsed.data == {"spec": {"template": {**template("1.1"), "$patch": "replace"}}}
    assert parsed.version == "1.1"
    assert [c.name for c in parsed.containers] == ["db"]


def test_the_data_as_the_controller_writes_it_is_what_getpatch_makes_of_the_template() -> None:
    assert restore_patch(template("1.0")) == {
        "spec": {"template": {**template("1.0"), "$patch": "replace"}}
    }


def test_the_parsed_revision_does_not_share_the_input() -> None:
    raw = revision(1)
    parsed = parse_controller_revision(raw)
    raw["data"]["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    assert parsed.template["spec"]["containers"][0]["image"].endswith("db:1.0")


@pytest.mark.parametrize(
    ("number", "said"),
    [
        ("3", 'revision "3" is not a whole number'),
        (3.0, "revision 3.0 is not a whole number"),
        (True, "revision True is not a whole number"),
        (None, "revision None is not a whole number"),
        (-1, "revision -1 is out of range"),
        (2**63, "revision 9223372036854775808 is out of range"),
        (10**40, "revision a huge number is out of range"),
    ],
)
def test_a_revision_that_is_not_an_int64_is_refused(number: Any, said: str) -> None:
    with pytest.raises(InvalidControllerRevision) as refused:
        parse_controller_revision(revision(number))
    assert 'ControllerRevision "db-10f7c9"' in str(refused.value)
    assert said in str(refused.value)


def test_the_largest_int64_revision_is_kept() -> None:
    assert parse_controller_revision(revision(2**63 - 1)).number == 2**63 - 1


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ([], "its data is a list, not a JSON object"),
        ("{}", "its data is a string, not a JSON object"),
        (7, "its data is a number, not a JSON object"),
    ],
)
def test_data_that_is_not_an_object_is_refused(data: Any, said: str) -> None:
    with pytest.raises(InvalidControllerRevision, match=said):
        parse_controller_revision(revision(1, data=data))


def test_missing_data_is_refused() -> None:
    raw = revision(1)
    del raw["data"]
    with pytest.raises(InvalidControllerRevision, match="its data is null"):
        parse_controller_revision(raw)


def test_a_revision_without_controller_owner_is_refused() -> None:
    with pytest.raises(InvalidControllerRevision, match="has no controller owner reference"):
        parse_controller_revision(revision(1, owner=None))
    not_controller = revision(1)
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    with pytest.raises(InvalidControllerRevision, match="has no controller owner reference"):
        parse_controller_revision(not_controller)


@pytest.mark.parametrize("obj", [None, [], "db-1", {"revision": 1}, {"metadata": {"name": ""}}])
def test_what_is_not_a_controller_revision_is_refused(obj: Any) -> None:
    with pytest.raises(InvalidControllerRevision):
        parse_controller_revision(obj)


def test_a_refusal_is_a_rollback_refused() -> None:
    assert issubclass(InvalidControllerRevision, RollbackRefused)


# --- the shape of the data: $patch games ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            {"spec": {"replicas": 0, "template": {"$patch": "replace"}}},
            'spec holds "replicas"',
        ),
        (
            {"metadata": {"labels": {"x": "y"}}, **replaced(template("1.0"))},
            'holds "metadata"',
        ),
        ({"spec": None}, "spec holds no template"),
        ({"spec": {"template": None}}, "spec.template is null"),
        ({}, "holds no spec"),
        (
            {"spec": {"$patch": "replace", "template": {"$patch": "replace"}}},
            'spec holds "\\$patch"',
        ),
        ({"spec": {"template": template("1.0")}}, 'says no \\$patch, not \\$patch "replace"'),
        (
            {"spec": {"template": {**template("1.0"), "$patch": "delete"}}},
            'says \\$patch "delete"',
        ),
        (
            {"spec": {"template": {**template("1.0"), "$patch": "merge"}}},
            'says \\$patch "merge"',
        ),
        (
            {"spec": {"template": {**template("1.0"), "$patch": ["replace"]}}},
            "says \\$patch",
        ),
    ],
)
def test_data_of_another_shape_than_the_controllers_is_refused(data: Any, said: str) -> None:
    with pytest.raises(InvalidControllerRevision, match=said):
        parse_controller_revision(revision(1, data=data))


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("spec", "$retainKeys"),
        ("spec", "$setElementOrder/containers"),
        ("container", "$deleteFromPrimitiveList/args"),
        ("container", "$patch"),
        ("metadata", "$patch"),
    ],
)
def test_a_directive_inside_the_template_is_refused(where: str, key: str) -> None:
    body = template("1.0")
    target = {
        "spec": body["spec"],
        "container": body["spec"]["containers"][0],
        "metadata": body["metadata"],
    }[where]
    target[key] = "delete" if key == "$patch" else ["image"]
    with pytest.raises(InvalidControllerRevision, match="holds the patch directive"):
        parse_controller_revision(revision(1, data=replaced(body)))


def test_a_directive_in_a_list_element_is_refused_with_its_path() -> None:
    body = template("1.0")
    body["spec"]["containers"].append({"name": "db", "$patch": "delete"})
    with pytest.raises(InvalidControllerRevision) as refused:
        check_revision_data(replaced(body))
    assert '"$patch" at spec.template.spec.containers[1]' in str(refused.value)


def test_data_nested_beyond_any_pod_template_is_refused() -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(200):
        cursor["a"] = {}
        cursor = cursor["a"]
    with pytest.raises(InvalidControllerRevision, match="too large or too deeply nested"):
        check_revision_data(replaced({"metadata": deep}))


def test_data_too_large_is_refused() -> None:
    body = template("1.0")
    body["metadata"]["annotations"] = {f"k{i}": "x" * 1000 for i in range(5000)}
    with pytest.raises(InvalidControllerRevision, match="too large"):
        check_revision_data(replaced(body))


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (float("nan"), "nan, which is not a JSON number"),
        (float("inf"), "inf, which is not a JSON number"),
        (10**30, "a huge number, beyond what the API stores"),
    ],
)
def test_numbers_json_or_int64_cannot_hold_are_refused(value: Any, said: str) -> None:
    body = template("1.0")
    body["spec"]["terminationGracePeriodSeconds"] = value
    with pytest.raises(InvalidControllerRevision, match=said):
        check_revision_data(replaced(body))


def test_check_revision_data_returns_the_template_without_the_directive() -> None:
    assert check_revision_data(replaced(template("1.0"))) == template("1.0")


# --- the history ---------------------------------------------------------------------------


def test_history_keeps_the_workloads_own_revisions_sorted_by_revision() -> None:
    listed = [
        revision(3, "1.2"),
        revision(1, "1.0"),
        revision(9, "9.9", owner=OTHER_UID),
        revision(2, "1.1"),
        revision(4, "4.0", owner=None),
    ]
    history = owned_history(statefulset(template("1.2")), listed)
    assert [(r.number, r.version) for r in history] == [(1, "1.0"), (2, "1.1"), (3, "1.2")]


def test_history_takes_a_list_response_too() -> None:
    listed = {"kind": "ControllerRevisionList", "items": [revision(2, "1.1"), revision(1, "1.0")]}
    assert [r.number for r in owned_history(statefulset(template("1.1")), listed)] == [1, 2]
    assert owned_history(statefulset(template("1.1")), {"items": None}) == []


def test_only_the_first_controller_reference_counts_as_metav1_is_controlled_by() -> None:
    stolen = revision(5, "6.6")
    stolen["metadata"]["ownerReferences"] = [
        {"kind": "StatefulSet", "name": "other", "uid": OTHER_UID, "controller": True},
        {"kind": "StatefulSet", "name": "db", "uid": UID, "controller": True},
    ]
    merely_owned = revision(6, "7.7")
    merely_owned["metadata"]["ownerReferences"][0]["controller"] = None
    history = owned_history(statefulset(template("1.0")), [revision(1), stolen, merely_owned])
    assert [r.number for r in history] == [1]


def test_controller_of_ignores_malformed_references() -> None:
    obj: dict[str, Any] = {"metadata": {"ownerReferences": ["x", {"controller": "true"}, None]}}
    assert controller_of(obj) is None
    obj["metadata"]["ownerReferences"].append({"controller": True, "uid": ""})
    assert controller_of(obj) is None
    assert controller_of({"metadata": {"ownerReferences": {"uid": UID}}}) is None


def test_others_malformed_revisions_and_non_objects_are_left_out() -> None:
    listed = [revision("x", owner=OTHER_UID), "garbage", None, 3, revision(1)]
    assert [r.number for r in owned_history(statefulset(template("1.0")), listed)] == [1]


def test_a_malformed_revision_of_the_workload_refuses_the_history() -> None:
    with pytest.raises(InvalidControllerRevision, match="not a whole number"):
        owned_history(statefulset(template("1.0")), [revision(1), revision("2", "1.1")])


def test_a_workload_without_uid_has_no_history() -> None:
    workload = statefulset(template("1.0"))
    del workload["metadata"]["uid"]
    with pytest.raises(InvalidControllerRevision, match="has no uid"):
        owned_history(workload, [revision(1)])


def test_a_history_too_long_to_read_is_refused() -> None:
    listed = [{"metadata": {"name": f"x{i}"}} for i in range(MAX_REVISIONS + 1)]
    with pytest.raises(InvalidControllerRevision, match="more than 10000 ControllerRevisions"):
        owned_history(statefulset(template("1.0")), listed)


# --- matching, as kubectl's statefulsetMatch / daemonSetMatch -------------------------------


def test_the_current_template_matches_its_revision() -> None:
    workload = statefulset(template("1.2"))
    assert template_matches(workload, parse_controller_revision(revision(3, "1.2")))
    assert not template_matches(workload, parse_controller_revision(revision(2, "1.1")))


def test_matching_is_strict_json_as_kubectls_byte_comparison() -> None:
    without_null = template("1.2")
    del without_null["metadata"]["creationTimestamp"]  # null and absent write different bytes
    stored = parse_controller_revision(revision(3, "1.2"))
    assert not template_matches(statefulset(without_null), stored)
    assert json_equal({"a": 1}, {"a": 1.0})  # Go writes both as 1
    assert not json_equal({"a": True}, {"a": 1})
    assert not json_equal({"a": None}, {})
    assert not json_equal({"a": "1"}, {"a": 1})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal({"a": [1]}, {"a": [1, 1]})
    assert json_equal({"a": [{"b": None}]}, {"a": [{"b": None}]})


def test_the_current_revision_is_the_newest_matching_one() -> None:
    history = owned_history(
        statefulset(template("1.0")),
        [revision(1, "1.0"), revision(2, "1.1"), revision(3, "1.0", name="db-10dup")],
    )
    found = current_revision(statefulset(template("1.0")), history)
    assert found is not None and found.number == 3
    assert current_revision(statefulset(template("2.0")), history) is None


def test_a_statefulset_not_matching_any_falls_back_to_its_update_revision() -> None:
    history = owned_history(statefulset(template("1.0")), [revision(1, "1.0"), revision(2, "1.1")])
    workload = statefulset(template("2.0"), updateRevision="db-11f7c9")
    found = current_revision(workload, history)
    assert found is not None and found.number == 2


def test_a_workload_without_a_template_cannot_be_matched() -> None:
    workload = statefulset(template("1.0"))
    del workload["spec"]["template"]
    with pytest.raises(InvalidControllerRevision, match="has no pod template"):
        template_matches(workload, parse_controller_revision(revision(1)))


def test_as_revision_gives_the_views_a_revision() -> None:
    shown = as_revision(parse_controller_revision(revision(2, "1.1")), current=True)
    assert (shown.number, shown.replicaset, shown.version, shown.current) == (
        2,
        "db-11f7c9",
        "1.1",
        True,
    )


def test_workload_kinds_name_themselves_as_kubectl_does() -> None:
    assert WorkloadKind("StatefulSet") is WorkloadKind.STATEFULSET
    assert WorkloadKind.STATEFULSET.noun == "statefulset"
    assert WorkloadKind.DAEMONSET.noun == "daemon set"
    assert WorkloadKind.DEPLOYMENT.noun == "deployment"
    assert WorkloadKind.DAEMONSET.resource == "daemonsets.apps"
    assert WorkloadKind.STATEFULSET.resource == "statefulsets.apps"
