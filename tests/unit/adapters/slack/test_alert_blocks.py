"""The alert message's Block Kit, from real webhook payloads and a real-shaped history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.adapters.kube.parsing import parse_history
from bot.adapters.slack.alert_blocks import (
    MAX_ALERTS_LISTED,
    alert_message,
    alert_reply,
    resolved_note,
)
from bot.adapters.slack.blocks import clicked_known_bad
from bot.adapters.slack.payloads import RollbackButton
from bot.adapters.slack.render import Message
from bot.domain.alerts.advice import advise
from bot.domain.alerts.views import AlertGroupView
from bot.domain.alerts.webhook import WebhookMessage, earliest_start, parse_webhook
from bot.domain.rollback.models import History, RunInfo
from bot.domain.rollback.planning import previous_revision
from bot.domain.rollback.views import ServiceView
from tests.builders import deployment, replicaset, template
from tests.paths import ALERTMANAGER_FIXTURES

FIXTURES = ALERTMANAGER_FIXTURES
NOW = datetime(2026, 11, 27, 4, 5, tzinfo=UTC)
VERSIONS = {1: "2.12.0", 2: "2.13.0", 3: "2.14.0"}


def history(revisions: int = 3, created: str = "2026-11-27T03:46:00Z") -> History:
    rss = [
        replicaset(
            template(VERSIONS[n]),
            revision=n,
            pod_hash=f"h{n}",
            created=created if n == revisions else f"2026-11-2{n}T10:00:00Z",
            replicas=3 if n == revisions else 0,
        )
        for n in range(1, revisions + 1)
    ]
    return parse_history(deployment(template(VERSIONS[revisions]), revision=revisions), rss)


def service_view(h: History | None = None, running: RunInfo | None = None) -> ServiceView:
    return ServiceView(
        service="checkout",
        namespace="shop",
        cluster="prod-eu",
        history=h or history(),
        asked_by="alertmanager",
        taken_at=NOW,
        running=running,
    )


def webhook(name: str, change: Any = None) -> WebhookMessage:
    data = json.loads((FIXTURES / name).read_text())
    if change is not None:
        change(data)
    return parse_webhook(json.dumps(data).encode())


def group_view(
    message: WebhookMessage, sv: ServiceView | None = None, *, with_advice: bool = True
) -> AlertGroupView:
    sv = sv or service_view()
    started = earliest_start(message.alerts)
    assert started is not None
    advice = advise(started, sv.history.went_out, sv.history.deployment.version)
    return AlertGroupView(
        service="checkout",
        group=message,
        alerts=message.alerts,
        taken_at=NOW,
        service_view=sv,
        advice=advice if with_advice else None,
    )


def texts(message: Message) -> str:
    """Every text of the blocks, flattened, to search in."""
    found: list[str] = []

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


def buttons(message: Message) -> list[dict[str, Any]]:
    return [
        element
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_a_firing_alert_offers_the_previous_version() -> None:
    message = alert_message(group_view(webhook("firing_single.json")))
    assert message.blocks[0]["type"] == "header"
    assert message.blocks[0]["text"]["text"] == "[FIRING:1] HighErrorRate · checkout"
    body = texts(message)
    assert "*Severity*\n:red_circle: critical" in body
    assert "<!date^" in body  # since when, in each reader's time zone
    assert "*5xx ratio above 5% on checkout*" in body  # summary
    assert "7.3% of requests to checkout failed" in body  # description
    assert "`shop/checkout` on `prod-eu`" in body
    assert "2.14.0 (revision 3)" in body
    assert (
        "Likely caused by the deploy of 2.14.0: it went out 12 minutes before the alert started."
        in body
    )
    (button,) = buttons(message)
    assert button["action_id"] == "rollback:to:2"
    assert button["text"]["text"] == "Roll back to 2.13.0"
    value = RollbackButton.decode(button["value"])
    assert (value.service, value.target_revision, value.source) == ("checkout", 2, "alert")
    assert value.from_version == "2.14.0"
    assert "<http://alertmanager.example.com:9093|Alertmanager>" in body
    assert "|Source>" in body
    assert message.text == (
        "[FIRING:1] HighErrorRate · checkout: likely caused by the deploy of 2.14.0"
    )


def test_no_recent_deploy_still_offers_the_button() -> None:
    sv = service_view(history(created="2026-11-20T10:00:00Z"))
    message = alert_message(group_view(webhook("firing_single.json"), sv))
    assert "No recent deploy: 2.14.0 went out 6 days before the alert started" in texts(message)
    assert len(buttons(message)) == 1
    assert message.text.endswith("no recent deploy; rollback may not help")


def test_the_generator_link_is_escaped_for_slack() -> None:
    message = alert_message(group_view(webhook("firing_single.json")))
    body = texts(message)
    assert 'g0.expr=sum(rate(http_requests_total{code=~"5.."}[5m]))&amp;g0.tab=1|Source>' in body


def test_a_resolved_group_says_for_how_long_and_drops_the_button() -> None:
    view = group_view(webhook("resolved.json"))
    message = alert_message(view)
    assert message.blocks[0]["text"]["text"] == "[RESOLVED] HighErrorRate · checkout"
    body = texts(message)
    assert "*Resolved*\n<!date^" in body
    assert "after 23m07s" in body
    assert buttons(message) == []
    assert "Likely caused" not in body
    assert message.text == "[RESOLVED] HighErrorRate · checkout: resolved after 23m07s"
    note = resolved_note(view)
    assert note.text == "HighErrorRate on checkout resolved after 23m07s"
    assert "*HighErrorRate* on *checkout* resolved <!date^" in texts(note)


def test_several_alerts_are_listed_with_what_tells_them_apart() -> None:
    message = alert_message(group_view(webhook("firing_several.json")))
    assert message.blocks[0]["text"]["text"].startswith("[FIRING:3] KubeDeploymentReplicasMismatch")
    body = texts(message)
    assert body.count(":red_circle: Deployment shop/cart has not matched") == 3
    assert body.count(":white_check_mark: Deployment shop/cart") == 1
    assert "`instance=10.0.3.0:8080`" in body
    assert "*Severity*\n:warning: warning" in body


def test_many_alerts_are_capped() -> None:
    def grow(data: dict[str, Any]) -> None:
        first = data["alerts"][0]
        data["alerts"] = [
            {**first, "labels": {**first["labels"], "instance": f"10.0.9.{i}:8080"}}
            for i in range(30)
        ]

    message = alert_message(group_view(webhook("firing_several.json", grow)))
    body = texts(message)
    assert body.count(":red_circle: ") == MAX_ALERTS_LISTED
    assert f"…and {30 - MAX_ALERTS_LISTED} more alerts in this group" in body
    assert len(message.blocks) <= 50


def test_truncated_alerts_are_announced() -> None:
    message = alert_message(group_view(webhook("truncated.json")))
    assert "Alertmanager left out 3 more alerts of this group" in texts(message)


def test_a_rollback_in_flight_replaces_the_button() -> None:
    run = RunInfo("checkout", "U0ALICE01", "2.14.0", "2.13.0", 2, NOW - timedelta(seconds=40))
    message = alert_message(group_view(webhook("firing_single.json"), service_view(running=run)))
    assert buttons(message) == []
    assert "<@U0ALICE01> is rolling back to *2.13.0*" in texts(message)


def test_nothing_to_roll_back_to() -> None:
    sv = service_view(history(revisions=1))
    assert previous_revision(sv.history) is None
    message = alert_message(group_view(webhook("firing_single.json"), sv))
    assert buttons(message) == []
    assert "No previous revision is kept" in texts(message)


def test_a_cluster_that_could_not_be_read() -> None:
    message = webhook("firing_single.json")
    view = AlertGroupView(
        service="checkout",
        group=message,
        alerts=message.alerts,
        taken_at=NOW,
        problem="reading deployment shop/checkout: the Kubernetes API did not answer within 10s",
    )
    rendered = alert_message(view)
    body = texts(rendered)
    assert "*Deployed now*\nunknown: reading deployment shop/checkout" in body
    assert buttons(rendered) == []
    assert rendered.text == "[FIRING:1] HighErrorRate · checkout"


def test_only_web_links_are_linked_and_text_is_escaped() -> None:
    def poison(data: dict[str, Any]) -> None:
        data["alerts"][0]["generatorURL"] = "javascript:alert(1)"
        data["externalURL"] = "http://am.example.com/a|b"
        data["commonAnnotations"]["summary"] = "<!channel> & <http://evil|click>"

    body = texts(alert_message(group_view(webhook("firing_single.json", poison))))
    assert "javascript:" not in body
    assert "<http://am.example.com/a%7Cb|Alertmanager>" in body
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in body
    assert "<!channel>" not in body


def test_long_texts_are_clipped_within_slack_limits() -> None:
    def bloat(data: dict[str, Any]) -> None:
        data["commonAnnotations"]["summary"] = "s" * 5000
        data["commonAnnotations"]["description"] = "d" * 5000
        data["commonLabels"]["alertname"] = "A" * 500
        data["alerts"][0]["labels"]["severity"] = "x" * 3000
        data["commonLabels"]["severity"] = "x" * 3000

    message = alert_message(group_view(webhook("firing_single.json", bloat)))
    assert len(message.blocks[0]["text"]["text"]) <= 150
    for block in message.blocks:
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= 3000
            for field in block.get("fields", []):
                assert len(field["text"]) <= 2000


def test_the_reply_under_alertmanagers_own_message() -> None:
    sv = service_view()
    advice = advise(NOW - timedelta(minutes=2), sv.history.went_out, "2.14.0")
    reply = alert_reply(sv, "[FIRING:2] HighErrorRate checkout", advice)
    body = texts(reply)
    assert "This alert is about *checkout* (`shop/checkout` on `prod-eu`)" in body
    assert "*2.14.0* (revision 3)" in body
    assert "Likely caused by the deploy of 2.14.0" in body
    (button,) = buttons(reply)
    assert RollbackButton.decode(button["value"]).source == "alert"
    assert reply.text == (
        "checkout: likely caused by the deploy of 2.14.0 ([FIRING:2] HighErrorRate checkout)"
    )
    lone = alert_reply(service_view(history(revisions=1)), "[FIRING:1] X", None)
    assert buttons(lone) == []
    assert lone.text == "checkout: 2.12.0 deployed ([FIRING:1] X)"


def test_went_out_is_the_current_replicasets_creation() -> None:
    assert history().went_out == datetime(2026, 11, 27, 3, 46, tzinfo=UTC)


def test_the_fallback_text_notifications_show_is_escaped_too() -> None:
    def poison(data: dict[str, Any]) -> None:
        for where in (data["commonLabels"], data["groupLabels"], data["alerts"][0]["labels"]):
            where["alertname"] = "<!channel> <https://evil.example|click>"

    message = alert_message(group_view(webhook("firing_single.json", poison)))
    assert "<!channel>" not in message.text
    assert "<https://evil" not in message.text
    assert "&lt;!channel&gt;" in message.text
    resolved = resolved_note(group_view(webhook("firing_single.json", poison)))
    assert "<!channel>" not in resolved.text


def rolled_back_from_2_14_0() -> History:
    """After a rollback from 2.14.0 to 2.13.0: the version `rollout undo` goes back to now is
    the one just rolled back from."""
    notes = {
        "rollback-bot.io/from-version": "2.14.0",
        "rollback-bot.io/rolled-back-by": "U0ONCALL01",
    }
    rss = [
        replicaset(template("2.12.0"), revision=1, pod_hash="h1", created="2026-11-21T10:00:00Z"),
        replicaset(template("2.14.0"), revision=3, pod_hash="h3", created="2026-11-23T10:00:00Z"),
        replicaset(
            template("2.13.0"),
            revision=4,
            pod_hash="h2",
            created="2026-11-27T03:46:00Z",
            annotations=notes,
            replicas=3,
        ),
    ]
    return parse_history(deployment(template("2.13.0"), revision=4, annotations=notes), rss)


def test_an_alert_offers_a_known_bad_version_as_a_redeploy() -> None:
    sv = service_view(rolled_back_from_2_14_0())
    advice = advise(NOW - timedelta(minutes=2), sv.history.went_out, "2.13.0")
    for message in (
        alert_message(group_view(webhook("firing_single.json"), sv)),
        alert_reply(sv, "[FIRING:1] HighErrorRate checkout", advice),
    ):
        (block,) = [b for b in message.blocks if b["type"] == "actions"]
        (button,) = block["elements"]
        assert button["text"]["text"] == "Redeploy 2.14.0 (known bad)"
        assert "style" not in button  # not the red of a way out
        assert RollbackButton.decode(button["value"]).target_revision == 3
        assert clicked_known_bad(block["block_id"])
    good = alert_message(group_view(webhook("firing_single.json")))
    (block,) = [b for b in good.blocks if b["type"] == "actions"]
    assert block["elements"][0]["style"] == "danger"
    assert not clicked_known_bad(block.get("block_id"))


def test_an_alert_does_not_offer_a_version_the_migration_guard_blocks() -> None:
    # 2.14.0 (revision 3) migrated the schema irreversibly: 2.13.0 cannot run against it.
    current = template(VERSIONS[3])
    current["metadata"]["annotations"] = {"rollback-bot.io/migration": "irreversible"}
    rss = [
        replicaset(template(VERSIONS[n]), revision=n, pod_hash=f"h{n}",
                   created=f"2026-11-2{n}T10:00:00Z")
        for n in (1, 2)
    ]  # fmt: skip
    rss.append(replicaset(current, revision=3, pod_hash="h3", created="2026-11-27T03:46:00Z"))
    sv = service_view(parse_history(deployment(current, revision=3), rss))
    advice = advise(NOW - timedelta(minutes=2), sv.history.went_out, "2.14.0")
    for message in (
        alert_message(group_view(webhook("firing_single.json"), sv)),
        alert_reply(sv, "[FIRING:1] HighErrorRate checkout", advice),
    ):
        (button,) = buttons(message)
        assert button["text"]["text"] == "Override migration guard"
        decoded = RollbackButton.decode(button["value"])
        assert (decoded.target_revision, decoded.source) == (2, "alert")
        assert "2.13.0 cannot run against the schema migrated by 2.14.0 (revision 3)" in texts(
            message
        )
