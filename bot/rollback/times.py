"""Kubernetes timestamps: RFC 3339 in, aware datetimes out, and MicroTime for Leases. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from the API ("2026-11-27T04:00:00Z"), or None when absent/bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def micro_time(when: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
