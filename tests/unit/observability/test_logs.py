from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from bot.adapters.audit import JsonLogSink
from bot.domain.audit import AuditRecord, Step
from bot.observability.logs import JsonFormatter, configure_logging, interaction_id


def format_line(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("bot.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def test_one_json_object_per_line_with_extra_fields() -> None:
    line = format_line("rolled back %s", "checkout", service="checkout")
    assert line["message"] == "rolled back checkout"
    assert line["level"] == "warning"
    assert line["logger"] == "bot.test"
    assert line["service"] == "checkout"
    assert "interaction" not in line


def test_the_interaction_being_handled_is_on_every_line() -> None:
    token = interaction_id.set("trigger:12345.98765.abcdef")
    try:
        assert format_line("clicked")["interaction"] == "trigger:12345.98765.abcdef"
    finally:
        interaction_id.reset(token)


async def test_the_audit_trail_is_written_whatever_the_log_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("WARNING")
    try:
        logging.getLogger("bot.somewhere").info("an ordinary line the level drops")
        record = AuditRecord(
            step=Step.STARTED,
            service="checkout",
            namespace="shop",
            deployment="checkout",
            actor="U0ALICE1",
            via="Slack",
            at=datetime(2026, 11, 27, 4, 0, tzinfo=UTC),
        )
        await JsonLogSink().write(record, None)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger("rollback_bot.audit").handlers.clear()
    assert [line["logger"] for line in lines] == ["rollback_bot.audit"]
    assert json.loads(lines[0]["message"])["step"] == "started"
