"""The Slack endpoint's edges over raw HTTP: nothing unsigned is parsed, logged or counted."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlencode

import aiohttp
import pytest

from rollback_sandbox.slack.requests import sign
from tests.bot_fixtures import BotUnderTest
from tests.slack_fixtures import SLACK_SIGNING_SECRET


async def metrics_text(http: aiohttp.ClientSession, t: BotUnderTest) -> str:
    async with http.get(f"http://127.0.0.1:{t.bot.port}/metrics") as response:
        return await response.text()


async def test_unsigned_requests_are_refused_before_anything_reads_them(
    running_bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_link = "https://hooks.slack.com/commands/T0/1/SECRETRESPONSEURL"
    async with aiohttp.ClientSession() as http:
        before = await metrics_text(http, running_bot)
        bodies = [
            urlencode({"payload": "{not json", "response_url": secret_link}),
            urlencode({"payload": '{"type": "junk-' + "x" * 50 + '"}'}),
        ] + [urlencode({"payload": f'{{"type": "junk-{i}"}}'}) for i in range(1000)]

        async def send(body: str) -> int:
            async with http.post(
                running_bot.events_url,
                data=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Slack-Request-Timestamp": str(int(time.time())),
                    "X-Slack-Signature": "v0=" + "0" * 64,
                },
            ) as response:
                return response.status

        statuses = []
        for start in range(0, len(bodies), 50):
            statuses += await asyncio.gather(*(send(b) for b in bodies[start : start + 50]))
        assert set(statuses) == {401}
        after = await metrics_text(http, running_bot)
    assert len(after) == len(before)  # not one new series
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "SECRETRESPONSEURL" not in logged
    assert "junk-" not in logged
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_signed_request_of_an_unknown_type_is_counted_as_other(
    running_bot: BotUnderTest,
) -> None:
    body = urlencode({"payload": '{"type": "something_new", "team": {"id": "T0"}}'})
    timestamp = str(int(time.time()))
    async with aiohttp.ClientSession() as http:
        async with http.post(
            running_bot.events_url,
            data=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": sign(SLACK_SIGNING_SECRET, timestamp, body),
            },
        ) as response:
            assert response.status in (200, 404)  # Bolt: no listener for it
        text = await metrics_text(http, running_bot)
    assert 'rollbackbot_slack_ack_seconds_count{type="other"} 1.0' in text
    assert "something_new" not in text
