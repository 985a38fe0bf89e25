"""The guards in Block Kit: the versions message of a migrated service (override buttons, the
reason, the artifact notes), the confirmation's preview (cut to Slack's limits with a count)
and the override modal. Snapshots are updated with UPDATE_SNAPSHOTS=1, then reviewed."""

from __future__ import annotations

import json
from typing import Any

from bot.adapters.kube.parsing import parse_history
from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.payloads import ConfirmContext
from bot.adapters.slack.render import SECTION_TEXT
from bot.domain.rollback.migrations import MIGRATION_ANNOTATION
from bot.domain.rollback.models import History
from bot.domain.rollback.template_diff import ContainerPreview, diff_templates, preview
from tests.builders import deployment, replicaset, template
from tests.unit.adapters.slack.test_blocks import CONTEXT, check_snapshot, message_dict, view

MIGRATIONS = {3: "irreversible", 4: "additive"}
IMAGES = {2: "registry.example.com/shop/checkout:latest"}


def migrated_history() -> History:
    rss = []
    templates = {}
    for n in range(1, 6):
        tpl = template(f"2.{n}.0", image=IMAGES.get(n), sidecar=None)
        if n in MIGRATIONS:
            tpl["metadata"]["annotations"] = {MIGRATION_ANNOTATION: MIGRATIONS[n]}
        templates[n] = tpl
        rss.append(replicaset(tpl, revision=n, pod_hash=f"h{n}", created=f"2026-11-1{n}T10:00:00Z"))
    dep = deployment(templates[5], revision=5)
    dep["spec"]["revisionHistoryLimit"] = 2
    return parse_history(dep, rss)


def section_texts(rendered: list[dict[str, Any]]) -> list[str]:
    return [b.get("text", {}).get("text", "") for b in rendered if b["type"] == "section"]


def test_versions_message_of_a_migrated_service_snapshot() -> None:
    message = blocks.versions_message(view(migrated_history()))
    check_snapshot("versions_migrated", message_dict(message))
    accessories = {
        b["accessory"]["action_id"]: b["accessory"]["text"]["text"]
        for b in message.blocks
        if "accessory" in b
    }
    assert accessories == {
        "rollback:to:4": "Roll back to 2.4.0",
        "rollback:to:3": "Roll back to 2.3.0",
        "rollback:override:2": "Override migration guard",
        "rollback:override:1": "Override migration guard",
    }
    text = json.dumps(message.blocks, ensure_ascii=False)
    assert ":no_entry: 2.1.0 cannot run against the schema migrated by 2.3.0 (revision 3)" in text
    assert "schema change is additive; older code runs against it" in text
    assert "keeps only 2 old ReplicaSets" in text
    assert "mutable image tag: checkout (registry.example.com/shop/checkout:latest)" in text


def test_a_running_rollback_shows_no_override_button_either() -> None:
    from tests.unit.adapters.slack.test_blocks import RUN

    message = blocks.locked_message(view(migrated_history()), RUN)
    assert "button" not in json.dumps(message.blocks)


def test_the_confirmation_shows_what_changes_snapshot() -> None:
    before = template("2.3.0", env={"TOKEN": "hunter2", "LOG": "debug"})
    after = template("2.2.0", env={"LOG": "info"})
    changes = preview(diff_templates(before, after))
    modal = blocks.confirm_modal(CONTEXT, reason_required=True, changes=changes)
    check_snapshot("confirm_modal_preview", modal)
    shown = json.dumps(modal, ensure_ascii=False)
    assert "hunter2" not in shown and "debug" not in shown
    assert "env removed: TOKEN (values not shown)" in shown
    unread = blocks.confirm_modal(CONTEXT, reason_required=True, changes_unread=True)
    assert "could not be read just now" in json.dumps(unread)
    # Without a preview asked for, the modal is as it was.
    assert blocks.confirm_modal(CONTEXT, reason_required=True)["blocks"][1]["type"] == "input"


def test_a_preview_over_slacks_limit_is_cut_with_a_count_of_what_was_left_out() -> None:
    many = tuple(
        ContainerPreview(
            f"containers[c{i}]",
            "changed",
            tuple(f"resources.limits.memory: {'9' * 80}Mi → {j}Mi" for j in range(5)),
        )
        for i in range(30)
    )
    text = blocks.preview_text(many)
    assert len(text) <= SECTION_TEXT
    shown = text.count("• resources")
    assert 0 < shown < 150
    assert text.endswith(f"_… and {150 - shown} more changes not shown_")
    modal = blocks.confirm_modal(CONTEXT, reason_required=False, changes=many)
    assert section_texts(modal["blocks"])[1] == text  # rendered: within Slack's limits


def test_the_override_modal_snapshot_asks_for_the_name_and_a_reason() -> None:
    reason = "2.2.0 cannot run against the schema migrated by 2.3.0 (revision 3)"
    changes = preview(diff_templates(template("2.3.0"), template("2.2.0")))
    modal = blocks.override_modal(CONTEXT, reason, changes)
    check_snapshot("override_modal", modal)
    assert modal["callback_id"] == action_ids.OVERRIDE_VIEW
    inputs = {b["block_id"]: b for b in modal["blocks"] if b["type"] == "input"}
    assert set(inputs) == {action_ids.OVERRIDE_SERVICE_BLOCK, action_ids.REASON_BLOCK}
    assert not any(b.get("optional") for b in inputs.values())
    assert ConfirmContext.decode(modal["private_metadata"]) == CONTEXT
    assert reason in section_texts(modal["blocks"])[0]


def test_text_from_the_cluster_is_escaped_in_the_preview() -> None:
    hostile = (ContainerPreview("containers[<!channel>]", "changed", ("image <@U1> → &",)),)
    text = blocks.preview_text(hostile)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "&lt;@U1&gt; → &amp;" in text
