"""Every action_id, callback_id and block_id the bot's Slack surfaces use, in one place."""

from __future__ import annotations

import re

ROLLBACK_BUTTON = "rollback:to"  # one per target revision; block_ids keep them unique
CONFIRM_VIEW = "rollback:confirm"
REASON_BLOCK = "rollback:reason"
REASON_INPUT = "reason"
BREAK_GLASS_BLOCK = "rollback:break-glass"
BREAK_GLASS_INPUT = "break_glass"
APPROVE_BUTTON = "approval:approve"
REJECT_BUTTON = "approval:reject"

# Bolt matches by action_id: a pattern lets several buttons in one message share the handler.
ROLLBACK_BUTTON_PATTERN = re.compile(r"^rollback:to(:\d+)?$")
# The migration guard's break glass: a button per blocked revision, and its modal.
OVERRIDE_BUTTON = "rollback:override"
OVERRIDE_BUTTON_PATTERN = re.compile(r"^rollback:override(:\d+)?$")
OVERRIDE_VIEW = "rollback:override-confirm"
OVERRIDE_SERVICE_BLOCK = "rollback:override-service"
OVERRIDE_SERVICE_INPUT = "service"


# An Argo Rollout's "Abort" (the traffic back to the stable version): the rollback's handler.
ABORT_BUTTON = "rollback:abort"


def rollback_button_id(revision: int) -> str:
    return f"{ROLLBACK_BUTTON}:{revision}"


def override_button_id(revision: int) -> str:
    return f"{OVERRIDE_BUTTON}:{revision}"


# The storm digest's "Roll back another service…" picker: the services that did not fit.
DIGEST_PICK = "digest:pick"

# Automatic rollback's watch message: "Stop watching" (a new rollout's analysis).
ANALYSIS_STOP = "analysis:stop"
