"""Alert → catalog service: labels of real webhook payloads, and Alertmanager's real Slack posts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.alerts.mapping import (
    AlertMatch,
    BadPattern,
    Mapped,
    ServiceTarget,
    Unmapped,
    compile_patterns,
    map_labels,
    message_key,
    route_alerts,
    slack_alert,
    targets_from_catalog,
)
from bot.domain.alerts.webhook import parse_webhook
from tests.paths import ALERTMANAGER_FIXTURES

FIXTURES = ALERTMANAGER_FIXTURES

TARGETS = (
    ServiceTarget("cart", "shop", "cart"),
    ServiceTarget("checkout", "shop", "checkout"),
    ServiceTarget("search", "search", "api", AlertMatch(service_label="app")),
)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def bot_message(name: str) -> dict[str, Any]:
    """Alertmanager's incoming-webhook post as Slack delivers it to the bot: a bot_message."""
    posted = fixture(name)
    return {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B0AM00001",
        "username": posted["username"],
        "text": "",
        "ts": "1764216000.000100",
        "channel": "C0SHOPALRT",
        "attachments": [{"id": 1, **a} for a in posted["attachments"]],
    }


# -- labels --------------------------------------------------------------------------------


def test_the_service_label_names_a_catalog_entry() -> None:
    assert map_labels({"service": "checkout"}, TARGETS) == Mapped("checkout", "service label")


def test_namespace_and_deployment_labels_as_kube_state_metrics_names_them() -> None:
    labels = {"namespace": "shop", "deployment": "cart", "job": "kube-state-metrics"}
    assert map_labels(labels, TARGETS) == Mapped("cart", "namespace and deployment labels")


def test_the_service_label_comes_first() -> None:
    labels = {"service": "checkout", "namespace": "shop", "deployment": "cart"}
    assert map_labels(labels, TARGETS) == Mapped("checkout", "service label")


def test_an_unknown_service_label_falls_back_to_namespace_and_deployment() -> None:
    labels = {"service": "payments", "namespace": "shop", "deployment": "cart"}
    assert map_labels(labels, TARGETS) == Mapped("cart", "namespace and deployment labels")


def test_an_entry_may_rename_its_labels() -> None:
    assert map_labels({"app": "search"}, TARGETS) == Mapped("search", "service label")
    # the default label does not name an entry that renamed it
    assert isinstance(map_labels({"service": "search"}, TARGETS), Unmapped)
    renamed = (
        ServiceTarget(
            "web",
            "front",
            "web",
            AlertMatch(namespace_label="exported_namespace", deployment_label="workload"),
        ),
    )
    labels = {"exported_namespace": "front", "workload": "web", "namespace": "monitoring"}
    assert map_labels(labels, renamed) == Mapped("web", "namespace and deployment labels")
    assert isinstance(map_labels({"namespace": "front", "deployment": "web"}, renamed), Unmapped)


def test_half_a_workload_is_not_enough() -> None:
    assert isinstance(map_labels({"namespace": "shop"}, TARGETS), Unmapped)
    assert isinstance(map_labels({"deployment": "cart"}, TARGETS), Unmapped)


def test_unmapped_says_why() -> None:
    assert map_labels({"service": "payments"}, TARGETS) == Unmapped(
        "no catalog service matches service='payments'"
    )
    reason = map_labels({"namespace": "shop", "deployment": "orders"}, TARGETS)
    assert reason == Unmapped("no catalog service matches namespace='shop', deployment='orders'")
    reason = map_labels({"alertname": "NodeDown", "instance": "n1"}, TARGETS)
    assert isinstance(reason, Unmapped)
    assert "no service label" in reason.reason and "alertname, instance" in reason.reason
    assert map_labels({"service": "x"}, ()) == Unmapped("the service catalog is empty")


def test_ambiguity_is_unmapped_not_guessed() -> None:
    twins = (
        ServiceTarget("checkout-eu", "shop", "checkout"),
        ServiceTarget("checkout-us", "shop", "checkout"),
    )
    result = map_labels({"namespace": "shop", "deployment": "checkout"}, twins)
    assert isinstance(result, Unmapped)
    assert "checkout-eu, checkout-us" in result.reason
    assert map_labels({"service": "checkout-us"}, twins) == Mapped("checkout-us", "service label")
    crossed = (
        ServiceTarget("a", "n", "a"),
        ServiceTarget("b", "n", "b", AlertMatch(service_label="app")),
    )
    result = map_labels({"service": "a", "app": "b"}, crossed)
    assert isinstance(result, Unmapped) and "several" in result.reason


def test_route_real_payloads() -> None:
    single = parse_webhook((FIXTURES / "firing_single.json").read_bytes())
    routing = route_alerts(single.alerts, TARGETS)
    assert routing.services == ("checkout",)
    assert routing.unmapped == ()

    several = parse_webhook((FIXTURES / "firing_several.json").read_bytes())
    routing = route_alerts(several.alerts, TARGETS)
    assert routing.services == ("cart",)
    assert len(routing.by_service["cart"]) == 4

    unknown = parse_webhook((FIXTURES / "unknown_labels.json").read_bytes())
    routing = route_alerts(unknown.alerts, TARGETS)
    assert routing.services == ()
    ((alert, why),) = routing.unmapped
    assert alert.name == "NodeFilesystemAlmostOutOfSpace"
    assert "no service label" in why.reason


def test_a_group_spanning_services_is_split_in_order() -> None:
    data = fixture("firing_several.json")
    data["alerts"][1]["labels"]["deployment"] = "checkout"
    data["alerts"][2]["labels"] = {"alertname": "X"}
    message = parse_webhook(json.dumps(data).encode())
    routing = route_alerts(message.alerts, TARGETS)
    assert routing.services == ("cart", "checkout")
    assert [len(routing.by_service[s]) for s in routing.services] == [2, 1]
    assert len(routing.unmapped) == 1


def test_message_keys_separate_services_of_one_group() -> None:
    key = '{}:{alertname="X"}'
    assert message_key(key, "cart") != message_key(key, "checkout")
    assert message_key(key, "cart") == message_key(key, "cart")
    assert json.loads(message_key(key, "cart")) == [key, "cart"]


@dataclass(frozen=True)
class Entry:
    namespace: str
    deployment: str
    alerts: AlertMatch | None = None


def test_targets_from_catalog_entries() -> None:
    targets = targets_from_catalog(
        {"web": Entry("front", "web"), "api": Entry("back", "api", AlertMatch(service_label="app"))}
    )
    assert [t.name for t in targets] == ["api", "web"]
    assert targets[0].match.service_label == "app"
    assert targets[1].match == AlertMatch()


def test_alert_match_checks_label_names() -> None:
    assert AlertMatch().model_dump() == {
        "service_label": "service",
        "namespace_label": "namespace",
        "deployment_label": "deployment",
    }
    with pytest.raises(ValidationError):
        AlertMatch(service_label="not a label")
    with pytest.raises(ValidationError):
        AlertMatch.model_validate({"service_lable": "app"})  # typo: extra keys are refused


# -- Alertmanager's Slack messages ----------------------------------------------------------


def test_the_recommended_template_names_namespace_and_deployment() -> None:
    found = slack_alert(bot_message("slack_recommended.json"), TARGETS)
    assert found is not None
    assert found.status == "firing"
    assert found.count == 2
    assert found.title == "[FIRING:2] HighErrorRate checkout shop (critical)"
    assert found.service == "checkout"


def test_the_default_template_title_names_the_service() -> None:
    found = slack_alert(bot_message("slack_default.json"), TARGETS)
    assert found is not None
    assert found.service == "checkout"


def test_a_resolved_message() -> None:
    event = bot_message("slack_recommended.json")
    event["attachments"][0]["title"] = "[RESOLVED] HighErrorRate checkout shop (critical)"
    found = slack_alert(event, TARGETS)
    assert found is not None
    assert (found.status, found.count, found.service) == ("resolved", None, "checkout")


def test_service_lines_in_markdown_and_fields() -> None:
    event = bot_message("slack_default.json")
    attachment = event["attachments"][0]
    attachment["title"] = "[FIRING:1] HighErrorRate"
    attachment["text"] = "*Summary:* errors\n• *service:* `cart`"
    assert slack_alert(event, TARGETS) is not None
    assert slack_alert(event, TARGETS).service == "cart"  # type: ignore[union-attr]
    attachment["text"] = ""
    attachment["fields"] = [
        {"title": "namespace", "value": "shop", "short": True},
        {"title": "deployment", "value": "checkout", "short": True},
    ]
    assert slack_alert(event, TARGETS).service == "checkout"  # type: ignore[union-attr]


def test_two_services_in_one_message_are_not_guessed() -> None:
    event = bot_message("slack_default.json")
    event["attachments"][0]["title"] = "[FIRING:2] HighErrorRate"
    event["attachments"][0]["text"] = "service: cart\nservice: checkout\n"
    found = slack_alert(event, TARGETS)
    assert found is not None
    assert found.services == ("cart", "checkout")
    assert found.service is None


def test_names_outside_the_catalog_are_not_services() -> None:
    event = bot_message("slack_default.json")
    event["attachments"][0]["title"] = "[FIRING:1] HighErrorRate payments (critical)"
    event["attachments"][0]["text"] = "service: payments"
    found = slack_alert(event, TARGETS)
    assert found is not None
    assert found.services == ()


def test_configured_patterns_come_first() -> None:
    patterns = compile_patterns(
        [
            r"^Workload: (?P<namespace>[a-z0-9-]+)/(?P<deployment>[a-z0-9.-]+)$",
            r"svc=(?P<service>\S+)",
        ]
    )
    event = bot_message("slack_recommended.json")
    event["attachments"][0]["text"] = "Workload: shop/cart\nnamespace: shop\ndeployment: checkout"
    assert slack_alert(event, TARGETS, patterns).service == "cart"  # type: ignore[union-attr]
    event["attachments"][0]["text"] = "svc=search"
    assert slack_alert(event, TARGETS, patterns).service == "search"  # type: ignore[union-attr]
    # a pattern that finds nothing in the catalog leaves the defaults to work
    event["attachments"][0]["text"] = "svc=payments\nservice: cart"
    assert slack_alert(event, TARGETS, patterns).service == "cart"  # type: ignore[union-attr]


def test_bad_patterns_are_refused_with_a_sentence() -> None:
    with pytest.raises(BadPattern, match="not valid"):
        compile_patterns(["(?P<service>"])
    with pytest.raises(BadPattern, match=r"needs a named group \(\?P<service>…\)"):
        compile_patterns([r"(?P<namespace>\w+)"])


def test_other_messages_are_not_alerts() -> None:
    assert slack_alert({"type": "message", "text": "[FIRING:1] not an attachment"}, TARGETS) is None
    assert slack_alert({"attachments": [{"title": "Deploy finished"}]}, TARGETS) is None
    assert slack_alert({"attachments": "garbage"}, TARGETS) is None
    assert slack_alert({"attachments": [None, 3]}, TARGETS) is None


def test_the_fallback_is_read_when_there_is_no_title() -> None:
    event = bot_message("slack_default.json")
    del event["attachments"][0]["title"]
    found = slack_alert(event, TARGETS)
    assert found is not None and found.service == "checkout"


def test_a_custom_title_pattern() -> None:
    event = bot_message("slack_default.json")
    event["attachments"][0]["title"] = ":fire: ALERT HighErrorRate checkout"
    assert slack_alert(event, TARGETS) is None
    custom = re.compile(r"^:fire: (?P<status>ALERT|OK)")
    found = slack_alert(event, TARGETS, title_pattern=custom)
    assert found is not None and found.status == "firing" and found.service == "checkout"
