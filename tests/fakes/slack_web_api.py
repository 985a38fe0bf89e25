"""Re-export of `bot.sandbox.slack.web_api` (the Slack stand-in ships in the package)."""

from __future__ import annotations

from bot.sandbox.slack.web_api import (
    DEFAULT_APP_TOKEN,
    DEFAULT_BOT_TOKEN,
    GENERAL_CHANNEL_ID,
    MAX_ATTACHMENTS,
    MAX_MESSAGE_BLOCKS,
    MAX_TEXT_LENGTH,
    MAX_VIEW_BLOCKS,
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL_SECONDS,
    FakeChannel,
    FakeSlackWebApi,
    FakeUser,
    MessageVersion,
    RateLimitScope,
    RecordedCall,
    SlackError,
    StoredMessage,
    validate_blocks,
    validate_view,
)

__all__ = [
    "DEFAULT_APP_TOKEN",
    "DEFAULT_BOT_TOKEN",
    "GENERAL_CHANNEL_ID",
    "MAX_ATTACHMENTS",
    "MAX_MESSAGE_BLOCKS",
    "MAX_TEXT_LENGTH",
    "MAX_VIEW_BLOCKS",
    "RESPONSE_URL_MAX_USES",
    "RESPONSE_URL_TTL_SECONDS",
    "FakeChannel",
    "FakeSlackWebApi",
    "FakeUser",
    "MessageVersion",
    "RateLimitScope",
    "RecordedCall",
    "SlackError",
    "StoredMessage",
    "validate_blocks",
    "validate_view",
]
