"""The real Alertmanager (Debian's prometheus-alertmanager) drives the harness: its webhook
bodies pass `parse_webhook`, it sends the bearer credentials we configure, it resolves, truncates
and retries as documented, and the Slack template of docs/alertmanager.md maps to a service."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.domain.alerts.mapping import ServiceTarget, route_alerts, slack_alert
from bot.domain.alerts.webhook import parse_webhook
from tests.integration.alertmanager import (
    DEFAULT_PORT,
    AlertmanagerConfig,
    Delivery,
    Receiver,
    alert,
    receiving,
    requires_alertmanager,
    running_alertmanager,
)

pytestmark = requires_alertmanager

TOKEN = "test-token-3f9a"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "alertmanager.md"
TARGETS = (ServiceTarget("checkout", "shop", "checkout"), ServiceTarget("cart", "shop", "cart"))
LABELS = {"alertname": "HighErrorRate", "namespace": "shop", "deployment": "checkout"}


def documented_slack_config() -> dict[str, Any]:
    """The `slack_configs` entry docs/alertmanager.md recommends, exactly as written there."""
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"<!-- slack-config:.*?-->\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert match, "docs/alertmanager.md lost its tested slack-config block"
    config: dict[str, Any] = yaml.safe_load(match.group(1))["slack_configs"][0]
    return config


def total(n: int) -> Any:
    def check(delivery: Delivery) -> bool:
        body = delivery.json()
        return len(body["alerts"]) + int(body.get("truncatedAlerts", 0)) == n

    return check


async def test_firing_then_resolved_webhooks_parse(tmp_path: Path) -> None:
    async with receiving() as receiver:
        config = AlertmanagerConfig(webhook_url=f"{receiver.url}/alertmanager", token=TOKEN)
        async with running_alertmanager(tmp_path, config) as am:
            assert am.port != DEFAULT_PORT
            async with am.session.get(f"{am.url}/api/v2/status") as response:
                status = await response.json()
            assert status["cluster"]["status"] == "disabled"  # gossip off: nothing on 9094

            started = datetime.now(UTC) - timedelta(minutes=7)
            firing = alert(
                {**LABELS, "severity": "critical"},
                annotations={"summary": "5xx above 5%"},
                starts_at=started,
            )
            await am.post_alerts([firing])
            delivery = await receiver.next("/alertmanager")
            assert delivery.headers["Authorization"] == f"Bearer {TOKEN}"
            assert delivery.headers["Content-Type"] == "application/json"
            assert delivery.headers["User-Agent"].startswith("Alertmanager/")
            message = parse_webhook(delivery.body)
            assert message.status == "firing"
            assert message.group_key == (
                '{}:{alertname="HighErrorRate", deployment="checkout", namespace="shop"}'
            )
            assert message.external_url == am.url
            (only,) = message.alerts
            assert only.ends_at is None
            assert abs((only.starts_at - started).total_seconds()) < 0.001
            assert route_alerts(message.alerts, TARGETS).services == ("checkout",)

            ended = datetime.now(UTC)
            await am.post_alerts([{**firing, "endsAt": ended.isoformat()}])
            delivery = await receiver.until(
                "/alertmanager", lambda d: d.json()["status"] == "resolved"
            )
            resolved = parse_webhook(delivery.body)
            assert resolved.group_key == message.group_key
            assert resolved.alerts[0].ends_at is not None
            assert abs((resolved.alerts[0].ends_at - ended).total_seconds()) < 0.001
        assert am.process.returncode is not None  # stopped, nothing left behind


async def test_several_alerts_and_truncation(tmp_path: Path) -> None:
    async with receiving() as receiver:
        config = AlertmanagerConfig(
            webhook_url=f"{receiver.url}/alertmanager", token=TOKEN, max_alerts=2
        )
        async with running_alertmanager(tmp_path, config) as am:
            await am.post_alerts(
                [alert({**LABELS, "pod": f"checkout-{i}"}, annotations={}) for i in range(5)]
            )
            delivery = await receiver.until("/alertmanager", total(5))
            message = parse_webhook(delivery.body)
            assert len(message.alerts) == 2
            assert message.truncated_alerts == 3
            assert message.total_alerts == 5


async def test_a_failed_delivery_is_retried(tmp_path: Path) -> None:
    answers = iter([500])
    receiver = Receiver(respond=lambda _d: next(answers, 200))
    async with receiving(receiver):
        config = AlertmanagerConfig(webhook_url=f"{receiver.url}/alertmanager", token=TOKEN)
        async with running_alertmanager(tmp_path, config) as am:
            await am.post_alerts([alert(LABELS)])
            first = await receiver.next("/alertmanager")
            again = await receiver.next("/alertmanager")
            # the same group, the same alert: handling must be idempotent
            assert parse_webhook(again.body).group_key == parse_webhook(first.body).group_key
            assert parse_webhook(again.body).alerts == parse_webhook(first.body).alerts


async def test_the_documented_slack_template_names_the_service(tmp_path: Path) -> None:
    async with receiving() as receiver:
        slack = documented_slack_config()
        slack.pop("api_url_file")
        slack["api_url"] = f"{receiver.url}/slack"
        config = AlertmanagerConfig(
            webhook_url=f"{receiver.url}/alertmanager", token=TOKEN, slack=slack
        )
        async with running_alertmanager(tmp_path, config) as am:
            alerts = [
                alert({**LABELS, "pod": f"checkout-{i}"}, annotations={"summary": "5xx above 5%"})
                for i in range(2)
            ]
            await am.post_alerts(alerts)
            posted = (
                await receiver.until("/slack", lambda d: "FIRING:2" in d.body.decode())
            ).json()
            event = {"type": "message", "subtype": "bot_message", **posted}
            found = slack_alert(event, TARGETS)
            assert found is not None
            assert (found.status, found.count, found.service) == ("firing", 2, "checkout")
            assert "namespace: shop\ndeployment: checkout" in posted["attachments"][0]["text"]

            now = datetime.now(UTC).isoformat()
            await am.post_alerts([{**a, "endsAt": now} for a in alerts])
            posted = (
                await receiver.until("/slack", lambda d: "RESOLVED" in d.body.decode())
            ).json()
            found = slack_alert({"subtype": "bot_message", **posted}, TARGETS)
            assert found is not None
            assert (found.status, found.service) == ("resolved", "checkout")
