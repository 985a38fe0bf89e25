"""The watch's Slack messages over real HTTP, against the Slack stand-in: the watch message posted
in the channel and edited in place, notices and the verdict in its thread (broadcast when loud),
the chart uploaded there, each call at its priority, and Slack's refusals as the bot's errors."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.slack import action_ids
from bot.adapters.slack.analysis_messages import (
    SlackAnalysisMessages,
    SlackUnavailable,
    chart_filename,
)
from bot.adapters.slack.scheduler import Priority, current_priority
from bot.domain.analysis.watching import Phase
from bot.domain.errors import RollbackBotError
from bot.domain.rollback.models import Thread
from bot.usecases.analysis.ports import AnalysisMessages
from rollback_sandbox.slack.files import FileMessage
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID
from rollback_sandbox.slack.web_api import FakeSlackWebApi
from tests.sandbox.test_slack_files import PNG
from tests.unit.adapters.slack.test_analysis_blocks import offer, report, status

CHANNEL = DEFAULT_CHANNEL_ID


class RecordingClient(AsyncWebClient):
    """slack_sdk's client, noting the priority each Web API call was made at."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.priorities: list[tuple[str, Priority]] = []

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        self.priorities.append((api_method, current_priority()))
        return await super().api_call(api_method, **kwargs)


@pytest.fixture
def client(slack_api: FakeSlackWebApi) -> RecordingClient:
    return RecordingClient(token=slack_api.bot_token, base_url=slack_api.api_url)


def test_it_is_the_use_cases_port(client: RecordingClient) -> None:
    port: AnalysisMessages = SlackAnalysisMessages(client)  # mypy checks it structurally
    assert port is not None


async def test_the_watch_message_is_posted_then_edited_in_place(
    client: RecordingClient, slack_api: FakeSlackWebApi
) -> None:
    messages = SlackAnalysisMessages(client)
    thread = await messages.post_watching(CHANNEL, status())
    assert thread == Thread(CHANNEL, thread.thread_ts)
    posted = slack_api.message(CHANNEL, thread.thread_ts)
    assert posted is not None and not posted.is_reply
    assert posted.text.startswith("Watching checkout 2.14.0 (revision 3)")
    assert any(
        e.get("action_id") == action_ids.ANALYSIS_STOP
        for b in posted.blocks
        if b["type"] == "actions"
        for e in b["elements"]
    )

    await messages.update(thread, status(Phase.HEALTHY, "looks healthy after 10m00s"))
    edited = slack_api.message(CHANNEL, thread.thread_ts)
    assert edited is not None and len(edited.edits) == 1
    assert edited.text == "checkout 2.14.0 looks healthy after 10 minutes"
    assert all(b["type"] != "actions" for b in edited.blocks)
    assert slack_api.thread(CHANNEL, thread.thread_ts) == []
    assert client.priorities == [
        ("chat.postMessage", Priority.PROGRESS),
        ("chat.update", Priority.PROGRESS),
    ]


async def test_a_breach_is_told_in_the_thread_first_and_loud(
    client: RecordingClient, slack_api: FakeSlackWebApi
) -> None:
    messages = SlackAnalysisMessages(client)
    thread = await messages.post_watching(CHANNEL, status())
    await messages.notice(thread, "not enough traffic to judge")
    refused = status(Phase.NOT_ROLLED_BACK, "needs 2 approvals", on_call_group="S0ONCALL01")
    await messages.verdict(thread, refused, report(), offer=offer(), loud=True)
    await messages.update(thread, refused)
    await messages.chart(thread, "checkout 2.14.0 (revision 3)", PNG)

    notice, verdict, chart = slack_api.thread(CHANNEL, thread.thread_ts)
    assert notice.text == "checkout 2.14.0: not enough traffic to judge"
    assert not notice.reply_broadcast
    assert verdict.reply_broadcast and verdict.thread_ts == thread.thread_ts
    assert verdict.blocks[0]["text"]["text"].endswith("<!subteam^S0ONCALL01>")
    # Broadcast: the channel shows it beside the watch message.
    assert [m.ts for m in slack_api.messages(CHANNEL)] == [thread.thread_ts, verdict.ts]
    assert isinstance(chart, FileMessage)
    (stored,) = slack_api.files()
    assert stored.data == PNG
    assert (stored.channel, stored.thread_ts, stored.title) == (
        CHANNEL,
        thread.thread_ts,
        "checkout 2.14.0 (revision 3)",
    )
    (asked,) = slack_api.calls("files.getUploadURLExternal")
    assert asked.args["filename"] == "checkout-2.14.0-revision-3.png"

    watch, told, judged = slack_api.calls("chat.postMessage")
    assert [call.args.get("thread_ts") for call in (watch, told, judged)] == [
        None,
        thread.thread_ts,
        thread.thread_ts,
    ]
    assert "reply_broadcast" not in told.args
    assert judged.args["reply_broadcast"] in (True, "true", "1")
    assert client.priorities[:4] == [
        ("chat.postMessage", Priority.PROGRESS),  # the watch message
        ("chat.postMessage", Priority.PROGRESS),  # the notice
        ("chat.postMessage", Priority.ROLLBACK),  # the verdict
        ("chat.update", Priority.ROLLBACK),  # what was done about the breach
    ]
    assert {priority for _, priority in client.priorities[4:]} == {Priority.ROLLBACK}


async def test_a_quiet_verdict_stays_in_the_thread(
    client: RecordingClient, slack_api: FakeSlackWebApi
) -> None:
    messages = SlackAnalysisMessages(client)
    thread = await messages.post_watching(CHANNEL, status())
    await messages.verdict(thread, status(Phase.WOULD_ROLL_BACK), report(), offer=None, loud=False)
    (verdict,) = slack_api.thread(CHANNEL, thread.thread_ts)
    assert not verdict.reply_broadcast
    assert [m.ts for m in slack_api.messages(CHANNEL)] == [thread.thread_ts]


async def test_a_notice_of_a_watch_taken_over_says_only_what_happened(
    client: RecordingClient, slack_api: FakeSlackWebApi
) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="Watching checkout")
    thread = Thread(CHANNEL, str(parent["ts"]))
    await SlackAnalysisMessages(client).notice(thread, "Prometheus unreachable")
    (notice,) = slack_api.thread(CHANNEL, thread.thread_ts)
    assert notice.text == "Prometheus unreachable"


async def test_slacks_refusals_are_the_bots_errors(
    client: RecordingClient, slack_api: FakeSlackWebApi
) -> None:
    messages = SlackAnalysisMessages(client)
    outside = slack_api.add_channel("war-room", bot_is_member=False)
    with pytest.raises(SlackUnavailable, match="not_in_channel"):
        await messages.post_watching(outside, status())
    thread = await messages.post_watching(CHANNEL, status())
    slack_api.fail_next("chat.postMessage", "fatal_error")
    with pytest.raises(RollbackBotError, match="fatal_error"):
        await messages.notice(thread, "no data")
    with pytest.raises(SlackUnavailable, match="message_not_found"):
        await messages.update(Thread(CHANNEL, "1.000001"), status(Phase.HEALTHY))


def test_a_charts_file_name_is_made_of_safe_characters() -> None:
    assert chart_filename("checkout 2.14.0 (revision 3)") == "checkout-2.14.0-revision-3.png"
    assert chart_filename("../<!channel>/x") == "channel-x.png"
    assert chart_filename("…") == "analysis.png"
    assert len(chart_filename("x" * 500)) <= 84
