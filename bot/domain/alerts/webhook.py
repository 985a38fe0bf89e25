"""Alertmanager's webhook body, version "4", as pydantic models, and its one parser. Pure.

The format is Alertmanager's `webhook_config` notification: a group of alerts that share the
route's `group_by` labels, sent again every `group_interval` while it changes and every
`repeat_interval` while it fires, and retried on failure. Unknown extra fields are ignored (newer
Alertmanagers and other senders add some); what the bot relies on is checked strictly: the
version, the group's status and key, and each alert's status, labels and `startsAt`.

`parse_webhook` turns the raw request body into a `WebhookMessage` or raises `BadWebhook` with the
HTTP status to answer (400 or 413) and one sentence saying what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

WEBHOOK_VERSION = "4"
DEFAULT_MAX_BYTES = 1024 * 1024  # Alertmanager's bodies stay far below this unless max_alerts is 0
SEVERITY_LABEL = "severity"
ALERTNAME_LABEL = "alertname"

Status = Literal["firing", "resolved"]

# Severities from most to least urgent; anything else sorts after these, alphabetically.
_SEVERITY_ORDER = ("critical", "error", "high", "warning", "medium", "low", "info", "none")


def _zero_time_to_none(value: datetime | None) -> datetime | None:
    """Go's zero time ("0001-01-01T00:00:00Z") means "not set"; naive times are taken as UTC."""
    if value is None or value.year <= 1:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


OptionalTime = Annotated[datetime | None, AfterValidator(_zero_time_to_none)]
AwareTime = Annotated[datetime, AfterValidator(_aware)]
LabelSet = dict[str, str]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, str_strip_whitespace=False
    )


class Alert(_Model):
    """One alert of the group, as Alertmanager renders it for notifications."""

    status: Status
    labels: LabelSet
    annotations: LabelSet = Field(default_factory=dict)
    starts_at: AwareTime = Field(alias="startsAt")
    # Alertmanager sends Go's zero time for a firing alert: None here.
    ends_at: OptionalTime = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.labels.get(ALERTNAME_LABEL, "")

    @property
    def severity(self) -> str | None:
        return self.labels.get(SEVERITY_LABEL) or None

    @property
    def summary(self) -> str | None:
        """The `summary` annotation, else `description`, else `message` (common rule styles)."""
        for key in ("summary", "description", "message"):
            if self.annotations.get(key):
                return self.annotations[key]
        return None

    @property
    def firing(self) -> bool:
        return self.status == "firing"


class WebhookMessage(_Model):
    """One webhook notification: a whole alert group at one moment."""

    version: Annotated[str, StringConstraints(min_length=1)]
    group_key: Annotated[str, StringConstraints(min_length=1)] = Field(alias="groupKey")
    status: Status
    receiver: str = ""
    alerts: tuple[Alert, ...] = Field(min_length=1)
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    group_labels: LabelSet = Field(default_factory=dict, alias="groupLabels")
    common_labels: LabelSet = Field(default_factory=dict, alias="commonLabels")
    common_annotations: LabelSet = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value != WEBHOOK_VERSION:
            raise ValueError(
                f"version {value!r} is not supported: rollback-bot reads Alertmanager's "
                f'webhook version "{WEBHOOK_VERSION}"'
            )
        return value

    @property
    def total_alerts(self) -> int:
        """The alerts in the group, counting those Alertmanager left out (`max_alerts`)."""
        return len(self.alerts) + self.truncated_alerts


# -- helpers over any subset of a group's alerts (a group may span several services) ------


def earliest_start(alerts: Sequence[Alert]) -> datetime | None:
    """When the first of these alerts started: what "since when" and the advice use. Pure."""
    return min((a.starts_at for a in alerts), default=None)


def latest_end(alerts: Sequence[Alert]) -> datetime | None:
    """When the last of these alerts ended; None while any still fires or none has an end. Pure."""
    if not alerts or any(a.firing for a in alerts):
        return None
    return max((a.ends_at for a in alerts if a.ends_at is not None), default=None)


def group_alert_name(
    alerts: Sequence[Alert],
    common_labels: LabelSet | None = None,
    group_labels: LabelSet | None = None,
) -> str:
    """The alert name of a group: the common one, else the distinct names joined. Pure."""
    for labels in (common_labels or {}, group_labels or {}):
        if labels.get(ALERTNAME_LABEL):
            return labels[ALERTNAME_LABEL]
    names = sorted({a.name for a in alerts if a.name})
    return ", ".join(names) if names else "alert"


def group_severity(alerts: Sequence[Alert]) -> str | None:
    """The most urgent severity among the alerts (critical before warning before info). Pure."""
    found = {a.severity for a in alerts if a.severity}
    if not found:
        return None

    def rank(severity: str) -> tuple[int, str]:
        lowered = severity.lower()
        order = _SEVERITY_ORDER.index(lowered) if lowered in _SEVERITY_ORDER else 99
        return order, lowered

    return min(found, key=rank)


# -- parsing ------------------------------------------------------------------------------


class BadWebhook(ValueError):
    """A webhook body the bot rejects: `status` is the HTTP status to answer (400 or 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_webhook(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> WebhookMessage:
    """The webhook body as a `WebhookMessage`, or `BadWebhook` (400/413) with one sentence. Pure.

    Checks the size first (413: lower `max_alerts` in the webhook_config), then that the body is
    UTF-8 JSON holding an object, then the fields (400, naming the first wrong field).
    """
    if len(raw) > max_bytes:
        raise BadWebhook(
            413,
            f"the webhook body is {len(raw)} bytes, over the limit of {max_bytes} bytes; "
            "set max_alerts in Alertmanager's webhook_config to send fewer alerts per group",
        )
    if not raw.strip():
        raise BadWebhook(400, "the webhook body is empty; expected Alertmanager's JSON")
    try:
        data: Any = json.loads(raw)
    except UnicodeDecodeError:
        raise BadWebhook(400, "the webhook body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadWebhook(
            400,
            f"the webhook body is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
        ) from None
    if not isinstance(data, dict):
        raise BadWebhook(
            400, f"the webhook body is a JSON {_json_type(data)}, not Alertmanager's object"
        )
    try:
        return WebhookMessage.model_validate(data)
    except ValidationError as exc:
        raise BadWebhook(400, f"the webhook body is not Alertmanager's: {_describe(exc)}") from None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null"


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    # A list whose items failed also reports "too short" for itself: the items say it better.
    errors = [
        e
        for e in errors
        if e["type"] != "too_short"
        or not any(
            len(o["loc"]) > len(e["loc"]) and o["loc"][: len(e["loc"])] == e["loc"] for o in errors
        )
    ] or errors
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "missing":
        problem = f"field {where!r} is missing"
    elif first["type"] == "value_error":
        problem = f"field {where!r}: {first['ctx']['error']!s}"
    else:
        problem = f"field {where!r}: {first['msg'][0].lower()}{first['msg'][1:]}"
    more = len(errors) - 1
    return problem + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
