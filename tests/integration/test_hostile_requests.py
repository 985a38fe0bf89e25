"""Generated hostile Slack requests, correctly signed (the worst case: a leaked secret, or Slack
itself relaying someone's odd input), against the running bot over real HTTP: every one is
answered below 500, no handler crashes, and nothing odd reaches the channel."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID
from tests.bot_fixtures import BotUnderTest

SHARED_BOT = settings(
    max_examples=40,
    deadline=None,
    # One bot serves all the examples: it holds no state an example could leave behind that
    # another depends on, and starting one per example would take minutes.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

words = st.text(st.characters(codec="utf-8"), max_size=120) | st.sampled_from(
    [
        "status",
        "history",
        "help",
        "shop/",
        "/checkout",
        "SHOP/CHECKOUT",
        "a/b/c",
        "checkout " * 50,
        "<!channel>",
        "kube-system/coredns",
        "\x00\x1b[2J",
    ]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
interactions = st.fixed_dictionaries(
    {"type": st.sampled_from(["block_actions", "view_submission", "shortcut", "junk"])},
    optional={
        "user": json_values,
        "actions": json_values,
        "view": json_values,
        "channel": json_values,
        "trigger_id": st.text(max_size=20),
        "team": json_values,
    },
)


def crashed(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Handler crashes: tracebacks logged by the bot or by Bolt."""
    return [r.getMessage() for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]


@SHARED_BOT
@given(text=words)
async def test_any_command_text_is_answered_privately_or_as_a_view(
    running_bot: BotUnderTest, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    reply = await running_bot.sender.slash_command("/rollback", text)
    assert reply.status == 200
    assert not crashed(caplog)
    for message in running_bot.slack.messages(DEFAULT_CHANNEL_ID):
        assert "<!channel>" not in json.dumps(message.blocks)


@SHARED_BOT
@given(payload=interactions)
async def test_any_interaction_payload_is_answered_below_500(
    running_bot: BotUnderTest, caplog: pytest.LogCaptureFixture, payload: dict[str, Any]
) -> None:
    posted_before = len(running_bot.slack.messages(DEFAULT_CHANNEL_ID))
    reply = await running_bot.sender.send_interactive(payload)
    assert reply.status < 500
    assert len(running_bot.slack.messages(DEFAULT_CHANNEL_ID)) == posted_before
    assert not running_bot.slack.views()  # nothing generated opens a confirmation
