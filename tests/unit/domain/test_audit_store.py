"""The audit trail's layout in the cluster: names, labels, the size cap, the days a read covers,
retention, and records written and read back."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import audit_store as layout
from bot.domain.audit import AuditRecord, Step
from bot.domain.audit_store import AuditKey

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
NOW = datetime(2026, 11, 27, 10, 15, 0, tzinfo=UTC)
CHECKOUT = AuditKey("shop", "checkout")


def record(step: Step = Step.STARTED, at: datetime = NOW, **fields: object) -> AuditRecord:
    base: dict[str, object] = {
        "service": "checkout",
        "namespace": "shop",
        "deployment": "checkout",
        "actor": "U0ONCALL01",
        "via": "Slack",
    }
    return AuditRecord(step=step, at=at, **{**base, **fields})  # type: ignore[arg-type]


def test_an_object_is_named_by_day_part_and_deployment() -> None:
    day = date(2026, 11, 27)
    assert layout.object_name(CHECKOUT, day, 0) == "rollback-bot-audit-20261127-0.shop.checkout"
    assert layout.object_name(CHECKOUT, day, 3) == "rollback-bot-audit-20261127-3.shop.checkout"


def test_another_context_or_a_long_name_gets_the_digest() -> None:
    day = date(2026, 11, 27)
    other = AuditKey("shop", "checkout", "prod-eu")
    named = layout.object_name(other, day, 0)
    assert named == f"rollback-bot-audit-20261127-0.{other.label}"
    assert named != layout.object_name(CHECKOUT, day, 0)
    long = AuditKey("a" * 63, ".".join(["b" * 63] * 3))
    assert layout.object_name(long, day, 0) == f"rollback-bot-audit-20261127-0.{long.label}"


@given(
    namespace=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True),
    deployment=st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,200}[a-z0-9])?", fullmatch=True).filter(
        lambda d: ".." not in d and ".-" not in d and "-." not in d
    ),
    context=st.none() | st.text(max_size=300),
    part=st.integers(0, layout.MAX_PARTS_PER_DAY - 1),
)
def test_every_name_and_label_is_one_the_api_server_accepts(
    namespace: str, deployment: str, context: str | None, part: int
) -> None:
    key = AuditKey(namespace, deployment, context)
    name = layout.object_name(key, date(2026, 1, 2), part)
    assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name), name
    for value in layout.labels(key, date(2026, 1, 2), part).values():
        assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value


def test_the_digest_tells_contexts_and_deployments_apart() -> None:
    labels = {
        AuditKey("shop", "checkout").label,
        AuditKey("shop", "checkout", "prod-eu").label,
        AuditKey("shop", "cart").label,
        AuditKey("shopx", "checkout").label,
    }
    assert len(labels) == 4


def test_the_parts_of_a_day_are_bounded() -> None:
    with pytest.raises(ValueError, match="at most"):
        layout.object_name(CHECKOUT, date(2026, 1, 2), layout.MAX_PARTS_PER_DAY)


@pytest.mark.parametrize(
    ("used", "adding", "cap", "fits"),
    [
        (0, 100, 1000, True),
        (900, 100, 1000, True),  # exactly full
        (901, 100, 1000, False),
        (0, 5000, 1000, True),  # an empty object takes any record: rolling over ends
        (10, 5000, 1000, False),
    ],
)
def test_the_cap_decides_when_the_next_object_of_the_day_begins(
    used: int, adding: int, cap: int, fits: bool
) -> None:
    assert layout.fits(used, adding, cap) is fits


def test_the_default_cap_is_well_below_a_configmaps_limit() -> None:
    assert layout.DEFAULT_CAP_BYTES + layout.MAX_LINE_BYTES < layout.CONFIGMAP_LIMIT_BYTES / 2


def test_used_bytes_counts_keys_and_values_in_utf8() -> None:
    assert layout.used_bytes({"ab": "é"}) == 4
    assert layout.used_bytes({}) == 0


def test_a_read_covers_the_days_back_to_since_newest_first() -> None:
    assert layout.days_back(timedelta(days=2), NOW, 90) == [
        date(2026, 11, 27),
        date(2026, 11, 26),
        date(2026, 11, 25),
    ]
    assert layout.days_back(timedelta(hours=1), NOW, 90) == [date(2026, 11, 27)]
    # Past midnight, an hour back reaches the day before.
    just_after = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)
    assert layout.days_back(timedelta(hours=1), just_after, 90) == [
        date(2026, 11, 27),
        date(2026, 11, 26),
    ]


def test_a_read_goes_no_further_back_than_retention() -> None:
    days = layout.days_back(timedelta(days=3650), NOW, 90)
    assert len(days) == 92 and days[-1] == date(2026, 11, 27) - timedelta(days=91)


def test_the_selector_names_the_target_and_the_days() -> None:
    selector = layout.target_selector(CHECKOUT, [date(2026, 11, 27), date(2026, 11, 26)])
    assert f"rollback-bot.io/audit-target={CHECKOUT.label}" in selector
    assert "rollback-bot.io/audit-day in (2026-11-27,2026-11-26)" in selector
    assert "app.kubernetes.io/component=audit" in selector


@pytest.mark.parametrize(
    ("day", "expired"),
    [
        (date(2026, 11, 27), False),
        (date(2026, 8, 29), False),  # 90 days before today: kept
        (date(2026, 8, 28), True),
        (date(2025, 1, 1), True),
        (None, False),  # not known to be the bot's: kept
    ],
)
def test_retention(day: date | None, expired: bool) -> None:
    assert layout.expired(day, NOW, 90) is expired


@pytest.mark.parametrize(
    ("text", "day"),
    [("2026-11-27", date(2026, 11, 27)), ("2026-13-01", None), ("20261127", None), (None, None)],
)
def test_a_day_label_read_back(text: object, day: date | None) -> None:
    assert layout.parse_day(text) == day


def test_entry_keys_sort_as_the_records_happened_and_are_configmap_keys() -> None:
    early = layout.entry_key(record(at=NOW), "ffff")
    late = layout.entry_key(record(at=NOW + timedelta(microseconds=1)), "0000")
    assert early < late
    assert re.fullmatch(r"[-._a-zA-Z0-9]+", early)


def test_a_record_written_is_read_back_the_same() -> None:
    original = record(
        Step.SUCCEEDED,
        from_version="2.14.0",
        to_version="2.13.0",
        from_revision=3,
        to_revision=2,
        reason="5xx after 2.14.0 <!channel>",
        detail="in 12.0s",
        rollback_id="r-1",
        channel="C0INCIDENT",
        thread_ts="1764216000.000100",
        context="prod-eu",
    )
    assert layout.decode(layout.encode(original)) == original


def test_long_texts_are_clipped_so_a_line_stays_small() -> None:
    line = layout.encode(record(reason="x" * 100_000, detail="y" * 100_000))
    assert len(line.encode()) < layout.MAX_LINE_BYTES
    back = layout.decode(line)
    assert back is not None and back.reason is not None
    assert len(back.reason) == layout.FIELD_LIMIT and back.reason.endswith("…")


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[]",
        json.dumps({"step": "exploded", "at": "2026-11-27T10:00:00Z"}),
        json.dumps({**record().to_json(), "at": "yesterday"}),
        json.dumps({**record().to_json(), "actor": 42}),
        json.dumps({**record().to_json(), "to_revision": "2"}),
        json.dumps({k: v for k, v in record().to_json().items() if k != "service"}),
        "x" * (layout.MAX_LINE_BYTES + 1),
    ],
)
def test_what_is_not_a_record_is_left_out(line: str) -> None:
    assert layout.decode(line) is None


def test_newest_first() -> None:
    old, new = record(at=NOW - timedelta(hours=1)), record(at=NOW)
    assert layout.newest_first([old, new]) == [new, old]


def test_another_kind_of_the_same_name_keeps_records_of_its_own() -> None:
    day = date(2026, 11, 27)
    sts = AuditKey("shop", "checkout", kind="StatefulSet")
    assert sts.label != CHECKOUT.label
    assert layout.object_name(sts, day, 0) == f"rollback-bot-audit-20261127-0.{sts.label}"
    assert layout.object_name(sts, day, 0) != layout.object_name(CHECKOUT, day, 0)
    assert AuditKey.of(record(kind="StatefulSet")) == sts
    assert AuditKey.of(record()) == CHECKOUT  # a Deployment's records stay where they were
