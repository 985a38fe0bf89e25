"""End to end over real HTTP: signed Slack requests → the bot (Bolt on aiohttp) → the simulated
cluster, and the bot's Web API calls landing in the Slack stand-in."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from bot.config.catalog import ServiceEntry
from bot.domain.rollback.models import CHANGE_CAUSE_ANNOTATION
from bot.observability.logs import FIELDS
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID, SendOptions
from rollback_sandbox.slack.web_api import StoredMessage
from tests.bot_fixtures import CHECKOUT, BotUnderTest, StartBot, demo_catalog

CHANNEL = DEFAULT_CHANNEL_ID


async def versions_message(t: BotUnderTest, service: str = "checkout") -> StoredMessage:
    reply = await t.sender.slash_command("/rollback", service)
    assert reply.status == 200

    def posted() -> StoredMessage | None:
        return next((m for m in t.slack.messages(CHANNEL) if m.buttons()), None)

    message = await t.slack.wait_for(posted)
    assert isinstance(message, StoredMessage)
    return message


async def confirm(
    t: BotUnderTest,
    message: StoredMessage,
    action_id: str,
    reason: str | None,
    user: str = DEFAULT_USER_ID,
) -> None:
    views_before = len(t.slack.views())
    reply = await t.sender.click(CHANNEL, message.ts, action_id, user_id=user)
    assert reply.status == 200
    view: Any = await t.slack.wait_for(
        lambda: t.slack.views()[-1] if len(t.slack.views()) > views_before else None
    )
    answers = {"reason": reason} if reason else {}
    submitted = await t.sender.submit_view(view["id"], answers, user_id=user)
    assert submitted.status == 200


def thread_text(t: BotUnderTest, message: StoredMessage) -> str:
    return "\n".join(m.all_text() for m in t.slack.thread(CHANNEL, message.ts))


def offers(t: BotUnderTest) -> list[StoredMessage]:
    """The versions messages (with rollback buttons) in the channel."""
    return [m for m in t.slack.messages(CHANNEL) if m.buttons()]


def audit_steps(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The bot's audit trail so far (its JSON log sink: the record's fields beside the
    sentence), as steps: "asked", "started", …"""
    return [getattr(r, FIELDS)["step"] for r in caplog.records if r.name == "rollback_bot.audit"]


async def test_command_click_confirm_rolls_back_with_the_story_in_the_thread(
    running_bot: BotUnderTest, demo_engine: RollbackEngine, demo_cluster: SandboxThread
) -> None:
    t = running_bot
    message = await versions_message(t)
    text = message.all_text()
    assert "2.14.0" in text and "revision 3" in text
    assert [b["action_id"] for b in message.buttons()] == ["rollback:to:2", "rollback:to:1"]
    assert message.button("rollback:to:2")["text"]["text"] == "Roll back to 2.13.0"

    await confirm(t, message, "rollback:to:2", reason="5xx spike after 2.14.0")
    outcome = await t.slack.wait_for(
        lambda: "rolled back to *2.13.0*" in thread_text(t, message), timeout=20
    )
    assert outcome
    story = thread_text(t, message)
    assert f"<@{DEFAULT_USER_ID}> started rolling *checkout*" in story
    assert "from *2.14.0* (revision 3) to *2.13.0* (revision 2)" in story
    assert "5xx spike after 2.14.0" in story
    # One progress message, edited in place, ending at the final counts and state.
    progress = [
        m
        for m in t.slack.thread(CHANNEL, message.ts)
        if any("Rolling out" in v.text for v in m.versions)
    ]
    assert len(progress) == 1
    shown = progress[0].all_text()
    assert "3/3 available" in shown
    assert ":white_check_mark: Rolled out *2.13.0* ▰▰▰▰▰▰▰▰▰▰" in shown
    assert "Rolling out" not in shown and "hourglass" not in shown
    # The bar is full only once kubectl's rollout status says the rollout is done (the old
    # pods keep every count of available pods full from the start).
    for version in progress[0].versions:
        if "▰" * 10 in str(version.blocks):
            assert "successfully rolled out" in str(version.blocks), version.blocks

    deployment = await demo_engine.status(CHECKOUT)
    assert deployment.version == "2.13.0"
    assert deployment.annotations[CHANGE_CAUSE_ANNOTATION] == (
        "rolled back to revision 2 (2.13.0) by @oncall via Slack: 5xx spike after 2.14.0"
    )

    # The original message was locked during the rollout, then shows the new state: the edit
    # that came after the outcome was posted.
    outcome_at = next(
        m.posted_at for m in t.slack.thread(CHANNEL, message.ts) if "rolled back to" in m.all_text()
    )

    def refreshed() -> StoredMessage | None:
        now = t.slack.message(CHANNEL, message.ts)
        return now if now is not None and now.versions[-1].at >= outcome_at else None

    final = await t.slack.wait_for(refreshed)
    assert final is not None
    assert any("is rolling back to" in str(v.blocks) for v in final.versions)
    assert "*Deployed now*\n2.13.0" in final.all_text()
    assert "is rolling back" not in final.all_text()
    assert f"known bad: <@{DEFAULT_USER_ID}> rolled back from it" in final.all_text()
    # The refreshed buttons offer the versions before, not a second rollback of the same state.
    assert "Roll back to 2.13.0" not in str(final.buttons())


async def test_the_version_just_rolled_back_from_is_offered_as_a_known_bad_redeploy(
    running_bot: BotUnderTest,
) -> None:
    t = running_bot
    message = await versions_message(t)
    await confirm(t, message, "rollback:to:2", reason="5xx spike after 2.14.0")
    await t.slack.wait_for(lambda: "rolled back to *2.13.0*" in thread_text(t, message), timeout=20)

    def refreshed() -> StoredMessage | None:
        now = t.slack.message(CHANNEL, message.ts)
        return now if now is not None and "Redeploy" in str(now.buttons()) else None

    final = await t.slack.wait_for(refreshed)
    assert final is not None
    bad, older = final.button("rollback:to:3"), final.button("rollback:to:1")
    assert bad["text"]["text"] == "Redeploy 2.14.0 (known bad)"
    assert "style" not in bad  # not the red "Roll back to" of a way out
    assert (older["text"]["text"], older["style"]) == ("Roll back to 2.12.0", "danger")

    views_before = len(t.slack.views())
    reply = await t.sender.click(CHANNEL, message.ts, "rollback:to:3")
    assert reply.status == 200
    view: Any = await t.slack.wait_for(
        lambda: t.slack.views()[-1] if len(t.slack.views()) > views_before else None
    )
    modal = json.dumps(view["blocks"])
    assert "*2.14.0* is known bad" in modal and "roll-forward to a known-bad" in modal
    assert view["submit"]["text"] == "Redeploy"


async def test_kubernetes_events_record_every_step(
    running_bot: BotUnderTest, demo_kubeconfig: Any, demo_engine: RollbackEngine
) -> None:
    t = running_bot
    message = await versions_message(t)
    await confirm(t, message, "rollback:to:2", reason="bad deploy")
    await t.slack.wait_for(lambda: "rolled back to" in thread_text(t, message), timeout=20)
    from kubernetes import client, config

    api = config.new_client_from_config(str(demo_kubeconfig))  # type: ignore[no-untyped-call]
    events = client.CoreV1Api(api).list_namespaced_event("shop", _request_timeout=5)
    reasons = [e.reason for e in events.items if e.involved_object.name == "checkout"]
    api.close()
    for reason in ("RollbackOffered", "RollbackConfirmed", "RollbackStarted", "RollbackSucceeded"):
        assert reason in reasons


async def test_a_stale_button_is_refused_with_what_changed(
    running_bot: BotUnderTest, demo_engine: RollbackEngine
) -> None:
    t = running_bot
    message = await versions_message(t)
    # Someone else rolls back from a terminal first.
    target = CHECKOUT
    plan = await demo_engine.plan(target, 1)
    await demo_engine.apply(target, plan)
    await confirm(t, message, "rollback:to:2", reason=None)
    notice = await t.slack.wait_for(
        lambda: next(
            (
                m
                for m in t.slack.ephemerals(CHANNEL, DEFAULT_USER_ID)
                if "out of date" in m.all_text()
            ),
            None,
        )
    )
    assert notice is not None
    assert "moved from revision 3 to revision 4 (2.12.0)" in notice.all_text()
    # Told next to the message clicked, which itself now shows the state: nothing dangles.
    assert notice.thread_ts == message.ts
    assert notice.all_text().rstrip().endswith("choose again there.")
    refreshed = await t.slack.wait_for(
        lambda: (m := t.slack.message(CHANNEL, message.ts)) and "2.12.0" in m.all_text() and m
    )
    assert refreshed
    assert (await demo_engine.status(target)).version == "2.12.0"
    assert not [m for m in t.slack.thread(CHANNEL, message.ts) if "started rolling" in m.all_text()]


async def test_concurrent_confirmations_start_one_rollback(
    running_bot: BotUnderTest, demo_engine: RollbackEngine
) -> None:
    t = running_bot
    other = t.slack.add_user("second-oncall")
    message = await versions_message(t)
    await asyncio.gather(
        confirm(t, message, "rollback:to:2", reason="first"),
        confirm(t, message, "rollback:to:2", reason="second", user=other),
    )
    await t.slack.wait_for(lambda: "rolled back to" in thread_text(t, message), timeout=20)
    started = [m for m in t.slack.thread(CHANNEL, message.ts) if "started rolling" in m.all_text()]
    assert len(started) == 1
    told = t.slack.ephemerals(CHANNEL, DEFAULT_USER_ID) + t.slack.ephemerals(CHANNEL, other)
    busy = [m for m in told if "already rolling" in m.all_text()]
    assert busy
    # Named as Slack names people, in the notification's text too, not as a bare user id.
    assert all(m.text.startswith(("<@U0ONCALL01> ", f"<@{other}> ")) for m in busy)
    history = await demo_engine.history(CHECKOUT)
    assert history.revisions[0].number == 4  # one rollback, one new revision


async def test_a_retried_command_posts_once(
    running_bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = running_bot
    fields = t.sender.build_slash_command("/rollback", "checkout")
    first = await t.sender.send_form(fields)
    retry = await t.sender.send_form(fields, SendOptions.retry(1, "http_timeout"))
    assert (first.status, retry.status) == (200, 200)
    # The retry was answered by the dedupe middleware, which logs it and acks before the HTTP
    # answer, without running any listener: no second offer can come from it after this.
    assert any(
        r.name == "handlers.dedupe" and fields["trigger_id"] in r.getMessage()
        for r in caplog.records
    )
    await t.slack.wait_for(lambda: offers(t))
    assert len(offers(t)) == 1
    assert audit_steps(caplog).count("asked") == 1  # one offer made (recorded before posting)


async def test_an_unauthorized_user_is_denied_and_recorded(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    t = await start_bot(
        demo_catalog(
            checkout=ServiceEntry(
                namespace="shop", deployment="checkout", allowed_users=("U0SOMEONE",)
            )
        )
    )
    message = await versions_message(t)
    await t.sender.click(CHANNEL, message.ts, "rollback:to:2")
    denied = await t.slack.wait_for(
        lambda: next(
            (c for c in t.slack.calls("response_url") if "may not roll back" in str(c.args)), None
        )
    )
    assert denied
    assert not t.slack.views()
    # Recorded before the answer: the denial is in the audit trail by now.
    assert audit_steps(caplog)[-1] == "denied"


async def test_group_members_are_allowed(start_bot: StartBot) -> None:
    t = await start_bot(
        demo_catalog(
            checkout=ServiceEntry(
                namespace="shop", deployment="checkout", allowed_groups=("S0ONCALL",)
            )
        )
    )
    t.slack.add_usergroup("S0ONCALL", "oncall", [DEFAULT_USER_ID])
    message = await versions_message(t)
    await t.sender.click(CHANNEL, message.ts, "rollback:to:2")
    await t.slack.wait_for(lambda: t.slack.views())
    assert t.slack.calls("usergroups.users.list")


async def test_unknown_service_answers_only_the_asker(running_bot: BotUnderTest) -> None:
    t = running_bot
    await t.sender.slash_command("/rollback", "chekout")
    call = await t.slack.wait_for(lambda: t.slack.calls("response_url"))
    assert "did you mean 'checkout'?" in str(call[0].args)
    assert call[0].args.get("response_type") == "ephemeral"
    assert not t.slack.messages(CHANNEL)


@pytest.mark.parametrize("forgery", ["forge_signature", "expired_timestamp"])
async def test_forged_or_expired_requests_are_rejected(
    running_bot: BotUnderTest, forgery: str
) -> None:
    t = running_bot
    reply = await t.sender.slash_command(
        "/rollback",
        "checkout",
        options=SendOptions(
            forge_signature=forgery == "forge_signature",
            expired_timestamp=forgery == "expired_timestamp",
        ),
    )
    assert reply.status == 401
    # Refused by the signature check, before any listener: nothing is left running for it. The
    # same command, genuine and sent after it, is answered, and its offer is all there is.
    genuine = await t.sender.slash_command("/rollback", "checkout")
    assert genuine.status == 200
    await t.slack.wait_for(lambda: offers(t))
    assert len(t.slack.messages(CHANNEL)) == 1
    assert not t.slack.calls("response_url")


async def test_a_stalled_rollout_ends_in_a_failure_message_with_next_steps(
    start_bot: StartBot, demo_kubeconfig: Any, tmp_path: Any
) -> None:
    from tests.cluster_fixtures import Kubectl, find_kubectl
    from tests.integration.kube_history import apply, manifest

    kubectl = Kubectl(find_kubectl(), demo_kubeconfig, tmp_path / "cache")
    for version in ("0.9.0-broken", "1.0.0"):
        apply(kubectl, manifest("web", "shop", version, {}, "envoy:1", progressDeadlineSeconds=30))
    kubectl("rollout", "status", "deployment/web", "-n", "shop", "--timeout=60s")
    t = await start_bot(demo_catalog(web=ServiceEntry(namespace="shop", deployment="web")))
    message = await versions_message(t, "web")
    await confirm(t, message, "rollback:to:1", reason=None)
    # The outcome's own message (the progress message's last edit says "failed" too).
    await t.slack.wait_for(lambda: ":x: Rollback of" in thread_text(t, message), timeout=20)
    story = thread_text(t, message)
    assert "exceeded its progress deadline" in story
    assert "updated to 0.9.0-broken" in story
    assert "kubectl -n shop describe deployment web" in story


async def test_socket_mode_runs_the_same_conversation(
    slack_api: Any,
    slack_sender: Any,
    demo_kubeconfig: Any,
    catalog: Any,
    demo_engine: RollbackEngine,
) -> None:
    from pydantic import SecretStr

    from bot.config.settings import Settings
    from bot.entry.serve.wiring import build_bot

    settings = Settings(
        kubeconfig=str(demo_kubeconfig),
        slack_bot_token=SecretStr(slack_api.bot_token),
        slack_app_token=SecretStr(slack_api.app_token),
        slack_api_url=slack_api.api_url,
        host="127.0.0.1",
        port=0,
    )
    bot = build_bot(settings, catalog)
    await bot.start()
    socket = slack_api.socket_mode
    try:
        await socket.wait_connected()
        ack = await socket.deliver_slash_command(
            slack_sender.build_slash_command("/rollback", "checkout")
        )
        assert ack.envelope_id
        message = await slack_api.wait_for(
            lambda: next((m for m in slack_api.messages(CHANNEL) if m.buttons()), None)
        )
        await socket.deliver_interactive(
            slack_sender.build_click(CHANNEL, message.ts, "rollback:to:2")
        )
        view = await slack_api.wait_for(
            lambda: slack_api.views()[-1] if slack_api.views() else None
        )
        submission = slack_sender.build_view_submission(view["id"], {"reason": "via socket"})
        await socket.deliver_interactive(submission)
        # Slack redelivers an envelope it thinks was lost: the same submission must not start twice.
        await socket.deliver("interactive", submission, retry_attempt=1, retry_reason="timeout")
        await slack_api.wait_for(
            lambda: (
                "rolled back to *2.13.0*"
                in "\n".join(m.all_text() for m in slack_api.thread(CHANNEL, message.ts))
            ),
            timeout=20,
        )
        started = [
            m for m in slack_api.thread(CHANNEL, message.ts) if "started rolling" in m.all_text()
        ]
        assert len(started) == 1
        assert (await demo_engine.status(CHECKOUT)).version == "2.13.0"
    finally:
        await bot.stop(grace=5)


async def test_metrics_count_the_rollback_and_the_acks(running_bot: BotUnderTest) -> None:
    import aiohttp

    t = running_bot
    message = await versions_message(t)
    await confirm(t, message, "rollback:to:2", reason=None)
    await t.slack.wait_for(lambda: "rolled back to" in thread_text(t, message), timeout=20)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{t.bot.port}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert 'rollbackbot_rollbacks_total{outcome="succeeded",service="checkout"} 1.0' in text
    assert 'rollbackbot_rollback_duration_seconds_count{service="checkout"} 1.0' in text
    assert "rollbackbot_rollouts_in_flight 0.0" in text
    assert 'rollbackbot_slack_ack_seconds_count{type="slash_command"} 1.0' in text
    assert 'rollbackbot_slack_ack_seconds_count{type="view_submission"} 1.0' in text


async def test_no_secret_reaches_a_log_line(
    running_bot: BotUnderTest, slack_signing_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    t = running_bot
    message = await versions_message(t)
    await confirm(t, message, "rollback:to:2", reason="check the logs")
    await t.slack.wait_for(lambda: "rolled back to" in thread_text(t, message), timeout=20)
    await t.sender.slash_command("/rollback", "nope")  # an error path too
    await t.slack.wait_for(lambda: t.slack.calls("response_url"))
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.__dict__!r}" for r in caplog.records)
    assert "rollback_bot.audit" in {r.name for r in caplog.records}
    for secret in (t.slack.bot_token, slack_signing_secret):
        assert secret not in logged


async def test_a_required_reason_is_asked_for_in_the_modal(
    start_bot: StartBot, demo_engine: RollbackEngine
) -> None:
    t = await start_bot(
        demo_catalog(
            checkout=ServiceEntry(namespace="shop", deployment="checkout", reason_required=True)
        )
    )
    message = await versions_message(t)
    await t.sender.click(CHANNEL, message.ts, "rollback:to:2")
    view: Any = await t.slack.wait_for(lambda: t.slack.views()[-1] if t.slack.views() else None)
    reply = await t.sender.submit_view(view["id"], {})
    assert reply.status == 200
    assert reply.json() == {
        "response_action": "errors",
        "errors": {"rollback:reason": "A reason is required to roll back checkout."},
    }
    # That answer is the listener's last step for the empty submission: nothing was started.
    assert (await demo_engine.status(CHECKOUT)).version == "2.14.0"
    assert not thread_text(t, message)
    reply = await t.sender.submit_view(view["id"], {"reason": "5xx"})
    assert reply.status == 200
    await t.slack.wait_for(lambda: "rolled back to" in thread_text(t, message), timeout=20)
    # Exactly one rollback ran, the one with the reason: one start, one new revision.
    started = [m for m in t.slack.thread(CHANNEL, message.ts) if "started rolling" in m.all_text()]
    assert len(started) == 1
    assert "5xx" in thread_text(t, message)
    history = await demo_engine.history(CHECKOUT)
    assert history.revisions[0].number == 4
