"""Every action_id, callback_id and block_id the bot's Slack surfaces use, in one place."""

from __future__ import annotations

import re

ROLLBACK_BUTTON = "rollback:to"  # one per target revision; block_ids keep them unique
CONFIRM_VIEW = "rollback:confirm"
REASON_BLOCK = "rollback:reason"
REASON_INPUT = "reason"

# Bolt matches by action_id: a pattern lets several buttons in one message share the handler.
ROLLBACK_BUTTON_PATTERN = re.compile(r"^rollback:to(:\d+)?$")


def rollback_button_id(revision: int) -> str:
    return f"{ROLLBACK_BUTTON}:{revision}"
