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
    assert lines[0]["step"] == "started"


async def test_an_audit_line_is_one_flat_json_object_with_a_sentence_as_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    try:
        record = AuditRecord(
            step=Step.SUCCEEDED,
            service="checkout",
            namespace="shop",
            deployment="checkout",
            actor="U0ALICE1",
            via="Slack",
            at=datetime(2026, 11, 27, 4, 0, tzinfo=UTC),
            from_version="2.14.0",
            to_version="2.13.0",
            to_revision=2,
            reason='5xx "spike"',
        )
        await JsonLogSink().write(record, None)
        (raw,) = capsys.readouterr().err.splitlines()
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger("rollback_bot.audit").handlers.clear()
    line = json.loads(raw)
    assert line["message"] == record.sentence()  # a sentence, no JSON inside
    assert not line["message"].lstrip().startswith("{")
    assert {k: line[k] for k in record.to_json()} == record.to_json()
    assert (line["step"], line["to_revision"], line["event"]) == (
        "succeeded",
        2,
        "rollback.succeeded",
    )
    assert all(not isinstance(v, dict | list) for v in line.values())  # flat
    assert line["level"] == "info" and line["logger"] == "rollback_bot.audit"


def test_fields_go_to_the_top_level_and_never_replace_the_lines_own_keys() -> None:
    line = format_line(
        "done", fields={"step": "started", "name": "a field", "message": "not the message"}
    )
    assert line["step"] == "started"
    assert line["name"] == "a field"  # a LogRecord attribute's name, as a field: no clash
    assert line["message"] == "done"
    assert line["logger"] == "bot.test"
    assert "fields" not in line
