"""pytest fixtures for the Slack stand-in (import them from a conftest, or list this module in
`pytest_plugins`).

- `slack_api`: a started `FakeSlackWebApi` (Web API + Socket Mode + response_urls) on 127.0.0.1.
- `slack_signing_secret`: the signing secret the bot under test must be configured with.
- `slack_sender`: a `SlackRequestSender` signing with that secret, bound to `slack_api` (response
  URLs and clicks go through the fake). Set `slack_sender.events_url` to the bot's
  `http://127.0.0.1:<port>/slack/events` before sending.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rollback_sandbox.slack.requests import SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi

__all__ = ["SLACK_SIGNING_SECRET", "slack_api", "slack_sender", "slack_signing_secret"]

SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the example shape from Slack's docs


@pytest.fixture
def slack_signing_secret() -> str:
    return SLACK_SIGNING_SECRET


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackWebApi]:
    async with FakeSlackWebApi() as api:
        yield api


@pytest.fixture
async def slack_sender(
    slack_api: FakeSlackWebApi, slack_signing_secret: str
) -> AsyncIterator[SlackRequestSender]:
    async with SlackRequestSender(slack_signing_secret, slack=slack_api) as sender:
        yield sender
