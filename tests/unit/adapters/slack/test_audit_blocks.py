"""The audit trail in Slack: `/rollback audit` (for the asker) and the audit channel's line.
Everything shown came from the store, which anyone with the rights can edit: escaped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.adapters.slack import blocks
from bot.adapters.slack.render import MAX_BLOCKS, SECTION_TEXT, Message
from bot.domain.audit import AuditRecord, Step

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def record(step: Step = Step.SUCCEEDED, **fields: object) -> AuditRecord:
    base: dict[str, object] = {
        "service": "checkout",
        "namespace": "shop",
        "deployment": "checkout",
        "actor": "U0ONCALL01",
        "via": "Slack",
        "at": NOW,
        "from_version": "2.14.0",
        "to_version": "2.13.0",
    }
    return AuditRecord(step=step, **{**base, **fields})  # type: ignore[arg-type]


def text_of(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def test_the_records_newest_first_with_who_what_and_why() -> None:
    message = blocks.audit_message(
        "checkout",
        "shop/checkout",
        "7d",
        [record(Step.SUCCEEDED, detail="in 12.0s"), record(Step.STARTED, reason="5xx spike")],
        "rollback-bot audit checkout --since 7d",
    )
    shown = text_of(message)
    assert "Audit trail of *checkout* (`shop/checkout`), last 7d: 2 records" in shown
    assert shown.index("`succeeded`") < shown.index("`started`")
    assert "<@U0ONCALL01> via Slack 2.14.0 → 2.13.0" in shown
    assert "reason: 5xx spike" in shown and "in 12.0s" in shown
    assert "<!date^" in shown  # in the reader's own time zone


def test_nothing_recorded() -> None:
    message = blocks.audit_message("checkout", "shop/checkout", "1h", [], "hint")
    assert "nothing recorded" in text_of(message)


def test_text_from_the_store_is_escaped() -> None:
    hostile = record(
        actor="<!channel> eve",
        reason="<https://evil.example|click> & *bold*",
        detail="<@U0BOSS>",
        to_version="<!here>",
    )
    shown = text_of(blocks.audit_message("checkout", "shop/checkout", "7d", [hostile], "hint"))
    assert "<!channel>" not in shown and "<!here>" not in shown and "<https://" not in shown
    assert "<@U0BOSS>" not in shown
    assert "&lt;!channel&gt; eve" in shown and "&amp;" in shown
    line = text_of(blocks.audit_channel_message(hostile, None))
    assert "<!channel>" not in line and "<https://evil" not in line


def test_many_long_records_stay_within_slacks_limits_and_say_how_to_see_them_all() -> None:
    many = [
        record(at=NOW - timedelta(minutes=n), reason="r" * 5000, detail="d" * 5000)
        for n in range(500)
    ]
    message = blocks.audit_message(
        "checkout", "shop/checkout", "7d", many, "rollback-bot audit checkout --since 7d"
    )
    assert len(message.blocks) <= MAX_BLOCKS
    assert all(len(b.get("text", {}).get("text", "")) <= SECTION_TEXT for b in message.blocks)
    shown = text_of(message)
    assert shown.count("`succeeded`") == blocks.AUDIT_LINES
    assert "460 older records not shown: `rollback-bot audit checkout --since 7d`" in shown


def test_the_audit_channel_line_links_to_the_thread() -> None:
    link = "https://example.slack.com/archives/C0INCIDENT/p1764216000000100"
    line = text_of(blocks.audit_channel_message(record(detail="in 12.0s (3/3 updated)"), link))
    assert ":white_check_mark: <@U0ONCALL01> rolled back *checkout* (`shop/checkout`)" in line
    assert "2.14.0 → 2.13.0 via Slack" in line
    assert f"<{link}|thread>" in line


def test_each_outcome_says_what_happened() -> None:
    said = {
        step: text_of(blocks.audit_channel_message(record(step), None))
        for step in (Step.FAILED, Step.UNKNOWN, Step.TIMED_OUT, Step.ABANDONED)
    }
    assert "failed to roll back" in said[Step.FAILED]
    assert "lost sight of" in said[Step.UNKNOWN]
    assert "stopped waiting" in said[Step.TIMED_OUT]
    assert "never sent" in said[Step.ABANDONED]


def test_a_link_that_is_not_a_plain_https_address_is_left_out() -> None:
    for link in ("javascript:alert(1)", "https://x.example/a|b", "https://x.example/<a>"):
        line = text_of(blocks.audit_channel_message(record(), link))
        assert "|thread>" not in line
