"""The webhook body, from real Alertmanager 0.25 payloads (tests/fixtures/alertmanager)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.alerts.webhook import (
    DEFAULT_MAX_BYTES,
    BadWebhook,
    WebhookMessage,
    earliest_start,
    group_alert_name,
    group_severity,
    latest_end,
    parse_webhook,
)
from tests.paths import ALERTMANAGER_FIXTURES

FIXTURES = ALERTMANAGER_FIXTURES


def name_of(message: WebhookMessage) -> str:
    return group_alert_name(message.alerts, message.common_labels, message.group_labels)


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw(name))
    return data


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()


def rejected(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> BadWebhook:
    with pytest.raises(BadWebhook) as caught:
        parse_webhook(data, max_bytes)
    return caught.value


def test_one_firing_alert() -> None:
    message = parse_webhook(raw("firing_single.json"))
    assert message.version == "4"
    assert message.status == "firing"
    assert message.group_key == '{}:{alertname="HighErrorRate", service="checkout"}'
    assert message.receiver == "rollback-bot"
    assert message.external_url == "http://alertmanager.example.com:9093"
    assert message.truncated_alerts == 0
    (alert,) = message.alerts
    assert alert.status == "firing" and alert.firing
    assert alert.labels["service"] == "checkout"
    assert alert.name == "HighErrorRate"
    assert alert.severity == "critical"
    assert alert.summary == "5xx ratio above 5% on checkout"
    assert alert.starts_at == datetime(2026, 11, 27, 3, 58, 12, 345678, tzinfo=UTC)
    assert alert.ends_at is None  # Go's zero time: not set
    assert alert.generator_url.startswith("http://prometheus.example.com:9090/graph?")
    assert alert.fingerprint == "ee4797c6de45ec0b"
    assert name_of(message) == "HighErrorRate"
    assert group_severity(message.alerts) == "critical"
    assert message.common_annotations["summary"] == "5xx ratio above 5% on checkout"
    assert earliest_start(message.alerts) == alert.starts_at
    assert latest_end(message.alerts) is None


def test_resolved() -> None:
    message = parse_webhook(raw("resolved.json"))
    assert message.status == "resolved"
    (alert,) = message.alerts
    assert not alert.firing
    assert alert.ends_at == datetime(2026, 11, 27, 4, 21, 19, 345678, tzinfo=UTC)
    assert latest_end(message.alerts) == alert.ends_at


def test_several_alerts_with_one_already_resolved() -> None:
    message = parse_webhook(raw("firing_several.json"))
    assert message.status == "firing"
    assert len(message.alerts) == 4
    assert len([a for a in message.alerts if a.firing]) == 3
    assert earliest_start(message.alerts) == datetime(2026, 11, 27, 3, 58, 12, 345678, tzinfo=UTC)
    assert latest_end(message.alerts) is None  # still firing
    assert message.common_labels["deployment"] == "cart"
    assert message.common_labels["namespace"] == "shop"
    assert message.common_labels["severity"] == "warning"
    assert {a.labels["instance"] for a in message.alerts} == {f"10.0.3.{i}:8080" for i in range(4)}


def test_truncated_alerts_are_counted() -> None:
    message = parse_webhook(raw("truncated.json"))
    assert len(message.alerts) == 2
    assert message.truncated_alerts == 3
    assert message.total_alerts == 5


def test_unknown_labels_parse() -> None:
    message = parse_webhook(raw("unknown_labels.json"))
    (alert,) = message.alerts
    assert alert.labels["mountpoint"] == "/"
    assert "service" not in alert.labels


def test_unknown_extra_fields_are_ignored() -> None:
    data = body("firing_single.json")
    data["orgId"] = 1
    data["newTopLevel"] = {"nested": [1, 2]}
    data["alerts"][0]["values"] = {"B": 44.2}
    data["alerts"][0]["silenceURL"] = "http://x"
    message = parse_webhook(encode(data))
    assert message.alerts[0].labels["service"] == "checkout"


def test_optional_fields_may_be_missing() -> None:
    data = body("firing_single.json")
    for key in ("receiver", "groupLabels", "commonLabels", "commonAnnotations", "externalURL"):
        del data[key]
    del data["truncatedAlerts"]
    for key in ("annotations", "endsAt", "generatorURL", "fingerprint"):
        del data["alerts"][0][key]
    message = parse_webhook(encode(data))
    assert message.truncated_alerts == 0
    assert message.alerts[0].annotations == {}
    assert name_of(message) == "HighErrorRate"  # from the alert's own labels
    assert message.common_annotations == {}


def test_offset_and_naive_times_become_utc_aware() -> None:
    data = body("firing_single.json")
    data["alerts"][0]["startsAt"] = "2018-08-03T09:52:26.739266876+02:00"
    message = parse_webhook(encode(data))
    assert message.alerts[0].starts_at == datetime(2018, 8, 3, 7, 52, 26, 739266, tzinfo=UTC)
    data["alerts"][0]["startsAt"] = "2018-08-03T09:52:26"
    assert parse_webhook(encode(data)).alerts[0].starts_at.tzinfo is not None


def test_messages_are_frozen() -> None:
    message = parse_webhook(raw("firing_single.json"))
    with pytest.raises(ValueError, match="frozen"):
        message.status = "resolved"


def test_the_model_round_trips_by_alias() -> None:
    message = parse_webhook(raw("firing_several.json"))
    again = WebhookMessage.model_validate_json(message.model_dump_json(by_alias=True))
    assert again == message


# -- refusals: a clear sentence and the HTTP status ----------------------------------------


def test_an_oversized_body_is_413() -> None:
    data = raw("firing_several.json")
    error = rejected(data, max_bytes=len(data) - 1)
    assert error.status == 413
    assert f"{len(data)} bytes" in error.message
    assert "max_alerts" in error.message
    assert parse_webhook(data, max_bytes=len(data)).status == "firing"  # the limit itself is fine


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{not json", "not JSON"),
        (b'{"a": 1', "not JSON"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"[]", "JSON array, not"),
        (b'"firing"', "JSON string"),
        (b"null", "JSON null"),
        (b"42", "JSON number"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(data: bytes, words: str) -> None:
    error = rejected(data)
    assert error.status == 400
    assert words in error.message
    assert str(error) == error.message


def test_another_version_is_400() -> None:
    data = body("firing_single.json")
    data["version"] = "3"
    error = rejected(encode(data))
    assert error.status == 400
    assert "version '3' is not supported" in error.message
    assert '"4"' in error.message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.pop("groupKey"), "field 'groupKey' is missing"),
        (lambda d: d.pop("version"), "field 'version' is missing"),
        (lambda d: d.pop("alerts"), "field 'alerts' is missing"),
        (lambda d: d.update(groupKey=""), "field 'groupKey'"),
        (lambda d: d.update(status="pending"), "field 'status'"),
        (lambda d: d.update(alerts=[]), "field 'alerts'"),
        (lambda d: d.update(alerts={"a": 1}), "field 'alerts'"),
        (lambda d: d.update(truncatedAlerts=-1), "field 'truncatedAlerts'"),
        (lambda d: d["alerts"][0].pop("startsAt"), "field 'alerts.0.startsAt' is missing"),
        (lambda d: d["alerts"][0].update(startsAt="yesterday"), "field 'alerts.0.startsAt'"),
        (lambda d: d["alerts"][0].pop("labels"), "field 'alerts.0.labels' is missing"),
        (lambda d: d["alerts"][0]["labels"].update(port=8080), "field 'alerts.0.labels.port'"),
        (lambda d: d["alerts"][0].update(status="unknown"), "field 'alerts.0.status'"),
    ],
)
def test_a_wrong_field_is_400_and_named(change: Any, words: str) -> None:
    data = body("firing_single.json")
    change(data)
    error = rejected(encode(data))
    assert error.status == 400
    assert words in error.message, error.message
    assert error.message.startswith("the webhook body is not Alertmanager's: ")


def test_several_problems_are_counted() -> None:
    data = body("firing_single.json")
    del data["groupKey"]
    del data["status"]
    del data["alerts"][0]["startsAt"]
    error = rejected(encode(data))
    assert "(and 2 more problems)" in error.message


def test_one_valid_group_keeps_all_its_alerts_whatever_their_labels() -> None:
    data = body("firing_several.json")
    data["alerts"][1]["labels"] = {"alertname": "Other", "team": "x"}  # maps to nothing
    message = parse_webhook(encode(data))
    assert len(message.alerts) == 4


def test_severity_of_a_mixed_group_is_the_most_urgent() -> None:
    data = body("firing_several.json")
    for alert, severity in zip(
        data["alerts"], ["info", "warning", "critical", "page"], strict=True
    ):
        alert["labels"]["severity"] = severity
    del data["commonLabels"]["severity"]
    message = parse_webhook(encode(data))
    assert group_severity(message.alerts) == "critical"
    assert group_severity(message.alerts[:2]) == "warning"
    assert group_severity(message.alerts[3:]) == "page"
    assert group_severity(()) is None


def test_alert_name_of_a_group_without_a_common_name() -> None:
    data = body("firing_several.json")
    data["alerts"][0]["labels"]["alertname"] = "A"
    data["alerts"][1]["labels"]["alertname"] = "B"
    del data["commonLabels"]["alertname"]
    del data["groupLabels"]["alertname"]
    message = parse_webhook(encode(data))
    assert name_of(message) == "A, B, KubeDeploymentReplicasMismatch"
