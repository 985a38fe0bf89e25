"""Argo Rollouts decisions, case by case: the history of a Rollout, the plugin's `undo` (which
revision, skip or patch, the JSON Patch it sends) and `abort` (the status merge patch), the
Rollout's state and its progress. The JSON is the API server's (as the sandbox serves it);
hostile variants are generated."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.errors import RollbackRefused
from bot.domain.rollback.argo_rollouts import (
    HASH_LABEL,
    JSON_PATCH,
    MAX_REPLICASETS,
    MERGE_PATCH,
    REVISION_ANNOTATION,
    RolloutAbortPlan,
    RolloutRefused,
    RolloutUndoPlan,
    abort_progress,
    choose_revision,
    parse_revision,
    plan_abort,
    plan_undo,
    rollout_history,
    rollout_phase,
    rollout_progress,
    rollout_state,
    template_derives,
)
from bot.domain.rollback.guards import Snapshot
from bot.domain.rollback.progress import Phase

JsonDict = dict[str, Any]
UID = "7a3c1f52-9b6e-4d1a-8f0e-2c5d9e8b1a40"
OTHER_UID = "1e9d2b7c-5a4f-4c3e-b8d1-0f6a7e2c9d53"
REGISTRY = "registry.example.com"
STEPS = [
    {"setWeight": 20},
    {"pause": {"duration": "30s"}},
    {"setWeight": 50},
    {"pause": {}},
]
HASHES = {"2.1.0": "5988fbd868", "2.2.0": "684ffddf5d", "2.3.0": "5f57d6db4d", "2.4.0": "7c9d4b8f6"}


def ro_template(version: str) -> JsonDict:
    """The Rollout's template as someone applied it: not defaulted (a CRD keeps it as sent)."""
    labels = {"app.kubernetes.io/name": "payments-canary", "app.kubernetes.io/version": version}
    return {
        "metadata": {"labels": labels, "annotations": {"team": "payments"}},
        "spec": {
            "containers": [
                {
                    "name": "payments",
                    "image": f"{REGISTRY}/shop/payments-canary:{version}",
                    "ports": [{"name": "http", "containerPort": 8080}],
                }
            ]
        },
    }


def rs_template(version: str) -> JsonDict:
    """The same template in its ReplicaSet: defaulted by the API server, plus the hash label."""
    template = ro_template(version)
    template["metadata"]["labels"][HASH_LABEL] = HASHES[version]
    template["metadata"]["creationTimestamp"] = None
    container = template["spec"]["containers"][0]
    container.update(
        imagePullPolicy="IfNotPresent",
        resources={},
        terminationMessagePath="/dev/termination-log",
        terminationMessagePolicy="File",
    )
    container["ports"][0]["protocol"] = "TCP"
    template["spec"].update(
        dnsPolicy="ClusterFirst",
        restartPolicy="Always",
        schedulerName="default-scheduler",
        securityContext={},
        terminationGracePeriodSeconds=30,
    )
    return template


def replicaset(
    version: str,
    revision: Any,
    *,
    owner: str = UID,
    replicas: int = 0,
    controller: bool = True,
    annotations: JsonDict | None = None,
) -> JsonDict:
    pod_hash = HASHES[version]
    notes: JsonDict = {
        "kubernetes.io/change-cause": f"deploy payments-canary {version}",
        "rollout.argoproj.io/desired-replicas": "5",
    }
    if revision is not None:
        notes[REVISION_ANNOTATION] = revision
    notes.update(annotations or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"payments-canary-{pod_hash}",
            "namespace": "shop",
            "labels": {"app.kubernetes.io/name": "payments-canary", HASH_LABEL: pod_hash},
            "annotations": notes,
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Rollout",
                    "name": "payments-canary",
                    "uid": owner,
                    "controller": controller,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "payments-canary"}},
            "template": rs_template(version),
        },
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
    }


def rollout(
    version: str = "2.4.0",
    *,
    revision: str | None = "4",
    current: str | None = None,
    stable: str = "2.3.0",
    phase: str | None = "Paused",
    message: str | None = "CanaryPauseStep",
    index: int | None = 1,
    generation: int = 4,
    observed: Any = "4",
    **status: Any,
) -> JsonDict:
    """payments-canary, mid-canary by default: 2.4.0 paused at step 1 of 4, stable 2.3.0."""
    body: JsonDict = {
        "currentPodHash": HASHES[current or version],
        "stableRS": HASHES[stable],
        "observedGeneration": observed,
        "replicas": 5,
        "updatedReplicas": 1,
        "readyReplicas": 5,
        "availableReplicas": 5,
    }
    if index is not None:
        body["currentStepIndex"] = index
    if phase is not None:
        body["phase"] = phase
    if message is not None:
        body["message"] = message
    if phase == "Paused":
        body["pauseConditions"] = [
            {"reason": "CanaryPauseStep", "startTime": "2026-12-01T10:00:00Z"}
        ]
        body["controllerPause"] = True
    body.update(status)
    annotations = {REVISION_ANNOTATION: revision} if revision is not None else {}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "payments-canary",
            "namespace": "shop",
            "uid": UID,
            "resourceVersion": "8812",
            "generation": generation,
            "annotations": annotations,
        },
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "payments-canary"}},
            "strategy": {"canary": {"steps": copy.deepcopy(STEPS)}},
            "template": ro_template(version),
        },
        "status": body,
    }


def history_rss() -> list[JsonDict]:
    """Revisions 1 to 4, listed as the API lists them (by name)."""
    rss = [
        replicaset("2.1.0", "1"),
        replicaset("2.2.0", "2"),
        replicaset("2.3.0", "3", replicas=4),
        replicaset("2.4.0", "4", replicas=1),
    ]
    return sorted(rss, key=lambda rs: rs["metadata"]["name"])


def aborted(**status: Any) -> JsonDict:
    fields: JsonDict = {
        "phase": "Degraded",
        "message": "RolloutAborted: Rollout aborted update to revision 4",
        "index": 0,
        "abort": True,
        "abortedAt": "2026-12-01T10:05:00Z",
        "updatedReplicas": 0,
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "RolloutAborted",
                "message": "Rollout aborted update to revision 4",
            }
        ],
    }
    fields.update(status)
    return rollout(**fields)


def healthy(version: str = "2.4.0", **status: Any) -> JsonDict:
    fields: JsonDict = {
        "stable": version,
        "phase": "Healthy",
        "message": None,
        "index": 4,
        "updatedReplicas": 5,
    }
    fields.update(status)
    return rollout(version, **fields)


# ---------------------------------------------------------------------- history


def test_history_lists_the_rollouts_replicasets_newest_first() -> None:
    history = rollout_history(rollout(), history_rss())
    assert [r.number for r in history.revisions] == [4, 3, 2, 1]
    assert [r.version for r in history.revisions] == ["2.4.0", "2.3.0", "2.2.0", "2.1.0"]
    newest = history.revisions[0]
    assert newest.replicaset == "payments-canary-7c9d4b8f6"
    assert newest.current and not any(r.current for r in history.revisions[1:])
    assert history.current is newest
    assert newest.change_cause == "deploy payments-canary 2.4.0"
    assert (newest.replicas, newest.ready_replicas) == (1, 1)
    assert newest.containers[0].image == f"{REGISTRY}/shop/payments-canary:2.4.0"
    assert newest.created_at is not None
    assert history.by_hash(HASHES["2.3.0"]) is history.revisions[1]
    assert history.by_hash("") is None
    assert history.skipped == ()
    assert (history.namespace, history.name, history.uid) == ("shop", "payments-canary", UID)


def test_history_reads_a_list_response_and_ignores_others_replicasets() -> None:
    items = [
        *history_rss(),
        replicaset("2.1.0", "9", owner=OTHER_UID),
        replicaset("2.2.0", "8", controller=False),  # an owner, not the controller
        "not an object",
        None,
    ]
    history = rollout_history(rollout(), {"kind": "ReplicaSetList", "items": items})
    assert [r.number for r in history.revisions] == [4, 3, 2, 1]


def test_a_replicaset_without_revision_annotation_is_revision_0_as_the_plugin_reads_it() -> None:
    history = rollout_history(rollout(), [replicaset("2.1.0", None), replicaset("2.4.0", "4")])
    assert [r.number for r in history.revisions] == [4, 0]


@pytest.mark.parametrize(
    ("annotation", "said"),
    [
        ("three", '"three"'),
        ("-3", '"-3"'),
        ("3.0", '"3.0"'),
        ("99999999999999999999", '"99999999999999999999"'),
        ("", '""'),
        (7, "not text"),
    ],
)
def test_a_revision_that_is_no_whole_number_is_skipped_with_a_reason(
    annotation: Any, said: str
) -> None:
    bad = replicaset("2.1.0", "1")
    bad["metadata"]["annotations"][REVISION_ANNOTATION] = annotation
    history = rollout_history(rollout(), [bad, replicaset("2.4.0", "4")])
    assert [r.number for r in history.revisions] == [4]
    [skipped] = history.skipped
    assert skipped.name == "payments-canary-5988fbd868"
    assert said in skipped.reason
    assert "leaves it out too" in skipped.reason


def test_revision_text_is_read_as_strconv_parseint_reads_it() -> None:
    assert parse_revision("+7") == 7
    assert parse_revision("007") == 7
    assert parse_revision("-1") == -1
    assert parse_revision("9223372036854775807") == 2**63 - 1
    for bad in ("9223372036854775808", " 7", "7 ", "0x7", "", "1e3", None, 7, True):
        assert parse_revision(bad) is None


@pytest.mark.parametrize(
    ("break_it", "reason"),
    [
        (lambda rs: rs["spec"].update(template="text"), "is not a JSON object"),
        (lambda rs: rs["spec"]["template"]["spec"].update(containers=[]), "no containers"),
        (lambda rs: rs["spec"]["template"].pop("spec"), "has no spec"),
        (
            lambda rs: rs["spec"]["template"]["metadata"]["labels"].update(tier=3),
            "labels are not all text",
        ),
        (
            lambda rs: rs["spec"]["template"]["spec"]["containers"][0].update(image=["x"]),
            "name or image is not text",
        ),
        (
            lambda rs: rs["spec"]["template"]["spec"].update(deep=_nested(80)),
            "too deeply nested",
        ),
        (lambda rs: rs["spec"]["template"]["spec"].update(n=float("nan")), "not a JSON number"),
        (lambda rs: rs["spec"]["template"]["spec"].update(n=2**70), "beyond what the API stores"),
    ],
)
def test_a_replicaset_whose_template_is_no_pod_template_is_skipped(
    break_it: Any, reason: str
) -> None:
    bad = replicaset("2.1.0", "1")
    break_it(bad)
    history = rollout_history(rollout(), [bad, replicaset("2.4.0", "4")])
    assert [r.number for r in history.revisions] == [4]
    assert reason in history.skipped[0].reason


def _nested(depth: int) -> JsonDict:
    value: JsonDict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_history_refuses_what_it_cannot_trust() -> None:
    no_uid = rollout()
    del no_uid["metadata"]["uid"]
    with pytest.raises(RolloutRefused, match="has no uid"):
        rollout_history(no_uid, history_rss())
    with pytest.raises(RolloutRefused, match="not a Rollout"):
        rollout_history({**rollout(), "kind": "Deployment"}, history_rss())
    with pytest.raises(RolloutRefused, match="not a JSON list"):
        rollout_history(rollout(), {"items": "many"})
    with pytest.raises(RolloutRefused, match="not a JSON object"):
        rollout_history(["a list"], history_rss())
    with pytest.raises(RolloutRefused, match=f"more than {MAX_REPLICASETS}"):
        rollout_history(rollout(), [{}] * (MAX_REPLICASETS + 1))
    assert issubclass(RolloutRefused, RollbackRefused)


# ---------------------------------------------------------------------- undo


def test_undo_goes_to_the_previous_revision_with_the_plugins_json_patch() -> None:
    ro = rollout()
    plan = plan_undo(ro, history_rss(), 0)
    assert isinstance(plan, RolloutUndoPlan)
    assert plan.action == "patch"
    assert (plan.requested, plan.to_revision, plan.to_version) == (0, 3, "2.3.0")
    assert (plan.from_revision, plan.from_version) == (4, "2.4.0")
    assert plan.content_type == JSON_PATCH == "application/json-patch+json"
    expected = rs_template("2.3.0")
    del expected["metadata"]["labels"][HASH_LABEL]
    assert plan.body() == [{"op": "replace", "path": "/spec/template", "value": expected}]
    # only the hash label goes: other labels and the template's annotations stay as they are
    value = plan.body()[0]["value"]
    assert value["metadata"]["annotations"] == {"team": "payments"}
    assert value["metadata"]["labels"]["app.kubernetes.io/version"] == "2.3.0"
    assert plan.message == "rollout 'payments-canary' undo"
    assert plan.summary == (
        "shop/payments-canary: 2.4.0 → 2.3.0 (revision 4 → 3; the controller gives it a new number)"
    )
    assert any(c.path.endswith(".image") for c in plan.changes)
    assert plan.snapshot == Snapshot(4, 4, "payments-canary-5f57d6db4d", 3)
    # the plan never shares what it was given
    plan.body()[0]["value"]["metadata"]["labels"]["x"] = "y"
    assert "x" not in plan.body()[0]["value"]["metadata"]["labels"]
    assert HASH_LABEL in history_rss()[2]["spec"]["template"]["metadata"]["labels"]


def test_undo_body_can_carry_a_resource_version_precondition() -> None:
    plan = plan_undo(rollout(), history_rss(), 2)
    first, second = plan.body(precondition=True)
    assert first == {"op": "replace", "path": "/metadata/resourceVersion", "value": "8812"}
    assert second["path"] == "/spec/template"
    assert plan.body() == [second]


def test_undo_to_a_given_revision_and_to_one_not_kept() -> None:
    plan = plan_undo(rollout(), history_rss(), 1)
    assert (plan.to_revision, plan.to_version) == (1, "2.1.0")
    with pytest.raises(RolloutRefused) as refused:
        plan_undo(rollout(), history_rss(), 7)
    assert str(refused.value) == (
        "unable to find specified revision 7 in history (rollout shop/payments-canary keeps "
        "revisions 1, 2, 3, 4)"
    )


def test_undo_without_a_previous_revision_says_so_in_the_plugins_words() -> None:
    with pytest.raises(RolloutRefused) as refused:
        plan_undo(rollout(), [replicaset("2.4.0", "4")], 0)
    assert str(refused.value).startswith('no revision found for rollout "payments-canary"')
    with pytest.raises(RolloutRefused, match="has no revision yet"):
        plan_undo(rollout(), [], 0)
    with pytest.raises(RolloutRefused, match="revision -1 is not valid"):
        plan_undo(rollout(), history_rss(), -1)


def test_the_previous_revision_is_chosen_in_list_order_as_the_plugin_does() -> None:
    # the second highest wherever it is listed
    listed = [replicaset("2.2.0", "2"), replicaset("2.4.0", "4"), replicaset("2.3.0", "3")]
    assert choose_revision(rollout_history(rollout(), listed), 0).number == 3
    # a tie with the highest counts as the previous one: the later of the two is taken
    twins = [replicaset("2.4.0", "4"), replicaset("2.3.0", "4"), replicaset("2.2.0", "2")]
    chosen = choose_revision(rollout_history(rollout(), twins), 0)
    assert (chosen.number, chosen.version) == (4, "2.3.0")
    # a given revision held twice: the first listed
    chosen = choose_revision(rollout_history(rollout(), twins), 4)
    assert chosen.version == "2.4.0"


def test_undo_skips_when_the_template_already_matches_the_revision() -> None:
    # the Rollout's own template against its defaulted ReplicaSet: a derivative, so skipped
    plan = plan_undo(rollout(), history_rss(), 4)
    assert plan.action == "skip"
    assert plan.body() == [] and plan.patch == ()
    assert plan.message == "skipped rollback (current template already matches revision 4)"
    assert plan.summary.startswith("skipped: rollout shop/payments-canary already has")


def test_a_plain_undo_that_skips_names_revision_0_as_the_plugin_does() -> None:
    # the template is back at 2.3.0 (revision 3) but the controller has not renumbered it yet:
    # the previous revision is 3, which the template already is
    ro = rollout("2.3.0", current="2.4.0", revision="4")
    plan = plan_undo(ro, history_rss(), 0)
    assert plan.action == "skip"
    assert plan.message == "skipped rollback (current template already matches revision 0)"


def test_undo_refuses_a_rollout_whose_template_comes_from_a_workload_ref() -> None:
    ro = rollout()
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "pay"}
    with pytest.raises(RolloutRefused, match="takes its pod template from Deployment pay"):
        plan_undo(ro, history_rss(), 0)


def test_undo_refuses_a_rollout_template_it_cannot_read() -> None:
    ro = rollout()
    ro["spec"]["template"] = {"spec": {"containers": "many"}}
    with pytest.raises(RolloutRefused, match=r"spec\.template of rollout shop/payments-canary"):
        plan_undo(ro, history_rss(), 0)


def test_undo_reports_what_it_skipped() -> None:
    bad = replicaset("2.1.0", "one")
    plan = plan_undo(rollout(), [bad, *history_rss()[1:]], 0)
    assert plan.to_revision == 3
    assert [s.name for s in plan.skipped] == ["payments-canary-5988fbd868"]


@pytest.mark.parametrize(
    ("rollout_side", "replicaset_side", "derives"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1, "b": 2}, {"a": 1}, False),
        ({"a": None}, {}, True),  # a null is unset
        ({"a": ""}, {"a": "x"}, True),  # an empty string derives any string
        ({"a": ""}, {"a": 1}, False),  # ... but not another type
        ({"a": "x"}, {"a": ""}, False),
        ({"a": []}, {"a": [1, 2]}, True),
        ({"a": [1]}, {"a": [1, 2]}, True),  # a list derives a longer one it starts
        ({"a": [2]}, {"a": [1, 2]}, False),
        ({"a": [1, 2, 3]}, {"a": [1, 2]}, False),
        ({"a": {}}, {"a": {"b": 1}}, True),
        ({"a": {}}, {"a": "x"}, False),
        ({"a": 1}, {"a": 1.0}, False),  # int64 and float64 differ
        ({"a": True}, {"a": 1}, False),
        ({"a": 0}, {"a": 0}, True),
        ({"a": 0}, {"b": 0}, False),  # a zero number is set, unlike an empty string
        ({"a": False}, {"a": False}, True),
    ],
)
def test_template_derives_as_semantic_deep_derivative(
    rollout_side: JsonDict, replicaset_side: JsonDict, derives: bool
) -> None:
    a = {"metadata": {"labels": {"app": "x"}}, "spec": rollout_side}
    b = {"metadata": {"labels": {"app": "x", HASH_LABEL: "abc"}}, "spec": replicaset_side}
    assert template_derives(a, b) is derives


def test_template_derives_ignores_the_hash_label_on_both_sides_only() -> None:
    a = {"metadata": {"labels": {"app": "x", HASH_LABEL: "old"}}}
    assert template_derives(a, {"metadata": {"labels": {"app": "x", HASH_LABEL: "new"}}})
    assert not template_derives(
        {"metadata": {"labels": {"app": "x", "tier": "web"}}},
        {"metadata": {"labels": {"app": "x", HASH_LABEL: "new"}}},
    )
    assert not template_derives("text", {})
    assert not template_derives({}, None)


# ---------------------------------------------------------------------- abort


def test_abort_mid_canary_is_the_plugins_status_merge_patch() -> None:
    plan = plan_abort(rollout(), history_rss())
    assert isinstance(plan, RolloutAbortPlan)
    assert plan.body() == {"status": {"abort": True}}
    assert json.dumps(plan.body(), separators=(",", ":")) == '{"status":{"abort":true}}'
    assert plan.content_type == MERGE_PATCH == "application/merge-patch+json"
    assert plan.subresource == "status" and plan.retry_without_subresource
    assert plan.effect == "traffic back to stable 2.3.0 at once"
    assert (plan.canary_version, plan.stable_version) == ("2.4.0", "2.3.0")
    assert (plan.step_index, plan.step_count, plan.revision) == (1, 4, 4)
    assert plan.message == "rollout 'payments-canary' aborted"
    assert "abort the update to 2.4.0 at step 1/4: traffic back to stable 2.3.0" in plan.summary
    assert "stays Degraded" in plan.summary
    assert plan.body(precondition=True) == {
        "status": {"abort": True},
        "metadata": {"resourceVersion": "8812"},
    }


def test_abort_without_the_replicasets_names_the_stable_by_its_replicaset() -> None:
    plan = plan_abort(rollout())
    assert plan.stable_version == "ReplicaSet payments-canary-5f57d6db4d"


def test_abort_of_a_progressing_or_stalled_canary_is_allowed() -> None:
    for ro in (
        rollout(phase="Progressing", message="more replicas need to be updated", index=0),
        rollout(phase="Degraded", message="ProgressDeadlineExceeded: ReplicaSet timed out"),
    ):
        assert plan_abort(ro, history_rss()).canary_version == "2.4.0"


def test_abort_is_refused_when_nothing_is_in_progress() -> None:
    with pytest.raises(RolloutRefused) as refused:
        plan_abort(healthy("2.3.0"), history_rss())
    assert str(refused.value) == (
        "nothing to abort: rollout shop/payments-canary is not updating, it runs its stable "
        "version 2.3.0 (Healthy)"
    )
    with pytest.raises(RolloutRefused, match="already aborted"):
        plan_abort(aborted(), history_rss())
    no_stable = rollout()
    del no_stable["status"]["stableRS"]
    with pytest.raises(RolloutRefused, match="no stable version yet"):
        plan_abort(no_stable)


# ---------------------------------------------------------------------- state and phase


def test_state_mid_canary() -> None:
    state = rollout_state(rollout(), history_rss())
    assert (state.phase, state.message, state.line) == (
        "Paused",
        "CanaryPauseStep",
        "Paused - CanaryPauseStep",
    )
    assert (state.step_index, state.step_count, state.weight) == (1, 4, 20)
    assert (state.canary_version, state.stable_version) == ("2.4.0", "2.3.0")
    assert (state.canary_hash, state.stable_hash) == (HASHES["2.4.0"], HASHES["2.3.0"])
    assert state.in_progress and not state.aborted and state.paused and state.observed
    assert state.revision == 4 and state.replicas == 5
    assert state.summary == (
        "canary 2.4.0 at step 1/4 (20% of pods), stable 2.3.0 — Paused - CanaryPauseStep"
    )


def test_state_weights_follow_the_steps() -> None:
    assert rollout_state(rollout(index=0)).weight == 20
    assert rollout_state(rollout(index=2)).weight == 50
    assert rollout_state(rollout(index=3)).weight == 50
    assert rollout_state(rollout(index=4)).weight == 100
    assert rollout_state(rollout(index=99)).step_index == 4
    assert rollout_state(aborted()).weight == 0


def test_state_aborted_and_healthy() -> None:
    state = rollout_state(aborted(), history_rss())
    assert state.aborted and not state.in_progress
    assert state.phase == "Degraded"
    assert state.summary == (
        "aborted: the update to 2.4.0 was stopped; stable 2.3.0 serves all traffic"
    )
    state = rollout_state(healthy())
    assert not state.in_progress and not state.aborted
    assert state.stable_version == state.canary_version == "2.4.0"
    assert state.summary == "2.4.0 — Healthy"


def test_phase_waits_for_the_spec_to_be_observed_and_for_an_unpause() -> None:
    assert rollout_phase(rollout(generation=5)) == (
        "Progressing",
        "waiting for rollout spec update to be observed",
    )
    assert not rollout_state(rollout(generation=5)).observed
    # a numeric observedGeneration as an int, or a v0.9 hash, counts as observed
    assert rollout_phase(rollout(observed=4))[0] == "Paused"
    assert rollout_phase(rollout(observed="5c7d9f"))[0] == "Paused"
    unpausing = rollout()
    del unpausing["status"]["pauseConditions"]
    assert rollout_phase(unpausing) == ("Progressing", "waiting for rollout to unpause")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"pauseConditions": [{"reason": "CanaryPauseStep"}]}, ("Paused", "CanaryPauseStep")),
        ({"updatedReplicas": 1}, ("Progressing", "more replicas need to be updated")),
        (
            {"updatedReplicas": 5, "availableReplicas": 4},
            ("Progressing", "updated replicas are still becoming available"),
        ),
        (
            {"updatedReplicas": 5, "availableReplicas": 5, "replicas": 6},
            ("Progressing", "old replicas are pending termination"),
        ),
        (
            {"updatedReplicas": 5, "availableReplicas": 5, "replicas": 5, "stableRS": "other"},
            ("Progressing", "waiting for all steps to complete"),
        ),
        ({"updatedReplicas": 5, "availableReplicas": 5, "replicas": 5}, ("Healthy", "")),
        (
            {"conditions": [{"type": "Progressing", "reason": "RolloutAborted", "message": "m"}]},
            ("Degraded", "RolloutAborted: m"),
        ),
        (
            {"conditions": [{"type": "InvalidSpec", "reason": "InvalidSpec", "message": "bad"}]},
            ("Degraded", "InvalidSpec: bad"),
        ),
    ],
)
def test_phase_is_calculated_when_an_old_controller_wrote_none(
    status: JsonDict, expected: tuple[str, str]
) -> None:
    ro = rollout(phase=None, message=None)
    ro["status"] = {
        "currentPodHash": "h",
        "stableRS": "h",
        "observedGeneration": "4",
        **status,
    }
    assert rollout_phase(ro) == expected


def test_phase_of_a_manually_paused_rollout_and_a_restart() -> None:
    ro = rollout(phase=None, message=None)
    ro["spec"]["paused"] = True
    assert rollout_phase(ro) == ("Paused", "manually paused")
    ro = healthy(phase=None)
    ro["spec"]["restartAt"] = "2026-12-01T10:00:00Z"
    assert rollout_phase(ro) == ("Progressing", "rollout is restarting")


# ---------------------------------------------------------------------- progress


def test_progress_maps_the_phases() -> None:
    done = rollout_progress(healthy())
    assert (done.phase, done.message) == (Phase.COMPLETE, "Healthy")
    assert (done.desired, done.updated, done.available, done.revision) == (5, 5, 5, 4)
    assert done.finished
    paused = rollout_progress(rollout())
    assert (paused.phase, paused.message) == (Phase.UPDATING, "Paused - CanaryPauseStep")
    moving = rollout_progress(
        rollout(phase="Progressing", message="more replicas need to be updated")
    )
    assert (moving.phase, moving.message) == (
        Phase.UPDATING,
        "Progressing - more replicas need to be updated",
    )
    failed = rollout_progress(aborted())
    assert (failed.phase, failed.message) == (
        Phase.FAILED,
        "The rollout is in a degraded state with message: RolloutAborted: Rollout aborted "
        "update to revision 4",
    )
    timed_out = rollout_progress(
        rollout(
            phase="Degraded",
            message='ProgressDeadlineExceeded: ReplicaSet "x" has timed out progressing.',
        )
    )
    assert timed_out.phase is Phase.FAILED
    waiting = rollout_progress(rollout(generation=5))
    assert (waiting.phase, waiting.message) == (
        Phase.WAITING_FOR_OBSERVATION,
        "Progressing - waiting for rollout spec update to be observed",
    )
    # Healthy by the phase, but the current template is not yet the stable one
    odd = rollout_progress(rollout(phase="Healthy", message=None))
    assert (odd.phase, odd.message) == (
        Phase.UPDATING,
        "Progressing - waiting for all steps to complete",
    )


def test_abort_progress_follows_the_canary_down_and_the_stable_up() -> None:
    canary_left = abort_progress(aborted(updatedReplicas=1, replicas=6))
    assert canary_left.phase is Phase.TERMINATING_OLD
    assert canary_left.message.endswith("waiting for the canary to scale down: 1 canary pods left")
    short = abort_progress(aborted(replicas=5, availableReplicas=4))
    assert short.phase is Phase.BECOMING_AVAILABLE
    assert "4 of 5 pods available" in short.message
    done = abort_progress(aborted())
    assert done.phase is Phase.COMPLETE
    assert done.message == (
        "Degraded - RolloutAborted: Rollout aborted update to revision 4: traffic is back on "
        "stable (5/5 pods available, the canary scaled to 0)"
    )
    # the abort was superseded: back on stable by an undo, or the update goes on
    assert abort_progress(healthy("2.3.0")).phase is Phase.COMPLETE
    gone_on = abort_progress(rollout())
    assert gone_on.phase is Phase.FAILED
    assert "no longer aborted" in gone_on.message


# ---------------------------------------------------------------------- hostile input

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
hostile_status = st.fixed_dictionaries(
    {},
    optional={
        "phase": st.sampled_from(["Healthy", "Paused", "Degraded", "Progressing"]) | json_values,
        "message": json_values,
        "currentPodHash": st.sampled_from(list(HASHES.values())) | json_values,
        "stableRS": st.sampled_from(list(HASHES.values())) | json_values,
        "currentStepIndex": st.integers(-5, 10) | json_values,
        "observedGeneration": st.sampled_from(["4", "5", 4]) | json_values,
        "abort": st.booleans() | json_values,
        "pauseConditions": json_values,
        "controllerPause": json_values,
        "conditions": st.lists(json_values, max_size=3) | json_values,
        "replicas": json_values,
        "updatedReplicas": json_values,
        "availableReplicas": json_values,
    },
)
hostile_spec = st.fixed_dictionaries(
    {},
    optional={
        "replicas": st.integers(-3, 10) | json_values,
        "template": st.just(ro_template("2.4.0")) | json_values,
        "strategy": st.just({"canary": {"steps": STEPS}}) | json_values,
        "paused": json_values,
        "workloadRef": json_values,
    },
)
hostile_rollouts = (
    st.fixed_dictionaries(
        {
            "metadata": st.fixed_dictionaries(
                {"name": st.just("payments-canary") | json_values},
                optional={
                    "uid": st.just(UID) | json_values,
                    "generation": json_values,
                    "annotations": json_values,
                },
            )
            | json_values,
            "spec": hostile_spec | json_values,
            "status": hostile_status | json_values,
        }
    )
    | json_values
)


def _hostile_rs(rs: JsonDict, data: st.DataObject) -> JsonDict:
    rs = copy.deepcopy(rs)
    part = data.draw(st.sampled_from(["annotation", "template", "owner", "status", "none"]))
    value = data.draw(json_values)
    if part == "annotation":
        rs["metadata"]["annotations"][REVISION_ANNOTATION] = value
    elif part == "template":
        rs["spec"]["template"] = value
    elif part == "owner":
        rs["metadata"]["ownerReferences"] = value
    elif part == "status":
        rs["status"] = value
    return rs


@settings(max_examples=200, deadline=None)
@given(hostile_rollouts, st.integers(-1, 5), st.data())
def test_any_rollout_json_is_decided_without_raising_anything_but_a_refusal(
    ro: Any, to_revision: int, data: st.DataObject
) -> None:
    rss = [_hostile_rs(rs, data) for rs in history_rss()]
    for decide in (
        lambda: rollout_history(ro, rss),
        lambda: plan_undo(ro, rss, to_revision),
        lambda: plan_abort(ro, rss),
        lambda: plan_abort(ro),
        lambda: rollout_state(ro, rss),
        lambda: rollout_state(ro),
    ):
        try:
            decide()
        except RolloutRefused as refused:
            assert 0 < len(str(refused)) < 2_000
    for progress in (rollout_progress, abort_progress):
        try:
            seen = progress(ro)
        except RolloutRefused:
            continue
        assert seen.desired >= 0 and seen.updated >= 0 and seen.total >= 0
        assert len(seen.message) < 3_000


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_undo_of_hostile_replicasets_only_ever_sends_a_template_it_read(
    data: st.DataObject,
) -> None:
    rss = [_hostile_rs(rs, data) for rs in history_rss()]
    try:
        plan = plan_undo(rollout(), rss, data.draw(st.integers(0, 4)))
    except RolloutRefused:
        return
    for op in plan.body(precondition=True):
        assert op["op"] == "replace"
        assert op["path"] in ("/metadata/resourceVersion", "/spec/template")
        if op["path"] == "/spec/template":
            assert op["value"]["spec"]["containers"]
            assert HASH_LABEL not in op["value"].get("metadata", {}).get("labels", {})
