"""Who acted, as Slack's payload says it."""

from __future__ import annotations

from typing import Any


def from_elsewhere(body: dict[str, Any]) -> bool:
    """Whether the user of an interaction belongs to another workspace than the app's (Slack
    Connect: a shared channel's people from other organizations)."""
    home = (body.get("user") or {}).get("team_id")
    app_team = (body.get("team") or {}).get("id")
    return bool(home and app_team and home != app_team)
