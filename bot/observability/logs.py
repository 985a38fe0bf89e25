"""Structured logs: one flat JSON object per line, with the logger, level and any extra fields."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: The Slack interaction (trigger_id, event_id) or webhook group being handled: set where a
#: request enters, inherited by the tasks it starts (a rollback's too), written on every line.
interaction_id: ContextVar[str | None] = ContextVar("interaction_id", default=None)

#: A record's attribute holding a mapping of fields to write at the line's top level, beside
#: `message` (e.g. `extra={FIELDS: audit_record.to_json()}`): any names, even ones a LogRecord
#: attribute has, and no JSON inside the message.
FIELDS = "fields"

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", FIELDS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        for key, value in {
            **(fields if isinstance(fields, dict) else {}),
            **{k: v for k, v in vars(record).items() if k not in _STANDARD},
        }.items():
            entry.setdefault(str(key), value)  # the line's own keys are never replaced
        current = interaction_id.get()
        if current is not None:
            entry.setdefault("interaction", current)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


AUDIT_LOGGER = "rollback_bot.audit"


def configure_logging(level: str) -> None:
    """JSON lines on stderr at `level`; the audit trail's lines always, whatever the level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO")
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.handlers[:] = [handler]
    audit.setLevel(logging.INFO)
    audit.propagate = False
