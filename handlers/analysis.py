"""Automatic rollback's "Stop watching" button: re-authorize the clicker like a rollback of the
service (a refusal is recorded), then ask the watch to stop and tell the clicker privately what
it answered. The watch message itself is edited by the replica that analyses the rollout."""

from __future__ import annotations

from typing import Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import action_ids, analysis_blocks, blocks
from bot.adapters.slack.payloads import StopWatchButton
from bot.adapters.slack.render import clip, escape
from bot.config.catalog import Catalog, ServiceRef
from bot.usecases.rollback.access import Access
from handlers.errors import answering_failures
from handlers.identity import from_elsewhere
from handlers.replies import say_privately

STOP_WHAT = "stop watching"  # the denied action, as the audit trail records it


class StopsWatching(Protocol):
    """The watch of new rollouts, as the button asks it (`RolloutWatch`)."""

    async def stop(self, ref: ServiceRef, revision: int, user: str) -> str:
        """Ask the watch of `revision` to stop for `user` (authorized): a sentence for them."""
        ...


def moved_in_catalog(ref: ServiceRef, button: StopWatchButton) -> str | None:
    """Why the click is about another Deployment than the catalog names now (its entry was
    changed since the message was posted), or None."""
    if (ref.namespace, ref.deployment) == (button.namespace, button.deployment):
        return None
    return (
        f"The catalog now puts {clip(ref.name, 150)} at {ref.qualified}, not "
        f"{clip(button.namespace, 63)}/{clip(button.deployment, 253)} as watched: nothing was "
        "stopped."
    )


def register(app: AsyncApp, catalog: Catalog, access: Access, watch: StopsWatching) -> None:
    @app.action(action_ids.ANALYSIS_STOP)
    async def on_stop_watching(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await stop(body, respond)

    async def stop(body: dict[str, Any], respond: AsyncRespond) -> None:
        user = body["user"]["id"]
        button = StopWatchButton.decode(body["actions"][0].get("value"))
        ref = catalog.resolve(button.service)
        # Stopping takes effect without a confirmation: group membership is asked afresh.
        refusal = await access.authorize(
            ref, user, STOP_WHAT, external=from_elsewhere(body), fresh=True
        )
        if refusal is not None:
            await say_privately(respond, blocks.denied_message(ref.name, refusal))
            return
        moved = moved_in_catalog(ref, button)
        if moved is not None:
            await say_privately(respond, blocks.notice(escape(moved), ":warning:", plain=moved))
            return
        said = await watch.stop(ref, button.revision, user)
        await say_privately(respond, analysis_blocks.stop_answer(said))
