"""The audit trail kept in the cluster (README "The record"): how its objects are named and
labelled, when one is full, which ones retention removes, and how a record is written and read
back. Pure: the Kubernetes adapter (`bot.adapters.kube.audit_store`) does the I/O.

Layout: in the bot's own namespace, one ConfigMap per service per day (UTC), a second one of
that day (`-1`, `-2`, …) once the first holds `DEFAULT_CAP_BYTES`; one data key per record
(its time and a random suffix), so a retried write finds its own record and does not add it
twice. ConfigMaps hold at most 1 MiB; the cap stays well below.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.domain.audit import AuditRecord, Step
from bot.domain.times import parse_time

PREFIX = "rollback-bot-audit"
COMPONENT = "audit"
TARGET_LABEL = "rollback-bot.io/audit-target"
DAY_LABEL = "rollback-bot.io/audit-day"
PART_LABEL = "rollback-bot.io/audit-part"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
# What the bot writes per object before it rolls to the day's next one: a quarter of the
# 1 MiB a ConfigMap may hold, so every append (a read and a replace of the whole object) stays
# small, and a month of a busy service is a few dozen objects.
DEFAULT_CAP_BYTES = 256 * 1024
CONFIGMAP_LIMIT_BYTES = 1024 * 1024
# A day of one service spread over more objects than this is not an incident any more.
MAX_PARTS_PER_DAY = 64
DEFAULT_RETENTION_DAYS = 90
MAX_NAME = 253
# One record's line: the texts from outside (reason, detail, versions) are clipped so that a
# line stays far below the cap whatever they hold.
FIELD_LIMIT = 1000
MAX_LINE_BYTES = 16 * 1024
_DAY_FORMAT = "%Y-%m-%d"
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


@dataclass(frozen=True)
class AuditKey:
    """Whose records: a Deployment, by the catalog's context (None: the default cluster), its
    namespace and name. Catalog names can change; the Deployment is what was rolled back."""

    namespace: str
    deployment: str
    context: str | None = None
    # Another kind than a Deployment ("StatefulSet", "BlueGreen"…): its records are its own,
    # apart from a Deployment of the same name.
    kind: str | None = None

    @classmethod
    def of(cls, record: AuditRecord) -> AuditKey:
        return cls(record.namespace, record.deployment, record.context, record.kind)

    @property
    def label(self) -> str:
        """The target's label value: a digest (label values are at most 63 characters, and
        a context name may hold anything)."""
        text = f"{self.context or ''}\n{self.namespace}\n{self.deployment}"
        if self.kind is not None:
            text += f"\n{self.kind}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.deployment}"
        return f"{where} (context {self.context})" if self.context else where


def day_of(when: datetime) -> date:
    """The UTC day a record belongs to."""
    return when.astimezone(UTC).date()


def day_label(day: date) -> str:
    return day.strftime(_DAY_FORMAT)


def parse_day(text: object) -> date | None:
    """A day label back ("2026-11-27"); None when it is not one (labels can be edited)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return datetime.strptime(text, _DAY_FORMAT).replace(tzinfo=UTC).date()
    except ValueError:
        return None


def object_name(key: AuditKey, day: date, part: int) -> str:
    """The ConfigMap holding `key`'s records of `day`, its `part`-th of that day:
    `rollback-bot-audit-20261127-0.shop.checkout`, readable in `kubectl get configmaps`, in the
    order of the days. A Deployment of another context, or names too long for one object name,
    get the target's digest instead (`rollback-bot-audit-20261127-0.<digest>`): the namespace
    has no dots, so the two forms never meet."""
    if not 0 <= part < MAX_PARTS_PER_DAY:
        raise ValueError(f"part {part} of a day: at most {MAX_PARTS_PER_DAY}")
    head = f"{PREFIX}-{day:%Y%m%d}-{part}"
    readable = f"{head}.{key.namespace}.{key.deployment}"
    if key.context is None and key.kind is None and len(readable) <= MAX_NAME:
        return readable
    return f"{head}.{key.label}"


def labels(key: AuditKey, day: date, part: int) -> dict[str, str]:
    return {
        NAME_LABEL: "rollback-bot",
        COMPONENT_LABEL: COMPONENT,
        TARGET_LABEL: key.label,
        DAY_LABEL: day_label(day),
        PART_LABEL: str(part),
    }


def all_objects_selector() -> str:
    """Every audit object of the bot (what retention looks through): those with a day."""
    return f"{NAME_LABEL}=rollback-bot,{COMPONENT_LABEL}={COMPONENT},{DAY_LABEL}"


def days_back(since: timedelta, now: datetime, retention_days: int) -> list[date]:
    """The days whose objects can hold records at or after `now - since`, newest first, no
    further back than retention keeps."""
    first = day_of(now - min(since, timedelta(days=retention_days + 1)))
    last = day_of(now)
    return [last - timedelta(days=n) for n in range((last - first).days + 1)]


def target_selector(key: AuditKey, days: list[date]) -> str:
    """`key`'s objects of `days` (the API server filters, so a 7-day read fetches 7 days)."""
    chosen = ",".join(day_label(d) for d in days)
    return (
        f"{NAME_LABEL}=rollback-bot,{COMPONENT_LABEL}={COMPONENT},{TARGET_LABEL}={key.label},"
        f"{DAY_LABEL} in ({chosen})"
    )


def expired(day: date | None, now: datetime, retention_days: int) -> bool:
    """Whether an object of `day` is past retention: its day ended more than `retention_days`
    ago. An object whose day cannot be read is kept (it is not known to be the bot's)."""
    return day is not None and day < day_of(now) - timedelta(days=retention_days)


def used_bytes(data: Mapping[str, str]) -> int:
    """What an object's data weighs, as the API server counts it (keys and values, UTF-8)."""
    return sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in data.items())


def fits(used: int, adding: int, cap: int = DEFAULT_CAP_BYTES) -> bool:
    """Whether a record of `adding` bytes goes into an object already holding `used` bytes, or
    the day's next object is begun. An empty object takes any record (a line is far below the
    cap), so rolling over always ends."""
    return used == 0 or used + adding <= cap


def entry_key(record: AuditRecord, nonce: str) -> str:
    """The record's data key: its time (so keys sort as the records happened) and `nonce`, a
    random suffix chosen once per record and kept over retries."""
    key = f"{record.at.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}.{nonce}"
    if not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a ConfigMap key")
    return key


def encode(record: AuditRecord) -> str:
    """The record as one JSON object, its texts clipped to FIELD_LIMIT characters each."""
    data = record.to_json()
    for name, value in data.items():
        if isinstance(value, str) and len(value) > FIELD_LIMIT:
            data[name] = value[: FIELD_LIMIT - 1] + "…"
    line = json.dumps(data, sort_keys=True, ensure_ascii=False)
    if len(line.encode("utf-8")) > MAX_LINE_BYTES:  # only a record of many huge fields
        raise ValueError("an audit record too large to store")
    return line


_TEXT_FIELDS = (
    "service", "namespace", "deployment", "actor", "via", "from_version", "to_version",
    "reason", "detail", "rollback_id", "channel", "thread_ts", "context", "kind",
)  # fmt: skip
_REQUIRED = ("service", "namespace", "deployment", "actor", "via")


def decode(line: str) -> AuditRecord | None:
    """A stored line back as a record; None for anything that is not one (the objects can be
    edited by anyone with the rights to: nothing read from them is trusted)."""
    if len(line) > MAX_LINE_BYTES:
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        step = Step(str(data.get("step")))
    except ValueError:
        return None
    at = parse_time(data.get("at"))
    if at is None:
        return None
    fields: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        fields[name] = value[:FIELD_LIMIT]
    if any(name not in fields for name in _REQUIRED):
        return None
    for name in ("from_revision", "to_revision"):
        value = data.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return None
        fields[name] = value
    return AuditRecord(step=step, at=at, **fields)


def newest_first(records: list[AuditRecord]) -> list[AuditRecord]:
    return sorted(records, key=lambda r: r.at, reverse=True)
