"""The rollback decision, case by case, as kubectl's rollback.go makes it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.domain.errors import RollbackRefused
from bot.domain.rollback.models import History
from bot.domain.rollback.planning import (
    RollbackCause,
    equal_ignore_hash,
    plan_rollback,
    rolled_back_from,
)
from tests.builders import deployment, replicaset, template

CAUSE = RollbackCause(
    actor="alice", via="Slack", reason="5xx spike", at=datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
)


def history(*, current: int = 3, paused: bool = False, extra_annotations: bool = True) -> History:
    versions = {1: "2.12.0", 2: "2.13.0", 3: "2.14.0"}
    rss = [
        replicaset(
            template(v, env={"FEATURE": "on" if n == 3 else "off"}),
            revision=n,
            pod_hash=f"h{n}",
            created=f"2026-11-2{n}T10:00:00Z",
            annotations={"kubernetes.io/change-cause": f"deploy {v}", "team": f"t{n}"}
            if extra_annotations
            else None,
            replicas=3 if n == current else 0,
        )
        for n, v in versions.items()
    ]
    dep = deployment(
        template(versions[current], env={"FEATURE": "on" if current == 3 else "off"}),
        revision=current,
        paused=paused,
        annotations={
            "kubernetes.io/change-cause": f"deploy {versions[current]}",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            "deployment.kubernetes.io/revision-history": "1",
        },
    )
    return parse_history(dep, rss)


def test_default_target_is_the_previous_revision() -> None:
    plan = plan_rollback(history(), None)
    assert plan.action == "patch"
    assert (plan.from_revision, plan.target.number) == (3, 2)
    assert (plan.from_version, plan.target.version) == ("2.14.0", "2.13.0")


def test_patch_is_kubectls_two_operations_behind_a_resource_version_precondition() -> None:
    plan = plan_rollback(history(), 1)
    ops = [(op["op"], op["path"]) for op in plan.patch]
    assert ops == [
        ("replace", "/metadata/resourceVersion"),
        ("replace", "/spec/template"),
        ("replace", "/metadata/annotations"),
    ]
    assert plan.patch[0]["value"] == "1042"
    restored = plan.patch[1]["value"]
    assert "pod-template-hash" not in restored["metadata"]["labels"]
    assert restored["spec"]["containers"][0]["image"].endswith(":2.12.0")


def test_annotations_keep_the_skipped_ones_from_the_deployment_and_copy_the_rest() -> None:
    plan = plan_rollback(history(), 2)
    annotations = plan.patch[2]["value"]
    # Skipped keys come from the Deployment, never from the ReplicaSet.
    assert annotations["deployment.kubernetes.io/revision"] == "3"
    assert annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert annotations["kubectl.kubernetes.io/last-applied-configuration"] == "{}"
    assert "deployment.kubernetes.io/desired-replicas" not in annotations
    # The rest is the target ReplicaSet's.
    assert annotations["kubernetes.io/change-cause"] == "deploy 2.13.0"
    assert annotations["team"] == "t2"


def test_the_bot_records_who_and_why_in_change_cause_and_its_own_annotations() -> None:
    annotations = plan_rollback(history(), 2, CAUSE).patch[2]["value"]
    assert annotations["kubernetes.io/change-cause"] == (
        "rolled back to revision 2 (2.13.0) by alice via Slack: 5xx spike"
    )
    assert annotations["rollback-bot.io/rolled-back-by"] == "alice"
    assert annotations["rollback-bot.io/from-revision"] == "3"
    assert annotations["rollback-bot.io/reason"] == "5xx spike"
    assert annotations["team"] == "t2"


def test_the_person_is_kept_by_their_slack_id_for_mentions_and_by_name_in_the_cause() -> None:
    cause = dataclasses.replace(CAUSE, actor="@alice", actor_id="U0ALICE01")
    annotations = plan_rollback(history(), 2, cause).patch[2]["value"]
    assert "by @alice via Slack" in annotations["kubernetes.io/change-cause"]
    assert annotations["rollback-bot.io/rolled-back-by-id"] == "U0ALICE01"
    # Known bad afterwards: named by the id, which a message turns into a mention.
    after = parse_history(
        deployment(template("2.13.0"), revision=4, annotations=annotations),
        [
            replicaset(
                template("2.13.0"), revision=4, pod_hash="a", created="2026-11-20T10:00:00Z"
            ),
            replicaset(
                template("2.14.0"), revision=3, pod_hash="b", created="2026-11-21T10:00:00Z"
            ),
        ],
    )
    assert rolled_back_from(after) == {"2.14.0": "U0ALICE01"}


def test_already_at_the_target_is_skipped_without_a_patch() -> None:
    plan = plan_rollback(history(), 3)
    assert plan.action == "skip"
    assert plan.patch == ()
    assert "already at revision 3" in plan.summary


def test_a_paused_deployment_is_refused() -> None:
    with pytest.raises(RollbackRefused, match="paused"):
        plan_rollback(history(paused=True), None)


def test_a_missing_revision_is_refused_with_the_ones_kept() -> None:
    with pytest.raises(RollbackRefused, match=r"unable to find revision 7 .*kept: 3, 2, 1"):
        plan_rollback(history(), 7)


@pytest.mark.parametrize("revision", [0, -1])
def test_non_positive_revisions_are_refused(revision: int) -> None:
    with pytest.raises(RollbackRefused, match="not valid"):
        plan_rollback(history(), revision)


def test_no_history_is_refused() -> None:
    dep = deployment(template("1.0.0"), revision=1)
    only = replicaset(template("1.0.0"), revision=1, pod_hash="a", created="2026-11-20T10:00:00Z")
    with pytest.raises(RollbackRefused, match="no rollout history found"):
        plan_rollback(parse_history(dep, [only]), None)


def test_changes_list_what_the_pod_template_loses_and_gains() -> None:
    changes = {c.path: (c.before, c.after) for c in plan_rollback(history(), 2).changes}
    assert changes["containers[checkout].image"] == (
        "registry.example.com/shop/checkout:2.14.0",
        "registry.example.com/shop/checkout:2.13.0",
    )
    assert changes["containers[checkout].env[FEATURE]"] == ("on", "off")
    assert changes["metadata.labels.app.kubernetes.io/version"] == ("2.14.0", "2.13.0")
    assert not any("pod-template-hash" in path for path in changes)


def test_equal_ignore_hash_ignores_only_the_hash_label() -> None:
    a = template("1.0.0", pod_hash="abc")
    assert equal_ignore_hash(a, template("1.0.0"))
    assert not equal_ignore_hash(a, template("1.0.1"))


def test_an_added_or_removed_env_var_is_named_without_its_value() -> None:
    from bot.domain.rollback.template_diff import diff_templates

    before = template("1", env={"A": "1", "B": "x"})
    after = template("1", env={"A": "1", "C": "y"})
    assert [str(c) for c in diff_templates(before, after)] == [
        "containers[checkout].env[B]: removed (values not shown)",
        "containers[checkout].env[C]: added (values not shown)",
    ]
