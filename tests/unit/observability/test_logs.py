from __future__ import annotations

import json
import logging

from bot.observability.logs import JsonFormatter, interaction_id


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
