"""What the thread and the versions message say of a StatefulSet or a DaemonSet: the OnDelete
ending (the template back, the pods to delete), kubectl hints naming the kind, the workload's
place and its update strategy's notes; every message checked as Slack checks it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.adapters.slack import blocks
from bot.adapters.slack.payloads import RollbackButton
from bot.adapters.slack.render import MAX_BLOCKS, SECTION_TEXT, TEXT_BUDGET, Message
from bot.domain.rollback.models import History, WorkloadKind
from bot.domain.rollback.progress import Ending, Phase, Progress
from bot.domain.rollback.views import ServiceView
from bot.domain.rollback.workload_progress import progress_of
from rollback_sandbox.slack.blockkit import validate_blocks
from tests.builders import deployment, replicaset, template
from tests.unit.domain.rollback.test_plan_workloads import (
    DS,
    NAMES,
    STS,
    revision_name,
    workload_history,
)

TAKEN = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)
DEPLOY = WorkloadKind.DEPLOYMENT
ON_DELETE = {"type": "OnDelete"}


def texts(message: Message) -> str:
    """Every text of the message's blocks, and its fallback text."""
    found: list[str] = [message.text]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(found)


def assert_valid(message: Message) -> None:
    """As Slack checks it: Block Kit's limits, within the text Slack accepts, no broadcast."""
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    for block in message.blocks:
        assert len((block.get("text") or {}).get("text", "")) <= SECTION_TEXT
    size = len(texts(message)) - len(message.text)
    assert size <= TEXT_BUDGET
    assert message.text and len(message.text) <= SECTION_TEXT
    assert "<!channel>" not in texts(message) and "<!here>" not in texts(message)


def view(history: History, service: str | None = None) -> ServiceView:
    return ServiceView(
        service=service or history.deployment.name,
        namespace="shop",
        cluster="https://k8s.prod.example.com",
        history=history,
        asked_by="U0ONCALL01",
        taken_at=TAKEN,
    )


def last_of(kind: WorkloadKind, **workload: Any) -> Progress:
    return progress_of(workload_history(kind, **workload).deployment)


# --- the OnDelete ending -------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "noun"), [(STS, "statefulset"), (DS, "daemon set")])
def test_pods_to_delete_says_the_template_is_back_and_how_to_finish(
    kind: WorkloadKind, noun: str
) -> None:
    name = NAMES[kind]
    last = last_of(kind, strategy=ON_DELETE)
    assert last.phase is Phase.PODS_TO_DELETE
    message = blocks.outcome_message(name, "1.1", "shop", name, last, 42.0, kind=kind)
    assert_valid(message)
    assert message.text == f"{name}: template rolled back to 1.1; delete the pods to take it"
    body = message.blocks[0]["text"]["text"]
    assert body.startswith(f":warning: *{name}*'s {noun} template is back at *1.1* (in 42s)")
    assert "its update strategy is *OnDelete*" in body
    assert "every pod keeps the version it runs until it is deleted" in body
    assert "`kubectl -n shop delete pod " in body
    assert "`kubectl -n shop get pods -L controller-revision-hash`" in body


@pytest.mark.parametrize("kind", [STS, DS])
def test_pods_to_delete_is_not_told_as_a_failure_nor_as_a_success(kind: WorkloadKind) -> None:
    name = NAMES[kind]
    message = blocks.outcome_message(
        name, "1.1", "shop", name, last_of(kind, strategy=ON_DELETE), 42.0, kind=kind
    )
    said = texts(message)
    assert ":x:" not in said and "failed" not in said
    assert ":white_check_mark:" not in said and "Lost sight" not in said
    assert "rolled back to 1.1 in" not in said  # the success's words


def test_pods_to_delete_with_an_error_is_a_failure_naming_the_kind() -> None:
    message = blocks.outcome_message(
        "orders-db",
        "1.1",
        "shop",
        "orders-db",
        last_of(STS, strategy=ON_DELETE),
        42.0,
        "the API server answered 500",
        kind=STS,
    )
    assert_valid(message)
    body = message.blocks[0]["text"]["text"]
    assert body.startswith(":x: Rollback of *orders-db* to *1.1* failed after 42s")
    assert "`kubectl -n shop describe statefulset orders-db`" in body


def test_the_progress_message_ends_on_pods_to_delete_with_a_warning() -> None:
    last = last_of(STS, strategy=ON_DELETE)
    message = blocks.progress_message(last, 42.0, "1.1", Ending.PODS_TO_DELETE)
    assert_valid(message)
    assert message.blocks[0]["text"]["text"].startswith(
        ":warning: Template back at *1.1*; pods to delete "
    )
    assert message.text.startswith("Template back at 1.1; pods to delete in 42s: ")
    said = texts(message)
    assert "Rolling out" not in said and "hourglass" not in said and ":x:" not in said
    # The context line says kubectl's error and what it means.
    assert "uses the OnDelete update strategy" in message.blocks[1]["elements"][0]["text"]


# --- kubectl hints name the kind -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        (STS, "`kubectl -n shop rollout status statefulset/orders-db`"),
        (DS, "`kubectl -n shop rollout status daemonset/log-shipper`"),
        (DEPLOY, "`kubectl -n shop rollout status deployment/checkout`"),
    ],
)
def test_losing_sight_hints_at_the_rollout_status_of_the_kind(
    kind: WorkloadKind, hint: str
) -> None:
    name = NAMES.get(kind, "checkout")
    updating = Progress(Phase.UPDATING, "Waiting", 3, 1, 3, 3, 4, 3)
    message = blocks.outcome_message(
        name, "1.1", "shop", name, updating, 42.0, "the watch ended", unknown=True, kind=kind
    )
    assert_valid(message)
    said = texts(message)
    assert hint in said
    assert "Lost sight of the rollback" in said and "at 1/3 updated" in said
    assert ":x:" not in said and "failed" not in said
    if kind is not DEPLOY:
        assert "deployment/" not in said


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        (STS, "`kubectl -n shop describe statefulset orders-db`"),
        (DS, "`kubectl -n shop describe daemonset log-shipper`"),
    ],
)
def test_a_failure_hints_at_describing_the_workload_of_its_kind(
    kind: WorkloadKind, hint: str
) -> None:
    name = NAMES[kind]
    stuck = Progress(Phase.FAILED, "rollout status is only available for ...", 3, 1, 1, 1, 3, 3)
    message = blocks.outcome_message(name, "1.1", "shop", name, stuck, 620.0, kind=kind)
    assert_valid(message)
    said = texts(message)
    assert hint in said
    assert "describe deployment" not in said
    assert message.text.startswith(f"Rollback of {name} to 1.1 failed: ")


def test_a_statefulset_rolled_out_is_a_success() -> None:
    done = last_of(STS)
    assert done.phase is Phase.COMPLETE
    message = blocks.outcome_message("orders-db", "1.1", "shop", "orders-db", done, 102, kind=STS)
    assert_valid(message)
    assert message.blocks[0]["text"]["text"] == (
        ":white_check_mark: *orders-db* rolled back to *1.1* in 1m42s (3/3 ready)."
    )


# --- the versions message ------------------------------------------------------------------


def context_texts(message: Message) -> list[str]:
    return [
        element["text"]
        for block in message.blocks
        if block["type"] == "context"
        for element in block["elements"]
    ]


def test_the_versions_of_a_statefulset_name_it_and_its_strategy() -> None:
    message = blocks.versions_message(view(workload_history(STS)))
    assert_valid(message)
    contexts = context_texts(message)
    assert contexts[0] == "StatefulSet `shop/orders-db` on `https://k8s.prod.example.com`"
    assert (
        ":information_source: pods are replaced one at a time from the highest ordinal, each "
        "once the one before is ready: a pod of the bad version that never becomes ready stops "
        "the rollback until it is deleted"
    ) in contexts
    said = texts(message)
    assert "*Deployed now*\n1.2 (revision 3)" in said
    assert "*Health*\n3/3 ready" in said


def test_the_versions_of_a_statefulset_offer_its_controller_revisions() -> None:
    message = blocks.versions_message(view(workload_history(STS)))
    buttons = [
        RollbackButton.decode(b["accessory"]["value"]) for b in message.blocks if b.get("accessory")
    ]
    assert [(b.target_revision, b.target_replicaset) for b in buttons] == [
        (2, revision_name(STS, 2)),
        (1, revision_name(STS, 1)),
    ]
    assert all(b.revision == 3 and b.from_version == "1.2" for b in buttons)
    labels = [b["accessory"]["text"]["text"] for b in message.blocks if b.get("accessory")]
    assert labels == ["Roll back to 1.1", "Roll back to 1.0"]


def test_an_on_delete_statefulset_is_warned_of_before_anyone_clicks() -> None:
    message = blocks.versions_message(view(workload_history(STS, strategy=ON_DELETE)))
    assert_valid(message)
    assert context_texts(message)[1:-1] == [
        ":information_source: update strategy OnDelete: a rollback restores the template only; "
        "Kubernetes replaces no pod, each keeps its version until it is deleted"
    ]


def test_a_partitioned_statefulset_says_how_many_pods_go_back() -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    message = blocks.versions_message(view(workload_history(STS, strategy=strategy)))
    assert_valid(message)
    assert (
        ":information_source: partition 1: only the pods of ordinal 1 and above are rolled back "
        "(2 of 3); the others keep their version"
    ) in context_texts(message)


def test_a_short_history_limit_is_told_in_controller_revisions() -> None:
    message = blocks.versions_message(view(workload_history(DS, history_limit=2)))
    assert_valid(message)
    notes = context_texts(message)
    assert notes[0] == "DaemonSet `shop/log-shipper` on `https://k8s.prod.example.com`"
    assert notes[1].startswith(
        ":warning: keeps only 2 old ControllerRevisions (spec.revisionHistoryLimit: 2)"
    )
    assert not any("ReplicaSet" in note for note in notes)


def test_a_daemonset_rolling_update_has_no_strategy_note() -> None:
    message = blocks.versions_message(view(workload_history(DS)))
    assert_valid(message)
    contexts = context_texts(message)
    assert contexts[0].startswith("DaemonSet `shop/log-shipper`")
    assert len(contexts) == 2 and contexts[1].startswith("Taken ")  # no note between


def test_a_deployment_is_placed_as_before() -> None:
    rss = [
        replicaset(template(v), revision=n, pod_hash=f"h{n}", created=f"2026-11-2{n}T10:00:00Z")
        for n, v in {1: "2.12.0", 2: "2.13.0"}.items()
    ]
    history = parse_history(deployment(template("2.13.0"), revision=2), rss)
    message = blocks.versions_message(view(history))
    assert_valid(message)
    assert context_texts(message)[0] == "`shop/checkout` on `https://k8s.prod.example.com`"
    assert "StatefulSet" not in texts(message) and "DaemonSet" not in texts(message)


def test_status_and_history_place_the_statefulset_too() -> None:
    history = workload_history(STS)
    status = blocks.status_message(view(history, "orders"))
    assert_valid(status)
    assert status.blocks[0]["text"]["text"].startswith(
        "*orders* · StatefulSet `shop/orders-db` on "
    )
    revisions = blocks.history_message(view(history, "orders"))
    assert_valid(revisions)
    assert (
        revisions.blocks[0]["text"]["text"] == "*orders* revisions (StatefulSet `shop/orders-db`)"
    )
    assert "← deployed now" in json.dumps(revisions.blocks, ensure_ascii=False)
