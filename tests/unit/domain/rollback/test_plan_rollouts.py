"""An Argo Rollout through the bot's one planning entry: `plan_rollback` (the plugin's undo with
the bot's precondition and record) and `plan_abort` (the plugin's status patch), over the
History the kube adapter builds (`parse_workload_history`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.adapters.kube.parsing import parse_workload_history
from bot.domain.errors import RollbackRefused
from bot.domain.rollback.gitops import managed_by
from bot.domain.rollback.models import (
    BOT_ANNOTATION_PREFIX,
    CHANGE_CAUSE_ANNOTATION,
    History,
    RunInfo,
    WorkloadKind,
)
from bot.domain.rollback.pickup import pickup
from bot.domain.rollback.planning import RollbackCause, plan_abort, plan_rollback
from bot.domain.rollback.progress import Phase
from bot.domain.rollback.workload_progress import abort_progress_of, progress_of
from tests.unit.domain.rollback.test_argo_rollouts import aborted, healthy, history_rss, rollout

ROLLOUT = WorkloadKind.ROLLOUT
CAUSE = RollbackCause("@alice", "Slack", "errors on the canary", datetime(2026, 12, 2, tzinfo=UTC))


def history(obj: dict[str, object]) -> History:
    return parse_workload_history(ROLLOUT, obj, history_rss())


def test_the_history_is_the_rollouts_replicasets_with_the_current_one_by_pod_hash() -> None:
    h = history(rollout())
    assert h.deployment.kind is ROLLOUT and h.deployment.revision == 4
    assert [(r.number, r.version, r.current) for r in h.revisions] == [
        (4, "2.4.0", True),
        (3, "2.3.0", False),
        (2, "2.2.0", False),
        (1, "2.1.0", False),
    ]
    assert h.deployment.update_strategy == "canary"


def test_an_undo_is_the_plugins_json_patch_behind_a_precondition_with_the_bots_record() -> None:
    obj = rollout()
    obj["metadata"]["annotations"][f"{BOT_ANNOTATION_PREFIX}reason"] = "an older rollback's"
    plan = plan_rollback(history(obj), 2, CAUSE)
    assert plan.action == "patch" and plan.kind is ROLLOUT and plan.target.version == "2.2.0"
    ops = list(plan.patch)
    assert ops[0] == {"op": "replace", "path": "/metadata/resourceVersion", "value": "8812"}
    assert ops[1]["op"] == "replace" and ops[1]["path"] == "/spec/template"
    assert "rollouts-pod-template-hash" not in ops[1]["value"]["metadata"]["labels"]
    assert ops[2]["op"] == "add" and ops[2]["path"] == "/metadata/annotations"
    annotations = ops[2]["value"]
    assert annotations[CHANGE_CAUSE_ANNOTATION] == (
        "rolled back to revision 2 (2.2.0) by @alice via Slack: errors on the canary"
    )
    assert annotations[f"{BOT_ANNOTATION_PREFIX}reason"] == "errors on the canary"
    assert annotations["rollout.argoproj.io/revision"] == "4"  # the rest kept
    assert plan.body == plan.patch and plan.merge_patch is None and not plan.abort


def test_an_undo_without_a_cause_sends_the_plugins_patch_alone() -> None:
    plan = plan_rollback(history(rollout()), None, None)
    assert plan.target.version == "2.3.0"  # the previous revision, as the plugin picks it
    assert [op["path"] for op in plan.patch] == ["/metadata/resourceVersion", "/spec/template"]


def test_an_undo_to_the_template_running_is_skipped_and_a_missing_revision_refused() -> None:
    assert plan_rollback(history(rollout()), 4, CAUSE).action == "skip"
    with pytest.raises(RollbackRefused, match="unable to find specified revision 9"):
        plan_rollback(history(rollout()), 9, CAUSE)


def test_an_abort_is_the_plugins_status_patch_towards_the_stable_replicaset() -> None:
    plan = plan_abort(history(rollout()))
    assert plan.abort and plan.subresource == "status"
    assert plan.body == {"status": {"abort": True}}
    assert plan.target.version == "2.3.0" and plan.from_version == "2.4.0"
    assert plan.warnings and "traffic back to stable 2.3.0 at once" in plan.warnings[0]
    assert plan.snapshot.target_replicaset == plan.target.replicaset


def test_nothing_to_abort_is_refused_in_a_sentence() -> None:
    with pytest.raises(RollbackRefused, match="nothing to abort"):
        plan_abort(history(healthy("2.3.0")))
    with pytest.raises(RollbackRefused, match="already aborted"):
        plan_abort(history(aborted()))


def test_only_a_rollout_can_be_aborted() -> None:
    h = history(rollout())
    other = History(
        deployment=h.deployment.__class__(
            **{**h.deployment.__dict__, "kind": WorkloadKind.STATEFULSET}
        ),
        revisions=h.revisions,
    )
    with pytest.raises(RollbackRefused, match="is not an Argo Rollout"):
        plan_abort(other)


def test_progress_of_a_rollout_and_of_its_abort() -> None:
    paused = history(rollout()).deployment
    assert progress_of(paused).phase is Phase.UPDATING
    assert progress_of(history(healthy("2.3.0")).deployment).phase is Phase.COMPLETE
    done = history(aborted(updatedReplicas=0, availableReplicas=5)).deployment
    assert progress_of(done).phase is Phase.FAILED  # Degraded, as the plugin's status says
    assert abort_progress_of(done).phase is Phase.COMPLETE


def run_of(plan_target: str, *, abort: bool) -> RunInfo:
    return RunInfo(
        service="payments",
        actor="U1",
        from_version="2.4.0",
        to_version="2.3.0",
        to_revision=3,
        started_at=datetime(2026, 12, 2, tzinfo=UTC),
        deployment="payments-canary",
        from_revision=4,
        target_replicaset=plan_target,
        kind=ROLLOUT,
        abort=abort,
    )


def test_a_picked_up_abort_is_followed_once_the_status_says_aborted() -> None:
    stable = history(rollout()).revisions[1].replicaset
    assert pickup(run_of(stable, abort=True), history(rollout())).action == "not_sent"
    assert pickup(run_of(stable, abort=True), history(aborted())).action == "follow"


def test_a_picked_up_undo_of_a_rollout_is_compared_as_the_plugin_compares() -> None:
    older = history(rollout()).revisions[2]  # 2.2.0
    undone = history(rollout("2.2.0", current="2.2.0", revision="5"))
    assert pickup(run_of(older.replicaset, abort=False), undone).action == "follow"


def test_argo_cds_tracking_annotation_of_a_rollout_names_its_application() -> None:
    tracking = {"argocd.argoproj.io/tracking-id": "shop-app:argoproj.io/Rollout:shop/payments"}
    found = managed_by("shop", "payments", {}, tracking, "Rollout", "argoproj.io")
    assert found is not None and found.name == "shop-app"
    assert managed_by("shop", "payments", {}, tracking, "Deployment", "apps") is None
