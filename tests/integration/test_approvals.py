"""The two-person rule end to end over real HTTP: signed Slack requests → two bots (replicas of
one another, sharing nothing but the simulated cluster and the Slack stand-in) → a request for
approval in the thread, kept in the cluster, approved on the other replica."""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.config.catalog import BreakGlass, Catalog, ServiceEntry
from bot.entry.serve.wiring import Bot, build_bot
from bot.observability.logs import FIELDS
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID, SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi, StoredMessage
from tests.bot_fixtures import CHECKOUT, bot_settings

CHANNEL = DEFAULT_CHANNEL_ID
OUTCOME = "rolled back to *2.13.0* in"

StartBots = Callable[..., Awaitable[tuple[Bot, Bot]]]


@pytest.fixture
async def replicas(
    slack_api: FakeSlackWebApi, slack_signing_secret: str, demo_kubeconfig: Path
) -> AsyncIterator[StartBots]:
    started: list[Bot] = []

    async def start(catalog: Catalog, *, expiry_seconds: float = 15.0) -> tuple[Bot, Bot]:
        for _ in range(2):
            bot = build_bot(
                bot_settings(slack_api, demo_kubeconfig, slack_signing_secret),
                catalog,
                approval_expiry_seconds=expiry_seconds,
            )
            started.append(bot)
            await bot.start()
        return started[-2], started[-1]

    try:
        yield start
    finally:
        for bot in reversed(started):
            await bot.stop(grace=5)


def url(bot: Bot) -> str:
    return f"http://127.0.0.1:{bot.port}/slack/events"


def catalog_with(approver: str, **entry: Any) -> Catalog:
    return Catalog(
        services={
            "checkout": ServiceEntry(
                namespace="shop",
                deployment="checkout",
                allowed_users=(DEFAULT_USER_ID, approver),
                approvals=1,
                **entry,
            )
        }
    )


def thread(slack: FakeSlackWebApi, message: StoredMessage) -> list[StoredMessage]:
    return slack.thread(CHANNEL, message.ts)


def request_of(slack: FakeSlackWebApi, message: StoredMessage) -> StoredMessage | None:
    return next((m for m in thread(slack, message) if "asks to roll" in m.all_text()), None)


async def ask(
    slack: FakeSlackWebApi, sender: SlackRequestSender, bot: Bot, answers: dict[str, Any]
) -> StoredMessage:
    """`/rollback checkout`, a click on "Roll back to 2.13.0" and the modal submitted, all to
    `bot`; returns the versions message."""
    sender.events_url = url(bot)
    assert (await sender.slash_command("/rollback", "checkout")).status == 200
    message = await slack.wait_for(
        lambda: next((m for m in slack.messages(CHANNEL) if m.buttons()), None)
    )
    assert isinstance(message, StoredMessage)
    views = len(slack.views())
    assert (await sender.click(CHANNEL, message.ts, "rollback:to:2")).status == 200
    view: Any = await slack.wait_for(
        lambda: slack.views()[-1] if len(slack.views()) > views else None
    )
    assert (await sender.submit_view(view["id"], answers)).status == 200
    return message


async def private_notice(slack: FakeSlackWebApi, user: str, text: str) -> StoredMessage:
    found = await slack.wait_for(
        lambda: next((m for m in slack.ephemerals(CHANNEL, user) if text in m.all_text()), None)
    )
    assert isinstance(found, StoredMessage)
    return found


@pytest.fixture(autouse=True)
def _audit_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the audit trail's JSON log lines are INFO


def stale_copy(request: StoredMessage) -> dict[str, Any]:
    """The request as a client that has not refreshed yet still shows it: with its buttons."""
    return {
        "ts": request.ts,
        "thread_ts": request.thread_ts,
        "blocks": copy.deepcopy(request.blocks),
    }


def audit_steps(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        str(getattr(r, FIELDS)["step"]) for r in caplog.records if r.name == "rollback_bot.audit"
    ]


async def test_an_approval_on_the_other_replica_starts_the_rollback_in_the_thread(
    replicas: StartBots,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    approver = slack_api.add_user("second-oncall")
    a, b = await replicas(catalog_with(approver))
    message = await ask(slack_api, slack_sender, a, {"reason": "5xx after 2.14.0"})

    request = await slack_api.wait_for(lambda: request_of(slack_api, message))
    assert isinstance(request, StoredMessage)
    text = request.all_text()
    assert f"<@{DEFAULT_USER_ID}> asks to roll *checkout* back from *2.14.0* to *2.13.0*" in text
    assert "5xx after 2.14.0" in text and "Waiting for 1 more approval" in text
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"  # nothing yet

    # Asking is not approving: the requester's own click is refused, privately.
    slack_sender.events_url = url(b)
    await slack_sender.click(CHANNEL, request.ts, "approval:approve")
    await private_notice(slack_api, DEFAULT_USER_ID, "someone else must approve it")

    # The other person's click, on the other replica, starts it.
    await slack_sender.click(CHANNEL, request.ts, "approval:approve", user_id=approver)
    await slack_api.wait_for(
        lambda: any(OUTCOME in m.all_text() for m in thread(slack_api, message)), timeout=30
    )
    final = await slack_api.wait_for(
        lambda: (r := slack_api.message(CHANNEL, request.ts)) and "Approved" in r.all_text() and r
    )
    assert isinstance(final, StoredMessage)
    assert f"Approved by <@{approver}>" in final.all_text()
    assert not final.buttons()
    assert (await demo_engine.status(CHECKOUT)).version == "2.13.0"
    steps = audit_steps(caplog)
    assert steps.index("approval_requested") < steps.index("approved") < steps.index("started")
    assert "succeeded" in steps


async def test_a_rejection_ends_the_request_and_nothing_is_rolled_back(
    replicas: StartBots,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
) -> None:
    approver = slack_api.add_user("second-oncall")
    a, b = await replicas(catalog_with(approver))
    message = await ask(slack_api, slack_sender, a, {"reason": "5xx"})
    request = await slack_api.wait_for(lambda: request_of(slack_api, message))
    assert isinstance(request, StoredMessage)
    seen = stale_copy(request)
    slack_sender.events_url = url(b)
    await slack_sender.click(CHANNEL, request.ts, "approval:reject", user_id=approver)
    rejected = await slack_api.wait_for(
        lambda: (r := slack_api.message(CHANNEL, request.ts)) and "Rejected" in r.all_text() and r
    )
    assert isinstance(rejected, StoredMessage)
    assert f"Rejected by <@{approver}>" in rejected.all_text() and not rejected.buttons()
    # A late approval (from a client still showing the buttons) is refused: that was the end.
    await slack_sender.click(
        CHANNEL, request.ts, "approval:approve", user_id=approver, message=seen
    )
    await private_notice(slack_api, approver, "it was rejected")
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"


async def test_an_unanswered_request_expires_and_the_thread_says_so(
    replicas: StartBots,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    approver = slack_api.add_user("second-oncall")
    a, _b = await replicas(catalog_with(approver, approval_minutes=0.02), expiry_seconds=0.2)
    message = await ask(slack_api, slack_sender, a, {"reason": "5xx"})
    request = await slack_api.wait_for(lambda: request_of(slack_api, message))
    assert isinstance(request, StoredMessage)
    seen = stale_copy(request)
    expired = await slack_api.wait_for(
        lambda: (r := slack_api.message(CHANNEL, request.ts)) and "Expired" in r.all_text() and r,
        timeout=10,
    )
    assert isinstance(expired, StoredMessage) and not expired.buttons()
    await slack_sender.click(
        CHANNEL, request.ts, "approval:approve", user_id=approver, message=seen
    )
    await private_notice(slack_api, approver, "it expired")
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"
    # Expired once, by one of the two replicas.
    assert audit_steps(caplog).count("expired") == 1


async def test_someone_not_named_an_approver_may_not_approve(
    replicas: StartBots, slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender
) -> None:
    approver = slack_api.add_user("second-oncall")
    stranger = slack_api.add_user("passer-by")
    a, _b = await replicas(catalog_with(approver))
    message = await ask(slack_api, slack_sender, a, {"reason": "5xx"})
    request = await slack_api.wait_for(lambda: request_of(slack_api, message))
    assert isinstance(request, StoredMessage)
    await slack_sender.click(CHANNEL, request.ts, "approval:approve", user_id=stranger)
    await private_notice(slack_api, stranger, "only the approvers its catalog entry names")


async def test_break_glass_skips_approval_with_a_reason_announced_to_the_approvers(
    replicas: StartBots,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    approver = slack_api.add_user("second-oncall")
    catalog = Catalog(
        services=catalog_with(approver).services,
        break_glass=BreakGlass(allowed_users=(DEFAULT_USER_ID,)),
    )
    a, _b = await replicas(catalog)
    message = await ask(
        slack_api,
        slack_sender,
        a,
        {"reason": "checkout down, approver unreachable", "break_glass": ["break-glass"]},
    )
    await slack_api.wait_for(
        lambda: any(OUTCOME in m.all_text() for m in thread(slack_api, message)), timeout=30
    )
    story = "\n".join(m.all_text() for m in thread(slack_api, message))
    assert f"<@{DEFAULT_USER_ID}> broke glass" in story
    assert f"<@{approver}>" in story  # the approvers are told
    assert request_of(slack_api, message) is None
    assert "break_glass" in audit_steps(caplog)
    assert (await demo_engine.status(CHECKOUT)).version == "2.13.0"


async def test_break_glass_is_refused_to_people_the_catalog_does_not_name(
    replicas: StartBots,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
) -> None:
    approver = slack_api.add_user("second-oncall")
    a, _b = await replicas(catalog_with(approver))  # no break_glass at all
    await ask(slack_api, slack_sender, a, {"reason": "hurry", "break_glass": ["break-glass"]})
    await private_notice(slack_api, DEFAULT_USER_ID, "break-glass people")
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"


async def test_a_deployment_that_changed_while_waiting_is_not_rolled_back_at_the_approval(
    replicas: StartBots,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
) -> None:
    approver = slack_api.add_user("second-oncall")
    a, b = await replicas(catalog_with(approver))
    message = await ask(slack_api, slack_sender, a, {"reason": "5xx"})
    request = await slack_api.wait_for(lambda: request_of(slack_api, message))
    assert isinstance(request, StoredMessage)
    # Meanwhile someone rolls back from a terminal, to another version.
    await demo_engine.apply(CHECKOUT, await demo_engine.plan(CHECKOUT, 1))
    slack_sender.events_url = url(b)
    await slack_sender.click(CHANNEL, request.ts, "approval:approve", user_id=approver)
    ended = await slack_api.wait_for(
        lambda: (r := slack_api.message(CHANNEL, request.ts)) and "Approved" in r.all_text() and r
    )
    assert isinstance(ended, StoredMessage)
    assert "Not rolled back" in ended.all_text()
    assert "moved from revision 3 to revision 4 (2.12.0)" in ended.all_text()
    assert (await demo_engine.status(CHECKOUT)).version == "2.12.0"
    assert not any("started rolling" in m.all_text() for m in thread(slack_api, message))


async def test_the_asker_removed_from_the_group_meanwhile_gets_no_rollback(
    replicas: StartBots,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
) -> None:
    approver = slack_api.add_user("second-oncall")
    slack_api.add_usergroup("S0ONCALL", "oncall", [DEFAULT_USER_ID])
    catalog = Catalog(
        services={
            "checkout": ServiceEntry(
                namespace="shop",
                deployment="checkout",
                allowed_groups=("S0ONCALL",),
                approvers=(approver,),
                approvals=1,
            )
        }
    )
    a, b = await replicas(catalog)
    message = await ask(slack_api, slack_sender, a, {"reason": "5xx"})
    request = await slack_api.wait_for(lambda: request_of(slack_api, message))
    assert isinstance(request, StoredMessage)
    slack_api.add_usergroup("S0ONCALL", "oncall", [])  # off call while the request waited
    slack_sender.events_url = url(b)
    await slack_sender.click(CHANNEL, request.ts, "approval:approve", user_id=approver)
    await private_notice(slack_api, approver, "The person who asked may no longer roll checkout")
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"
    still = slack_api.message(CHANNEL, request.ts)
    assert still is not None and "Waiting for 1 more approval" in still.all_text()
