"""`/rollback [status|history|help] SERVICE`: ack at once, then answer in the channel.
`/rollback audit SERVICE [--since 7d]`: the service's audit trail, answered to the asker only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import blocks
from bot.adapters.slack.render import clip, escape
from bot.config.catalog import Catalog
from bot.domain.times import format_since, parse_since
from bot.usecases.audit import AuditReader
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.views import ServiceViews
from handlers.after_ack import AfterAck
from handlers.errors import answering_failures
from handlers.replies import post_in_channel, say_privately
from handlers.switch import Switches, answer_command

SUBCOMMANDS = ("status", "history")
MAX_COMMAND_TEXT = 500
AUDIT_SINCE = timedelta(days=7)
AUDIT_USAGE = "audit SERVICE [--since 7d]"


def audit_arguments(words: list[str]) -> tuple[str, timedelta]:
    """`SERVICE [--since 7d]` (or `--since=7d`); ValueError saying what is wrong."""
    service: str | None = None
    since = AUDIT_SINCE
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word == "--since" or word.startswith("--since="):
            value = word.partition("=")[2] if "=" in word else (rest.pop(0) if rest else "")
            since = parse_since(value)
        elif word.startswith("-") or service is not None:
            raise ValueError(f"{word!r} is not understood here")
        else:
            service = word
    if service is None:
        raise ValueError("which service?")
    return service, since


def register(
    app: AsyncApp,
    slash_command: str,
    catalog: Catalog,
    views: ServiceViews,
    access: Access,
    after_ack: AfterAck,
    *,
    audit: AuditReader | None = None,
    switches: Switches | None = None,
) -> None:
    @app.command(slash_command)
    async def on_rollback(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        async with after_ack, answering_failures(command, respond, client):
            await answer(command, client, respond)

    async def answer(
        command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        user = command["user_id"]
        channel = command["channel_id"]
        words = (command.get("text") or "")[:MAX_COMMAND_TEXT].split()
        if words and words[0] == "audit" and audit is not None:
            await answer_audit(audit, words[1:], user, respond)
            return
        if not words or words[0] == "help" or (words[0] in SUBCOMMANDS and len(words) < 2):
            services = [
                blocks.HelpEntry(
                    ref.name,
                    ref.qualified,
                    await access.may_roll_back(ref, user),
                    anyone=ref.entry is not None and not ref.entry.restricted,
                )
                for ref in catalog.refs()
            ]
            uncataloged = await access.may_name_uncataloged(user)
            await say_privately(respond, blocks.help_message(slash_command, services, uncataloged))
            return
        kind, name = (words[0], words[1]) if words[0] in SUBCOMMANDS else ("versions", words[0])
        ref = catalog.resolve(name)
        if ref.entry is None:
            # Outside the catalog, even looking is for those the catalog allows.
            refusal = await access.authorize(ref, user, kind)
            if refusal is not None:
                await say_privately(respond, blocks.notice(f"Not shown: {refusal}.", ":no_entry:"))
                return
        if ref.blue_green is not None:  # its rollback is a switch of colours, not a Deployment's
            await answer_command(kind, ref, user, channel, client, respond, switches)
            return
        if kind == "status":
            view = await views.view(ref, user)
            await post_in_channel(client, respond, channel, blocks.status_message(view))
        elif kind == "history":
            view = await views.view(ref, user)
            await post_in_channel(client, respond, channel, blocks.history_message(view))
        else:
            view = await views.offer(ref, user, channel)
            await post_in_channel(client, respond, channel, blocks.versions_message(view))

    async def answer_audit(
        audit: AuditReader, words: list[str], user: str, respond: AsyncRespond
    ) -> None:
        """Privately, to those who may roll the service back: the record names who did what."""
        try:
            name, since = audit_arguments(words)
        except ValueError as exc:
            usage = f"{escape(clip(str(exc), 200))}: `{slash_command} {AUDIT_USAGE}`"
            await say_privately(respond, blocks.notice(usage, ":warning:"))
            return
        ref = catalog.resolve(name)
        refusal = await access.authorize(ref, user, "audit")
        if refusal is not None:
            await say_privately(respond, blocks.notice(f"Not shown: {refusal}.", ":no_entry:"))
            return
        records = await audit.read(ref, since)
        hint = f"rollback-bot audit {ref.name} --since {format_since(since)}"
        message = blocks.audit_message(ref.name, ref.qualified, format_since(since), records, hint)
        await say_privately(respond, message)
