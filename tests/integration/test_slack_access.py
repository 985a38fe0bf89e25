"""Who may roll back, from Slack's edges: signed commands, clicks and confirmations against the
bot over real HTTP and the simulated cluster. The bot acts with its own service account, so a
Deployment outside the catalog is nobody's unless the catalog says whose."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.adapters.slack.payloads import RollbackButton
from bot.config.catalog import Catalog, ServiceEntry, UncatalogedPolicy
from bot.observability.logs import FIELDS
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from rollback_sandbox.slack.web_api import StoredMessage
from tests.bot_fixtures import CHECKOUT, BotUnderTest, StartBot

CHANNEL = DEFAULT_CHANNEL_ID
ONLY_CHECKOUT = Catalog(
    services={"checkout": ServiceEntry(namespace="shop", deployment="checkout")}
)


def audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [dict(getattr(r, FIELDS)) for r in caplog.records if r.name == "rollback_bot.audit"]


def private_answers(t: BotUnderTest) -> list[str]:
    """What the bot told the person privately, one fallback text per answer."""
    return [str(c.args.get("text")) for c in t.slack.calls("response_url")]


def said(t: BotUnderTest, words: str) -> int:
    return sum(words in text for text in private_answers(t))


async def offer(t: BotUnderTest, service: str) -> StoredMessage:
    await t.sender.slash_command("/rollback", service)
    message = await t.slack.wait_for(
        lambda: next((m for m in t.slack.messages(CHANNEL) if m.buttons()), None)
    )
    assert isinstance(message, StoredMessage)
    return message


async def test_a_deployment_outside_the_catalog_is_refused_and_recorded(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = await start_bot(ONLY_CHECKOUT)
    for text in ("shop/cart", "status shop/cart", "history shop/cart"):
        reply = await t.sender.slash_command("/rollback", text)
        assert reply.status == 200
    await t.slack.wait_for(lambda: said(t, "not in the service catalog") == 3 or None)
    assert not t.slack.messages(CHANNEL)  # nothing shown to the channel, no buttons
    denials = [r for r in audit(caplog) if r["step"] == "denied"]
    assert [r["deployment"] for r in denials] == ["cart"] * 3


async def test_help_does_not_advertise_what_is_refused_and_names_open_services(
    start_bot: StartBot,
) -> None:
    t = await start_bot(ONLY_CHECKOUT)
    await t.sender.slash_command("/rollback", "help")
    await t.slack.wait_for(lambda: t.slack.calls("response_url") or None)
    answer = str(t.slack.calls("response_url")[0].args)
    assert "How to use /rollback" in answer
    assert "namespace/deployment" not in answer
    assert "anyone in the workspace may roll it back" in answer


async def test_the_uncataloged_policy_lets_named_users_in_and_only_them(
    start_bot: StartBot,
) -> None:
    t = await start_bot(
        Catalog(
            services=ONLY_CHECKOUT.services,
            uncataloged=UncatalogedPolicy(allowed_users=(DEFAULT_USER_ID,)),
        )
    )
    message = await offer(t, "shop/cart")
    assert "Roll back cart" not in message.all_text()  # named by its namespace/deployment
    t.slack.add_user("someone", user_id="U0SOMEONE2")
    await t.sender.slash_command("/rollback", "shop/cart", user_id="U0SOMEONE2")
    await t.slack.wait_for(lambda: said(t, "not in the service catalog") or None)


async def test_a_forged_button_for_an_uncataloged_deployment_is_refused(
    start_bot: StartBot, demo_engine: RollbackEngine
) -> None:
    t = await start_bot(ONLY_CHECKOUT)
    message = await offer(t, "checkout")
    forged = RollbackButton(
        service="shop/cart",
        target_revision=1,
        target_replicaset="cart-forged",
        target_version="x",
        from_version="y",
        revision=2,
        generation=1,
    ).encode()
    action = next(b for b in message.buttons() if b["action_id"].startswith("rollback:to"))
    await t.sender.click(CHANNEL, message.ts, action["action_id"], value=forged)
    await t.slack.wait_for(lambda: said(t, "not in the service catalog") or None)
    assert not t.slack.views()  # no confirmation opened


async def test_someone_from_another_workspace_is_refused_unless_named(
    start_bot: StartBot,
) -> None:
    t = await start_bot(ONLY_CHECKOUT)
    message = await offer(t, "checkout")
    action = next(b for b in message.buttons() if b["action_id"].startswith("rollback:to"))
    click = t.sender.build_click(CHANNEL, message.ts, action["action_id"])
    click["user"]["team_id"] = "T0ELSEWHERE"  # Slack Connect: a shared channel's guest org
    await t.sender.send_interactive(click)
    await t.slack.wait_for(lambda: said(t, "another workspace") or None)
    assert not t.slack.views()


async def test_the_confirmation_asks_slack_for_group_membership_afresh(
    start_bot: StartBot, demo_engine: RollbackEngine
) -> None:
    t = await start_bot(
        Catalog(
            services={
                "checkout": ServiceEntry(
                    namespace="shop", deployment="checkout", allowed_groups=("S0ONCALL",)
                )
            }
        )
    )
    t.slack.add_usergroup("S0ONCALL", "oncall", [DEFAULT_USER_ID])
    message = await offer(t, "checkout")
    await t.sender.click(CHANNEL, message.ts, "rollback:to:2")
    view: Any = await t.slack.wait_for(lambda: next(iter(t.slack.views()[-1:]), None))
    # Taken off call between the click and the confirmation (within the 60 s group cache).
    t.slack.add_usergroup("S0ONCALL", "oncall", [])
    await t.sender.submit_view(view["id"], {})
    await t.slack.wait_for(
        lambda: next(
            (c for c in t.slack.calls("chat.postEphemeral") if "may not roll back" in str(c.args)),
            None,
        )
    )
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"  # nothing rolled back


async def test_a_click_in_a_channel_the_bot_is_not_in_is_answered_not_acted_on(
    start_bot: StartBot, demo_engine: RollbackEngine
) -> None:
    t = await start_bot(ONLY_CHECKOUT)
    outside = t.slack.add_channel("war-room", bot_is_member=False)
    await t.sender.slash_command("/rollback", "checkout", channel_id=outside)
    # Not invited: the offer still reaches the channel through the command's response_url.
    message = await t.slack.wait_for(
        lambda: next((m for m in t.slack.messages(outside) if m.buttons()), None)
    )
    assert isinstance(message, StoredMessage)
    await t.sender.click(outside, message.ts, "rollback:to:2")
    await t.slack.wait_for(lambda: said(t, "I am not in this channel") or None)
    assert not t.slack.views()  # no confirmation, so no rollback nobody could follow
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"


async def test_a_guest_is_let_in_only_by_name(start_bot: StartBot) -> None:
    t = await start_bot(
        Catalog(
            services={
                "checkout": ServiceEntry(namespace="shop", deployment="checkout"),
                "cart": ServiceEntry(
                    namespace="shop", deployment="cart", allowed_users=("U0GUEST01",)
                ),
            }
        )
    )
    t.slack.add_user("contractor", user_id="U0GUEST01", guest=True)
    message = await offer(t, "checkout")  # open to anyone in the workspace: not to guests
    await t.sender.click(CHANNEL, message.ts, "rollback:to:2", user_id="U0GUEST01")
    await t.slack.wait_for(lambda: said(t, "guests of the workspace") or None)
    assert not t.slack.views()
    cart = await t.sender.slash_command("/rollback", "cart", user_id="U0GUEST01")
    assert cart.status == 200
    offered = await t.slack.wait_for(
        lambda: next((m for m in t.slack.messages(CHANNEL) if "cart" in m.all_text()), None)
    )
    assert isinstance(offered, StoredMessage)
    action = next(b for b in offered.buttons() if b["action_id"].startswith("rollback:to"))
    await t.sender.click(CHANNEL, offered.ts, action["action_id"], user_id="U0GUEST01")
    await t.slack.wait_for(lambda: t.slack.views() or None)  # named: the confirmation opens
