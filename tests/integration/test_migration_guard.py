"""The database-migration guard and the confirmation's preview, from Slack's edges: signed
commands, clicks (real and forged) and submissions against the bot over real HTTP, the cluster
simulated. A revision older than the newest irreversible migration has no rollback button, and
no crafted click or submission passes the guard; the catalog's break-glass people may override
it, with the service's name typed and a reason, recorded."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.slack import action_ids, blocks
from bot.adapters.slack.payloads import ConfirmContext, RollbackButton
from bot.config.catalog import BreakGlass, Catalog, ServiceEntry
from bot.domain.rollback.migrations import ADDITIVE, IRREVERSIBLE
from bot.observability.logs import FIELDS
from bot.usecases.rollback.access import NOT_BREAK_GLASS
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from rollback_sandbox.slack.web_api import StoredMessage
from tests.bot_fixtures import CHECKOUT, BotUnderTest, StartBot, demo_catalog
from tests.integration.migration_deploys import PLAIN_SECRET, deploy_checkout

CHANNEL = DEFAULT_CHANNEL_ID
BLOCKED_2 = "2.13.0 cannot run against the schema migrated by 3.0.0 (revision 4)"


def with_break_glass(*users: str) -> Catalog:
    return Catalog(
        services=demo_catalog().services, break_glass=BreakGlass(allowed_users=tuple(users))
    )


def audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [dict(getattr(r, FIELDS)) for r in caplog.records if r.name == "rollback_bot.audit"]


def private_answers(t: BotUnderTest) -> str:
    return "\n".join(str(c.args.get("text")) for c in t.slack.calls("response_url"))


def told(t: BotUnderTest) -> str:
    """What the bot told the person with chat.postEphemeral (after a submission)."""
    return "\n".join(str(c.args) for c in t.slack.calls("chat.postEphemeral"))


async def migrated(kubeconfig: Path, *, migration: str = IRREVERSIBLE) -> None:
    """checkout 3.0.0 goes out as revision 4, having migrated the schema."""
    await asyncio.to_thread(deploy_checkout, kubeconfig, "3.0.0", migration=migration)


async def offer(t: BotUnderTest) -> StoredMessage:
    await t.sender.slash_command("/rollback", "checkout")
    message = await t.slack.wait_for(
        lambda: next((m for m in t.slack.messages(CHANNEL) if m.buttons()), None)
    )
    assert isinstance(message, StoredMessage)
    return message


async def opened_view(t: BotUnderTest, before: int) -> Any:
    return await t.slack.wait_for(
        lambda: t.slack.views()[-1] if len(t.slack.views()) > before else None
    )


async def test_revisions_older_than_an_irreversible_migration_have_no_rollback_button(
    start_bot: StartBot, demo_kubeconfig: Path
) -> None:
    await migrated(demo_kubeconfig)
    t = await start_bot(with_break_glass(DEFAULT_USER_ID))
    message = await offer(t)
    ids = [b["action_id"] for b in message.buttons()]
    assert ids == ["rollback:override:3", "rollback:override:2", "rollback:override:1"]
    assert not any(i.startswith("rollback:to") for i in ids)
    assert message.button("rollback:override:2")["text"]["text"] == "Override migration guard"
    text = message.all_text()
    assert f":no_entry: {BLOCKED_2}" in text
    assert "2.14.0 cannot run against the schema migrated by 3.0.0 (revision 4)" in text


async def test_a_forged_click_and_a_forged_confirmation_are_refused_with_the_reason(
    start_bot: StartBot,
    demo_kubeconfig: Path,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    t = await start_bot(demo_catalog())
    message = await offer(t)  # taken before the migration: it still offers 2.13.0
    await migrated(demo_kubeconfig)
    history = await demo_engine.history(CHECKOUT)
    target = next(r for r in history.revisions if r.version == "2.13.0")
    forged = RollbackButton(
        service="checkout",
        target_revision=target.number,
        target_replicaset=target.replicaset,
        target_version=target.version,
        from_version="3.0.0",
        revision=history.deployment.revision,
        generation=history.deployment.generation,
    )
    await t.sender.click(CHANNEL, message.ts, "rollback:to:2", value=forged.encode())
    await t.slack.wait_for(lambda: BLOCKED_2 in private_answers(t) or None)
    assert not t.slack.views()  # no confirmation opened
    # A submission made up from scratch (no modal was ever opened) reaches the runner, whose
    # plan refuses it the same way.
    context = ConfirmContext(button=forged, channel=CHANNEL, message_ts=message.ts)
    view = {"id": "VFORGED01", **blocks.confirm_modal(context, reason_required=False)}
    reply = await t.sender.submit_view(view, {})
    assert reply.status == 200
    await t.slack.wait_for(lambda: f"Not rolled back: {BLOCKED_2}" in told(t) or None)
    assert (await demo_engine.status(CHECKOUT)).version == "3.0.0"
    refused = [r for r in audit(caplog) if r["step"] == "refused"]
    assert [r["detail"] for r in refused] == [f"click: {BLOCKED_2}", BLOCKED_2]


async def test_a_break_glass_member_overrides_with_the_name_typed_and_a_reason_recorded(
    start_bot: StartBot,
    demo_kubeconfig: Path,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await migrated(demo_kubeconfig)
    t = await start_bot(with_break_glass(DEFAULT_USER_ID))
    message = await offer(t)
    await t.sender.click(CHANNEL, message.ts, "rollback:override:2")
    view = await opened_view(t, 0)
    assert view["callback_id"] == action_ids.OVERRIDE_VIEW
    shown = json.dumps(view["blocks"], ensure_ascii=False)
    assert BLOCKED_2 in shown
    assert "env removed: FEATURE_ONE_CLICK_CHECKOUT (values not shown)" in shown
    assert "image registry.example.com/shop/checkout:3.0.0 → " in shown
    # The wrong name, then no reason: the modal says what is missing, nothing happens.
    wrong = await t.sender.submit_view(view["id"], {"service": "cart", "reason": "db restored"})
    assert wrong.json()["errors"] == {
        action_ids.OVERRIDE_SERVICE_BLOCK: "Type checkout exactly to confirm."
    }
    unreasoned = await t.sender.submit_view(view["id"], {"service": "checkout"})
    assert action_ids.REASON_BLOCK in unreasoned.json()["errors"]
    done = await t.sender.submit_view(
        view["id"], {"service": "checkout", "reason": "schema restored from backup"}
    )
    assert done.status == 200
    await t.slack.wait_for(
        lambda: (
            "rolled back to *2.13.0*"
            in "\n".join(m.all_text() for m in t.slack.thread(CHANNEL, message.ts))
            or None
        ),
        timeout=20,
    )
    assert (await demo_engine.status(CHECKOUT)).version == "2.13.0"
    steps = audit(caplog)
    override = next(r for r in steps if r["step"] == "override")
    assert override["detail"] == f"migration guard: {BLOCKED_2}"
    assert override["reason"] == "schema restored from backup"
    assert override["actor"] == DEFAULT_USER_ID
    names = [r["step"] for r in steps]
    assert names.index("override") < names.index("confirmed") < names.index("succeeded")


async def test_the_override_is_refused_and_recorded_for_anyone_else(
    start_bot: StartBot,
    demo_kubeconfig: Path,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await migrated(demo_kubeconfig)
    t = await start_bot(with_break_glass("U0BREAKGLS"))
    message = await offer(t)
    await t.sender.click(CHANNEL, message.ts, "rollback:override:2")
    await t.slack.wait_for(lambda: "break-glass people" in private_answers(t) or None)
    assert not t.slack.views()
    # Its modal, made up and submitted anyway: refused again at the submit, and recorded.
    button = RollbackButton.decode(message.button("rollback:override:2")["value"])
    forged = ConfirmContext(button=button, channel=CHANNEL, message_ts=message.ts)
    view = {"id": "VFORGED02", **blocks.override_modal(forged, BLOCKED_2, ())}
    await t.sender.submit_view(view, {"service": "checkout", "reason": "let me"})
    await t.slack.wait_for(lambda: "break-glass people" in told(t) or None)
    assert (await demo_engine.status(CHECKOUT)).version == "3.0.0"
    denied = [r["detail"] for r in audit(caplog) if r["step"] == "denied"]
    assert denied == [f"override {what}: {NOT_BREAK_GLASS}" for what in ("click", "confirmation")]
    assert "override" not in [r["step"] for r in audit(caplog)]


async def test_the_confirmation_previews_changes_without_env_values(
    start_bot: StartBot, demo_kubeconfig: Path
) -> None:
    await asyncio.to_thread(
        deploy_checkout, demo_kubeconfig, "3.0.0", secret_env=True, migration=ADDITIVE
    )
    t = await start_bot(demo_catalog())
    message = await offer(t)
    assert "rollback:to:3" in [b["action_id"] for b in message.buttons()]  # additive: no block
    await t.sender.click(CHANNEL, message.ts, "rollback:to:3")
    view = await opened_view(t, 0)
    shown = json.dumps(view["blocks"], ensure_ascii=False)
    assert "*What changes* (env values are never shown)" in shown
    assert (
        "image registry.example.com/shop/checkout:3.0.0 → registry.example.com/shop/checkout:2.14.0"
    ) in shown
    assert "env removed: API_TOKEN, DB_PASSWORD (values not shown)" in shown
    assert PLAIN_SECRET not in shown and "secretKeyRef" not in shown and "checkout-db" not in shown


async def test_the_versions_message_notes_short_history_and_mutable_tags(
    start_bot: StartBot, demo_kubeconfig: Path
) -> None:
    latest = "registry.example.com/shop/checkout:latest"
    await asyncio.to_thread(deploy_checkout, demo_kubeconfig, "2.15.0", image=latest)
    await asyncio.to_thread(deploy_checkout, demo_kubeconfig, "3.0.0", history_limit=2)
    t = await start_bot(demo_catalog())
    text = (await offer(t)).all_text()
    assert "keeps only 2 old ReplicaSets (spec.revisionHistoryLimit: 2)" in text
    assert f"mutable image tag: checkout ({latest})" in text
    assert "may not be the same code" in text


async def test_an_override_of_a_service_that_needs_approval_breaks_glass_too(
    start_bot: StartBot,
    demo_kubeconfig: Path,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await migrated(demo_kubeconfig)
    services = {
        **demo_catalog().services,
        "checkout": ServiceEntry(namespace="shop", deployment="checkout", approvals=1),
    }
    t = await start_bot(
        Catalog(services=services, break_glass=BreakGlass(allowed_users=(DEFAULT_USER_ID,)))
    )
    message = await offer(t)
    await t.sender.click(CHANNEL, message.ts, "rollback:override:2")
    view = await opened_view(t, 0)
    await t.sender.submit_view(view["id"], {"service": "checkout", "reason": "db restored"})
    await t.slack.wait_for(
        lambda: (
            "rolled back to *2.13.0*"
            in "\n".join(m.all_text() for m in t.slack.thread(CHANNEL, message.ts))
            or None
        ),
        timeout=20,
    )
    steps = [r["step"] for r in audit(caplog)]
    assert steps.index("break_glass") < steps.index("override") < steps.index("succeeded")
    assert "approval_requested" not in steps
