"""Re-export of `bot.sandbox.slack.socket_mode` (the Slack stand-in ships in the package)."""

from __future__ import annotations

from bot.sandbox.slack.socket_mode import (
    Ack,
    Envelope,
    EnvelopeType,
    SocketModeServer,
)

__all__ = [
    "Ack",
    "Envelope",
    "EnvelopeType",
    "SocketModeServer",
]
