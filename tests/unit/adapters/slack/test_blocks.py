"""The Block Kit renderers: snapshots of each message, and Slack's limits at the extremes."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.kube.parsing import parse_history
from bot.adapters.slack import blocks
from bot.adapters.slack.payloads import ConfirmContext, RollbackButton
from bot.adapters.slack.render import Message
from bot.domain.rollback.models import History, RunInfo
from bot.domain.rollback.progress import Ending, Phase, Progress
from bot.domain.rollback.views import ServiceView
from tests.builders import deployment, replicaset, template

SNAPSHOTS = Path(__file__).parent / "snapshots"
TAKEN = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)
RUN = RunInfo(
    service="checkout",
    actor="U0ONCALL01",
    from_version="2.14.0",
    to_version="2.13.0",
    to_revision=2,
    started_at=TAKEN,
)


def demo_history(*, revisions: int = 3, containers: int = 2, bad_note: bool = False) -> History:
    rss = []
    for n in range(1, revisions + 1):
        tpl = template(f"2.{n}.0", sidecar=None)
        tpl["spec"]["containers"] += [
            {"name": f"sidecar-{i}", "image": f"registry.example.com/platform/sidecar-{i}:1.{n}"}
            for i in range(containers - 1)
        ]
        notes = {"kubernetes.io/change-cause": f"deploy checkout 2.{n}.0 (pipeline #{4700 + n})"}
        if bad_note and n == 1:
            notes |= {
                "rollback-bot.io/from-version": "2.2.0",
                "rollback-bot.io/rolled-back-by": "U0ALICE1",
            }
        rss.append(
            replicaset(
                tpl,
                revision=n,
                pod_hash=f"h{n}",
                created=f"2026-11-{10 + n % 17:02d}T10:00:00Z",
                annotations=notes,
                replicas=3 if n == revisions else 0,
            )
        )
    current = rss[-1]["spec"]["template"]
    dep = deployment(
        current,
        revision=revisions,
        annotations={"kubernetes.io/change-cause": f"deploy checkout 2.{revisions}.0"},
    )
    return parse_history(dep, rss)


def view(history: History, **extra: Any) -> ServiceView:
    return ServiceView(
        service="checkout",
        namespace="shop",
        cluster="https://k8s.prod.example.com",
        history=history,
        asked_by="U0ONCALL01",
        taken_at=TAKEN,
        **extra,
    )


def check_snapshot(name: str, rendered: Any) -> None:
    """Compare with the stored snapshot; UPDATE_SNAPSHOTS=1 rewrites it (review the diff)."""
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(rendered, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text)
    elif not path.exists():
        pytest.fail(f"snapshot {path.name} is missing: run with UPDATE_SNAPSHOTS=1 and commit it")
    assert text == path.read_text(), f"{name} changed: rerun with UPDATE_SNAPSHOTS=1 and review"


def message_dict(message: Message) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks}


def test_versions_message_snapshot() -> None:
    check_snapshot(
        "versions", message_dict(blocks.versions_message(view(demo_history(bad_note=True))))
    )


def test_locked_message_snapshot_has_no_buttons() -> None:
    message = blocks.locked_message(view(demo_history()), RUN)
    check_snapshot("versions_locked", message_dict(message))
    assert "button" not in json.dumps(message.blocks)
    assert "is rolling back to *2.13.0*" in json.dumps(message.blocks)


def test_status_and_history_snapshots() -> None:
    check_snapshot("status", message_dict(blocks.status_message(view(demo_history()))))
    check_snapshot("history", message_dict(blocks.history_message(view(demo_history()))))


CONTEXT = ConfirmContext(
    button=RollbackButton(
        service="checkout",
        target_revision=2,
        target_replicaset="checkout-h2",
        target_version="2.2.0",
        from_version="2.3.0",
        revision=3,
        generation=5,
    ),
    channel="C0INCIDENT",
    message_ts="1700000000.000100",
)


def test_confirm_modal_snapshot() -> None:
    modal = blocks.confirm_modal(CONTEXT, reason_required=True)
    check_snapshot("confirm_modal", modal)
    assert ConfirmContext.decode(modal["private_metadata"]) == CONTEXT


def test_the_confirmation_of_a_known_bad_version_says_so() -> None:
    modal = blocks.confirm_modal(CONTEXT, reason_required=False, known_bad=True)
    check_snapshot("confirm_modal_known_bad", modal)
    text = modal["blocks"][0]["text"]["text"]
    assert "*2.2.0* is known bad" in text and "roll-forward to a known-bad" in text
    assert "Redeploy *checkout* from *2.3.0* (revision 3) to *2.2.0* (revision 2)?" in text
    assert (modal["title"]["text"], modal["submit"]["text"]) == ("Redeploy known bad", "Redeploy")
    assert ConfirmContext.decode(modal["private_metadata"]) == CONTEXT
    good = blocks.confirm_modal(CONTEXT, reason_required=False)
    assert "known bad" not in json.dumps(good)
    assert good["submit"]["text"] == "Roll back"


def test_a_known_bad_version_is_offered_as_a_redeploy_not_a_rollback() -> None:
    # 2.2.0 was rolled back from: going back to it rolls forward to a known-bad version.
    message = blocks.versions_message(view(demo_history(bad_note=True)))
    offers = {b["accessory"]["action_id"]: b for b in message.blocks if b.get("accessory")}
    bad, good = offers["rollback:to:2"], offers["rollback:to:1"]
    assert bad["accessory"]["text"]["text"] == "Redeploy 2.2.0 (known bad)"
    assert "style" not in bad["accessory"]
    assert ":warning: known bad: <@U0ALICE1> rolled back from it" in bad["text"]["text"]
    assert blocks.clicked_known_bad(bad["block_id"])
    assert good["accessory"]["text"]["text"] == "Roll back to 2.1.0"
    assert good["accessory"]["style"] == "danger"
    assert not blocks.clicked_known_bad(good.get("block_id"))
    assert not blocks.clicked_known_bad(None)


def test_a_long_known_bad_version_keeps_its_warning_on_the_button() -> None:
    history = demo_history(bad_note=True)
    long = "2.2.0-" + "x" * 200
    history = dataclasses.replace(
        history,
        revisions=tuple(
            dataclasses.replace(r, version=long) if r.version == "2.2.0" else r
            for r in history.revisions
        ),
        deployment=dataclasses.replace(
            history.deployment,
            annotations={**history.deployment.annotations, "rollback-bot.io/from-version": long},
        ),
    )
    message = blocks.versions_message(view(history))
    labels = [b["accessory"]["text"]["text"] for b in message.blocks if b.get("accessory")]
    assert any(label.endswith("… (known bad)") and len(label) <= 75 for label in labels), labels


def test_the_progress_bar_counts_the_rollout_not_the_old_pods_serving() -> None:
    # The thread's case: 1/3 updated while the three old pods are all still available.
    early = Progress(Phase.UPDATING, "Waiting for rollout", 3, 1, 3, 3, 4, 4)
    body = blocks.progress_message(early, 5.0, "2.13.0").blocks[0]["text"]["text"]
    assert "Rolling out *2.13.0* ▰▱▱▱▱▱▱▱▱▱\n1/3 updated" in body
    # All pods updated and available, but old ones still terminating: not full yet.
    terminating = Progress(Phase.TERMINATING_OLD, "old replicas pending", 3, 3, 3, 3, 4, 4)
    assert "▱" in blocks.progress_message(terminating, 9.0, "2.13.0").blocks[0]["text"]["text"]
    done = Progress(Phase.COMPLETE, "successfully rolled out", 3, 3, 3, 3, 3, 4)
    assert "▰" * 10 in blocks.progress_message(done, 12.0, "2.13.0").blocks[0]["text"]["text"]


@pytest.mark.parametrize(
    ("ended", "shown", "fallback"),
    [
        (Ending.SUCCEEDED, ":white_check_mark: Rolled out *2.13.0*", "Rolled out 2.13.0 in 42s"),
        (Ending.FAILED, ":x: Rollout of *2.13.0* failed", "Rollout of 2.13.0 failed after 42s"),
        (
            Ending.UNKNOWN,
            ":grey_question: Lost sight of the rollout of *2.13.0*",
            "Lost sight of the rollout of 2.13.0 after 42s",
        ),
    ],
)
def test_the_progress_message_ends_showing_how_the_rollout_ended(
    ended: Ending, shown: str, fallback: str
) -> None:
    last = Progress(Phase.UPDATING, "Waiting for rollout", 3, 1, 3, 3, 4, 4)
    message = blocks.progress_message(last, 42.0, "2.13.0", ended)
    rendered = json.dumps(message_dict(message), ensure_ascii=False)
    assert message.blocks[0]["text"]["text"].startswith(shown)
    assert message.text.startswith(fallback)
    assert "Rolling out" not in rendered and "hourglass" not in rendered
    if ended is Ending.UNKNOWN:  # neither a success nor a failure: the bot does not know
        assert ":white_check_mark:" not in rendered and ":x:" not in rendered


def test_the_already_running_notification_mentions_the_person() -> None:
    message = blocks.already_running_message(RUN)
    assert message.text.startswith("<@U0ONCALL01> is already rolling checkout back")
    cli = blocks.already_running_message(dataclasses.replace(RUN, actor="os user bob"))
    assert cli.text.startswith("os user bob is already rolling")


def test_thread_messages_snapshots() -> None:
    progress = Progress(Phase.UPDATING, "Waiting for rollout", 3, 2, 3, 3, 4, 4)
    done = Progress(
        Phase.COMPLETE, 'deployment "checkout" successfully rolled out', 3, 3, 3, 3, 3, 4
    )
    stalled = Progress(Phase.FAILED, "exceeded its progress deadline", 3, 1, 3, 3, 4, 4)
    check_snapshot(
        "thread",
        {
            "started": message_dict(blocks.started_message(RUN, 3, "5xx spike", "shop")),
            "progress": message_dict(blocks.progress_message(progress, 12.4, "2.13.0")),
            "progress_succeeded": message_dict(
                blocks.progress_message(done, 102, "2.13.0", Ending.SUCCEEDED)
            ),
            "progress_failed": message_dict(
                blocks.progress_message(stalled, 620, "2.13.0", Ending.FAILED)
            ),
            "progress_unknown": message_dict(
                blocks.progress_message(progress, 42, "2.13.0", Ending.UNKNOWN)
            ),
            "succeeded": message_dict(
                blocks.outcome_message("checkout", "2.13.0", "shop", "checkout", done, 102)
            ),
            "failed": message_dict(
                blocks.outcome_message("checkout", "2.13.0", "shop", "checkout", stalled, 620)
            ),
            "already_running": message_dict(blocks.already_running_message(RUN)),
            "stale": message_dict(
                blocks.stale_message("checkout", "the deployment moved", refreshed=True)
            ),
            "stale_from_an_alert": message_dict(
                blocks.stale_message("checkout", "the deployment moved", refreshed=False)
            ),
        },
    )


def test_thirty_revisions_of_six_containers_stay_inside_slacks_limits() -> None:
    big = demo_history(revisions=30, containers=6)
    message = blocks.versions_message(view(big, limit=20))
    assert len(message.blocks) <= 50
    for block in message.blocks:
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= 3000
        accessory = block.get("accessory") or {}
        if accessory:
            assert len(accessory["text"]["text"]) <= 75
            assert len(accessory["value"]) <= 2000
            assert len(accessory["action_id"]) <= 255
    # The history view lists them all without buttons, split across sections.
    history = blocks.history_message(view(big))
    assert len(history.blocks) <= 50
    assert all(len(b["text"]["text"]) <= 3000 for b in history.blocks)
    assert "older revisions not shown" in json.dumps(message.blocks)


def test_long_versions_and_images_are_clipped_not_refused() -> None:
    tpl = template("x" * 500, image="registry.example.com/" + "a" * 3000 + ":tag", sidecar=None)
    rss = [
        replicaset(tpl, revision=1, pod_hash="a", created="2026-11-20T10:00:00Z"),
        replicaset(template("2"), revision=2, pod_hash="b", created="2026-11-21T10:00:00Z"),
    ]
    history = parse_history(deployment(template("2"), revision=2), rss)
    message = blocks.versions_message(view(history))
    button = next(b["accessory"] for b in message.blocks if b.get("accessory"))
    assert len(button["text"]["text"]) == 75
    assert button["text"]["text"].endswith("…")
    assert RollbackButton.decode(button["value"]).target_replicaset == "checkout-a"


def test_mrkdwn_in_names_is_escaped() -> None:
    evil = blocks.stale_message("<!channel> & co", "<@U1> did it", refreshed=False)
    assert "&lt;!channel&gt; &amp; co" in json.dumps(evil.blocks)
    assert "<!channel>" not in json.dumps(evil.blocks)


def test_text_from_a_lease_cannot_mention_the_channel() -> None:
    # Anyone who may write Leases writes these annotations: the bot reads them as data.
    hostile = dataclasses.replace(
        RUN, actor="!channel> <https://evil.example|click", to_version="<!here>"
    )
    for message in (
        blocks.already_running_message(hostile),
        blocks.locked_message(view(demo_history()), hostile),
    ):
        rendered = json.dumps(message_dict(message))
        assert "<!channel>" not in rendered and "<!here>" not in rendered
        assert "<https://evil" not in rendered
        assert "<@!channel>" not in rendered


def test_losing_sight_of_a_rollout_is_not_called_a_failure() -> None:
    last = Progress(
        phase=Phase.UPDATING,
        message="Waiting for rollout",
        desired=3,
        updated=1,
        ready=3,
        available=3,
        total=4,
        revision=4,
    )
    message = blocks.outcome_message(
        "checkout", "2.13.0", "shop", "checkout", last, 42.0, "the API did not answer", unknown=True
    )
    text = json.dumps(message_dict(message))
    assert "Lost sight of the rollback" in text and "at 1/3 updated" in text
    assert "kubectl -n shop rollout status deployment/checkout" in text
    assert "failed" not in text and ":x:" not in text
