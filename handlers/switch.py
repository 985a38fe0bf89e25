"""Blue-green switches in Slack: `/rollback SERVICE` of a blue-green service (its colours and a
switch button), the button (re-authorize, then open the confirmation saying what will happen),
and the confirmation's submit (re-authorize with group membership asked afresh, then start the
switch, which reads the cluster again and refuses what no longer holds)."""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import blocks, switch_blocks
from bot.adapters.slack.payloads import BadPayload
from bot.adapters.slack.render import Message, escape
from bot.adapters.slack.switch_payloads import (
    SWITCH_BUTTON_PATTERN,
    SWITCH_REASON_BLOCK,
    SWITCH_REASON_INPUT,
    SWITCH_VIEW,
    SwitchButton,
    SwitchContext,
)
from bot.config.catalog import Catalog, ServiceRef
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.blue_green import SwitchPlan
from bot.domain.rollback.models import RunInfo, Thread
from bot.domain.rollback.switches import SwitchView
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.switch import SwitchRequest, SwitchStart, spec_of
from handlers.actions import NOT_INVITED_TO_ACT
from handlers.errors import UNEXPECTED, answering_failures
from handlers.identity import from_elsewhere
from handlers.replies import bot_is_in, post_in_channel, say_privately, tell

log = logging.getLogger(__name__)

ERROR_TEXT = 150  # what Slack shows under an input block
CLICK = "switch click"  # the denied actions, as the audit trail records them
CONFIRMATION = "switch confirmation"
NOT_SET_UP = (
    "is a blue-green service, and this bot is not set up to switch it: ask its admins, or "
    "run `rollback-bot switch` from a terminal"
)


class Switches(Protocol):
    """The blue-green use case, as the listeners use it (`BlueGreenSwitches`)."""

    @property
    def ready_timeout(self) -> float: ...

    def running(self, ref: ServiceRef) -> RunInfo | None: ...

    async def view(self, ref: ServiceRef, asked_by: str) -> SwitchView: ...

    async def offer(self, ref: ServiceRef, user: str, channel: str | None) -> SwitchView: ...

    async def start(self, request: SwitchRequest) -> SwitchStart: ...


async def answer_command(
    kind: str,
    ref: ServiceRef,
    user: str,
    channel: str,
    client: AsyncWebClient,
    respond: AsyncRespond,
    switches: Switches | None,
) -> None:
    """`/rollback [status|history] SERVICE` of a blue-green service (`kind`: "versions",
    "status", "history"): its colours, with switch buttons for "versions"."""
    if switches is None:
        said = f"{ref.name} {NOT_SET_UP}"
        await say_privately(respond, blocks.notice(escape(said), ":warning:", plain=said))
        return
    if kind == "status":
        view = await switches.view(ref, user)
        await post_in_channel(client, respond, channel, switch_blocks.status_message(view))
    elif kind == "history":
        view = await switches.view(ref, user)
        await post_in_channel(client, respond, channel, switch_blocks.history_message(view))
    else:
        view = await switches.offer(ref, user, channel)
        await post_in_channel(client, respond, channel, switch_blocks.switch_message(view))


def submitted_reason(view: dict[str, Any]) -> str | None:
    values = ((view.get("state") or {}).get("values") or {}).get(SWITCH_REASON_BLOCK) or {}
    value = (values.get(SWITCH_REASON_INPUT) or {}).get("value")
    return (value.strip() or None) if isinstance(value, str) else None


def _notice(said: str, emoji: str = ":warning:") -> Message:
    return blocks.notice(escape(said), emoji, plain=said)


def failure_notice(error: Exception) -> Message:
    """The private answer to a confirmation whose switch failed to start."""
    if isinstance(error, BadPayload):
        return _notice(str(error))
    if isinstance(error, RollbackBotError):
        return _notice(f"Not switched: {error}", ":x:")
    return _notice(UNEXPECTED, ":x:")


def _log_failure(error: Exception) -> None:
    if isinstance(error, RollbackBotError | BadPayload):
        log.warning("switch confirmation not done: %s", error)
    elif isinstance(error, SlackApiError):
        log.warning("switch confirmation not done: Slack answered %s", error.response.get("error"))
    else:
        log.error("switch confirmation failed", exc_info=error)


def clicked(body: dict[str, Any], button: SwitchButton) -> SwitchContext:
    message = body.get("message") or {}
    return SwitchContext(
        button=button,
        channel=body["channel"]["id"],
        message_ts=message.get("ts") or body["container"]["message_ts"],
        thread_ts=message.get("thread_ts"),
    )


def register(app: AsyncApp, catalog: Catalog, access: Access, switches: Switches) -> None:
    @app.action(SWITCH_BUTTON_PATTERN)
    async def on_switch_click(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with answering_failures(body, respond, client):
            await open_confirmation(body, client, respond)

    async def open_confirmation(
        body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        user = body["user"]["id"]
        button = SwitchButton.decode((body.get("actions") or [{}])[0].get("value"))
        ref = catalog.resolve(button.service)
        spec_of(ref)  # the catalog may have changed its kind since the message was posted
        refusal = await access.authorize(ref, user, CLICK, external=from_elsewhere(body))
        if refusal is not None:
            await say_privately(respond, blocks.denied_message(ref.name, refusal))
            return
        channel = body["channel"]["id"]
        if not await bot_is_in(client, channel):
            await say_privately(respond, blocks.notice(NOT_INVITED_TO_ACT, ":warning:"))
            return
        run = switches.running(ref)
        if run is not None:
            await say_privately(respond, switch_blocks.already_switching_message(run))
            return
        view = await switches.view(ref, user)
        live = view.routing.live_color
        if button.live is not None and live != button.live:
            said = (
                f"Not switched: {ref.name}'s Service routes to {live or 'no known colour'} now, "
                f"not to {button.live} as the message showed. Ask `/rollback {ref.name}` again."
            )
            await say_privately(respond, _notice(said))
            return
        offer = view.offer(button.to_color)
        if not isinstance(offer, SwitchPlan):
            said = offer.reason if offer is not None else f"{ref.name} routes there already."
            await say_privately(respond, _notice(f"Not switched: {said}", ":no_entry_sign:"))
            return
        await client.views_open(
            trigger_id=body["trigger_id"],
            view=switch_blocks.confirm_modal(
                clicked(body, button),
                offer,
                view,
                reason_required=ref.reason_required,
                ready_timeout=switches.ready_timeout,
            ),
        )

    @app.view(SWITCH_VIEW)
    async def on_switch_confirm(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        try:
            context = SwitchContext.decode(view.get("private_metadata"))
            ref = catalog.resolve(context.button.service)
            spec_of(ref)
        except (BadPayload, RollbackBotError) as exc:
            await ack(response_action="errors", errors={SWITCH_REASON_BLOCK: str(exc)[:ERROR_TEXT]})
            return
        reason = submitted_reason(view)
        if ref.reason_required and not reason:
            errors = {SWITCH_REASON_BLOCK: f"A reason is required to switch {ref.name}."}
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        try:
            await switch(body, context, ref, reason, client)
        except Exception as error:
            _log_failure(error)
            user = (body.get("user") or {}).get("id")
            if user:
                try:
                    await tell(client, context.channel, str(user), failure_notice(error))
                except (SlackApiError, OSError) as exc:
                    log.warning("could not tell the user what failed: %s", type(exc).__name__)

    async def switch(
        body: dict[str, Any],
        context: SwitchContext,
        ref: ServiceRef,
        reason: str | None,
        client: AsyncWebClient,
    ) -> None:
        user = body["user"]["id"]
        # The last check before acting: group membership asked of Slack now.
        refusal = await access.authorize(
            ref, user, CONFIRMATION, external=from_elsewhere(body), fresh=True
        )
        if refusal is not None:
            await tell(client, context.channel, user, blocks.denied_message(ref.name, refusal))
            return
        result = await switches.start(
            SwitchRequest(
                ref=ref,
                to_color=context.button.to_color,
                actor=user,
                via="Slack",
                reason=reason,
                thread=Thread(
                    channel=context.channel,
                    thread_ts=context.thread_ts or context.message_ts,
                    message_ts=context.message_ts,
                ),
                expected_live=context.button.live,
                expected_version=context.button.version,
            )
        )
        await tell_result(client, context, user, result)


async def tell_result(
    client: AsyncWebClient, context: SwitchContext, user: str, result: SwitchStart
) -> None:
    """What the person who confirmed is told when the switch did not start ("started": the
    switch's own task tells the thread)."""
    outcome: Literal["started", "running", "refused", "stale"] = result.outcome
    if outcome == "started":
        return
    if outcome == "running" and result.run is not None:
        await tell(
            client, context.channel, user, switch_blocks.already_switching_message(result.run)
        )
        return
    said = f"Not switched: {result.message}"
    if outcome == "stale":
        said += ". The message you clicked now shows the Service as it is: choose again there."
        where = context.thread_ts or context.message_ts
        await tell(client, context.channel, user, _notice(said), thread_ts=where)
        return
    await tell(client, context.channel, user, _notice(said, ":no_entry_sign:"))
