"""What a confirmation shows of the rollback it asks for, read at the click: the plan's changes,
container by container, or why the rollback is refused (the migration guard, a paused
Deployment), told at once instead of a modal."""

from __future__ import annotations

import asyncio
import logging

from bot.adapters.slack import blocks
from bot.adapters.slack.payloads import RollbackButton
from bot.adapters.slack.render import Message, escape
from bot.config.catalog import ServiceRef
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.template_diff import ContainerPreview, preview
from bot.usecases.rollback.preview import Preview, Previews

log = logging.getLogger(__name__)

# The modal must open within the click's 3 s trigger: the preview gets this long, else the
# modal says it could not be read (the rollback reads the cluster again anyway).
PREVIEW_SECONDS = 1.5


async def read_preview(
    previews: Previews,
    ref: ServiceRef,
    button: RollbackButton,
    user: str,
    channel: str,
    *,
    override: bool = False,
) -> Preview | None:
    """The click's plan (or its refusal), or None when the cluster did not answer in time."""
    try:
        async with asyncio.timeout(PREVIEW_SECONDS):
            return await previews.preview(
                ref,
                button.target_replicaset,
                button.target_revision,
                user,
                override=override,
                channel=channel,
            )
    except (TimeoutError, RollbackBotError) as exc:
        log.warning("could not read what a rollback of %s changes: %s", ref.qualified, exc)
        return None


def changes_of(found: Preview | None) -> tuple[ContainerPreview, ...] | None:
    """What the confirmation shows: the plan's changes, container by container (None: unread)."""
    return None if found is None or found.plan is None else preview(found.plan.changes)


def refused_message(service: str, refusal: str) -> Message:
    return blocks.notice(
        f"Not rolled back: {escape(refusal)}. Nothing was changed.",
        ":no_entry:",
        plain=f"Not rolled back {service}: {refusal}. Nothing was changed.",
    )
