"""The real Prometheus Alertmanager (Debian's package) sending to the running bot: firing →
one message with the rollback offer → click → rollback on the simulated cluster; more alerts and
repeats update it; resolution updates it and notes it in the thread. Plus the webhook's guards,
and one message per group across two bot replicas sharing the cluster-side index."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.config.catalog import Catalog
from bot.entry.serve.wiring import Bot, build_bot
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi, RecordedCall, StoredMessage
from tests.bot_fixtures import CHECKOUT, bot_settings
from tests.integration.alertmanager import (
    AlertmanagerConfig,
    alert,
    requires_alertmanager,
    running_alertmanager,
)

pytestmark = requires_alertmanager

TOKEN = "am-token-5c1e"
CHANNEL = DEFAULT_CHANNEL_ID
LABELS = {
    "alertname": "HighErrorRate",
    "namespace": "shop",
    "deployment": "checkout",
    "severity": "critical",
}


async def start_replica(
    slack: FakeSlackWebApi, kubeconfig: Path, secret: str, catalog: Catalog
) -> Bot:
    settings = bot_settings(
        slack,
        kubeconfig,
        secret,
        alertmanager_token=SecretStr(TOKEN),
        default_channel=CHANNEL,
        namespace="shop",
    )
    bot = build_bot(settings, catalog)
    await bot.start()
    return bot


@pytest.fixture
async def alert_bot(
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slack_signing_secret: str,
    demo_kubeconfig: Path,
    catalog: Catalog,
) -> AsyncIterator[Bot]:
    bot = await start_replica(slack_api, demo_kubeconfig, slack_signing_secret, catalog)
    slack_sender.events_url = f"http://127.0.0.1:{bot.port}/slack/events"
    try:
        yield bot
    finally:
        await bot.stop(grace=5)


def alert_messages(slack: FakeSlackWebApi) -> list[StoredMessage]:
    return [m for m in slack.messages(CHANNEL) if "HighErrorRate" in m.all_text()]


def alert_posts(slack: FakeSlackWebApi) -> list[RecordedCall]:
    """Every chat.postMessage of an alert message the stand-in accepted."""
    return [
        c
        for c in slack.calls("chat.postMessage")
        if c.ok and c.args.get("channel") == CHANNEL and "HighErrorRate" in str(c.args)
    ]


async def test_firing_offer_click_rollback_then_resolved(
    alert_bot: Bot,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
    tmp_path: Path,
) -> None:
    webhook = f"http://127.0.0.1:{alert_bot.port}/alertmanager"
    config = AlertmanagerConfig(webhook_url=webhook, token=TOKEN)
    async with running_alertmanager(tmp_path, config) as am:
        started = datetime.now(UTC)
        await am.post_alerts(
            [alert({**LABELS, "pod": "checkout-1"}, annotations={"summary": "5xx over 5%"})]
        )
        found = await slack_api.wait_for(
            lambda: next(iter(alert_messages(slack_api)), None), timeout=20
        )
        assert found is not None
        message = found
        text = message.all_text()
        # The demo's 2.14.0 went out 12 minutes before the alert: the deploy is the likely cause.
        assert "Likely caused by the deploy of 2.14.0: it went out 12 minutes" in text
        assert "5xx over 5%" in text
        assert [b["text"]["text"] for b in message.buttons()] == ["Roll back to 2.13.0"]

        # A second alert joins the group: the same message is updated, none is added.
        await am.post_alerts([alert({**LABELS, "pod": "checkout-2"}, starts_at=started)])
        await slack_api.wait_for(lambda: "checkout-2" in message.all_text(), timeout=20)
        assert len(alert_messages(slack_api)) == 1

        # The offer's button runs the same confirmation and rollback as /rollback.
        views = len(slack_api.views())
        await slack_sender.click(CHANNEL, message.ts, message.buttons()[0]["action_id"])
        view: Any = await slack_api.wait_for(
            lambda: slack_api.views()[-1] if len(slack_api.views()) > views else None
        )
        await slack_sender.submit_view(view["id"], {"reason": "alert says 5xx"})
        await slack_api.wait_for(
            lambda: any(
                "rolled back to *2.13.0*" in m.all_text()
                for m in slack_api.thread(CHANNEL, message.ts)
            ),
            timeout=20,
        )
        assert (await demo_engine.status(CHECKOUT)).version == "2.13.0"

        # Resolution: the message says so, and the thread notes it.
        now = datetime.now(UTC)
        await am.post_alerts(
            [
                alert({**LABELS, "pod": pod}, starts_at=started, ends_at=now)
                for pod in ("checkout-1", "checkout-2")
            ]
        )
        await slack_api.wait_for(
            lambda: any(
                "resolved" in m.all_text() and "HighErrorRate" in m.all_text()
                for m in slack_api.thread(CHANNEL, message.ts)
            ),
            timeout=20,
        )
        assert "resolved" in message.all_text().lower()
        assert not message.buttons()
        assert len(alert_messages(slack_api)) == 1


def webhook_body(group_key: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rollback-bot",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {**LABELS, **labels},
        "commonAnnotations": {"summary": "5xx over 5%"},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [
            {
                "status": status,
                "labels": {**LABELS, **labels},
                "annotations": {"summary": "5xx over 5%"},
                "startsAt": (now - timedelta(minutes=3)).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com:9090/graph",
                "fingerprint": "c1d2e3f4a5b6c7d8",
            }
        ],
    }


async def test_the_webhook_refuses_wrong_tokens_and_bad_bodies(alert_bot: Bot) -> None:
    url = f"http://127.0.0.1:{alert_bot.port}/alertmanager"
    body = json.dumps(webhook_body('{}:{alertname="HighErrorRate"}'))
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post(url, data=b"{not json", headers=good) as response:
            assert response.status == 400
            assert "error" in await response.json()
        async with http.post(url, data=json.dumps({"version": "3"}), headers=good) as response:
            assert response.status == 400
        big = io.BytesIO(b"x" * (1024 * 1024 + 10))
        async with http.post(url, data=big, headers=good) as response:
            assert response.status == 413


async def test_a_body_split_across_writes_is_read_whole(
    alert_bot: Bot, slack_api: FakeSlackWebApi
) -> None:
    """Raw HTTP: a large group's body arrives in pieces, as over a real network."""
    group = webhook_body('{}:{alertname="HighErrorRate"}')
    group["alerts"] = [
        {**group["alerts"][0], "labels": {**LABELS, "pod": f"checkout-{i:04d}"}} for i in range(300)
    ]
    body = json.dumps(group).encode()
    assert len(body) > 64 * 1024
    reader, writer = await asyncio.open_connection("127.0.0.1", alert_bot.port)
    writer.write(
        b"POST /alertmanager HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
    )
    for start in range(0, len(body), 16 * 1024):
        writer.write(body[start : start + 16 * 1024])
        await writer.drain()
        await asyncio.sleep(0.01)  # each piece its own segment, as over a real network
    response = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    head, _, answer = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response[:300]
    assert json.loads(answer)["posted"] == 1
    assert len(alert_posts(slack_api)) == 1


async def test_two_replicas_post_one_message_per_group(
    alert_bot: Bot,
    slack_api: FakeSlackWebApi,
    slack_signing_secret: str,
    demo_kubeconfig: Path,
    catalog: Catalog,
) -> None:
    second = await start_replica(slack_api, demo_kubeconfig, slack_signing_secret, catalog)
    try:
        body = json.dumps(webhook_body('{}:{alertname="HighErrorRate", deployment="checkout"}'))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:

            async def deliver(bot: Bot) -> dict[str, Any]:
                # Alertmanager retries a 503 ("being posted by another replica"): do the same.
                # The bot answers 503 only after waiting for the other replica's post itself,
                # so the retry goes at once.
                url = f"http://127.0.0.1:{bot.port}/alertmanager"
                for _ in range(3):
                    async with http.post(url, data=body, headers=headers) as response:
                        if response.status != 503:
                            assert response.status == 200, await response.text()
                            answer: dict[str, Any] = await response.json()
                            return answer
                raise AssertionError(f"{url} answered 503 three times")

            answers = await asyncio.gather(*(deliver(b) for b in (alert_bot, second) * 3))
        # The webhook answers once its Slack work is done: every delivery is accounted for, one
        # posted the group's message and the five others updated it.
        assert sorted((a["posted"], a["updated"]) for a in answers) == [(0, 1)] * 5 + [(1, 0)]
        assert len(alert_posts(slack_api)) == 1
        assert len(alert_messages(slack_api)) == 1
        # A restarted bot (a fresh process would read the same ConfigMap) updates, not posts.
        await second.stop(grace=5)
        second = await start_replica(slack_api, demo_kubeconfig, slack_signing_secret, catalog)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{second.port}/alertmanager"
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 200
                answer = await response.json()
        assert (answer["posted"], answer["updated"]) == (0, 1)
        assert len(alert_posts(slack_api)) == 1
        assert len(alert_messages(slack_api)) == 1
    finally:
        await second.stop(grace=5)


async def test_unmapped_alerts_are_counted_and_ignored(
    alert_bot: Bot, slack_api: FakeSlackWebApi
) -> None:
    body = webhook_body('{}:{alertname="DiskFull"}')
    body["alerts"][0]["labels"] = {"alertname": "DiskFull", "service": "payments"}
    body["commonLabels"] = {}
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{alert_bot.port}/alertmanager"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post(url, data=json.dumps(body), headers=headers) as response:
            assert response.status == 200
            answer = await response.json()
    # The webhook answers once its work is done: nothing was posted, and nothing will be.
    assert (answer["unmapped"], answer["posted"], answer["updated"]) == (1, 0, 0)
    assert not slack_api.messages(CHANNEL)
    assert not slack_api.calls("chat.postMessage")


async def test_alertmanagers_own_slack_post_gets_the_offer_in_its_thread_once(
    alert_bot: Bot, slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender
) -> None:
    from rollback_sandbox.slack.requests import alertmanager_attachment

    attachment = alertmanager_attachment(
        group_labels={"alertname": "HighErrorRate"},
        common_labels={"alertname": "HighErrorRate", "service": "checkout"},
        text="*Alert:* HighErrorRate\nservice: checkout\nnamespace: shop",
    )

    def alertmanager_post() -> StoredMessage:
        return slack_api.post_as(
            CHANNEL, "", bot_id="B0ALERTMGR", username="alertmanager", attachments=[attachment]
        )

    def first_reply(post: StoredMessage) -> StoredMessage | None:
        return next(iter(slack_api.thread(CHANNEL, post.ts)), None)

    post = alertmanager_post()
    event = post.to_event()
    # Slack may deliver the event twice (a retry); the bot answers once.
    for _ in range(2):
        reply = await slack_sender.event(event)
        assert reply.status == 200
    answer = await slack_api.wait_for(lambda: first_reply(post), timeout=10)
    assert answer is not None
    assert "This alert is about *checkout*" in answer.all_text()
    assert [b["text"]["text"] for b in answer.buttons()] == ["Roll back to 2.13.0"]
    # A person's message mentioning the service is not an alert.
    chat = slack_api.post_as(CHANNEL, "is checkout down?", user="U0ONCALL01")
    reply = await slack_sender.event(chat.to_event())
    assert reply.status == 200
    # Then a later Alertmanager post, answered in its own thread. Its listener starts after
    # theirs (the person's message is passed over without awaiting anything), and its claim on
    # the message index comes after the repeat's (claims queue in order, and a repeat that does
    # not win its claim stops there): once its answer is there, both have been dealt with.
    later = alertmanager_post()
    reply = await slack_sender.event(later.to_event())
    assert reply.status == 200
    await slack_api.wait_for(lambda: first_reply(later), timeout=10)
    assert len(slack_api.thread(CHANNEL, post.ts)) == 1
    assert not slack_api.thread(CHANNEL, chat.ts)


async def test_a_chunked_body_is_read_whole(alert_bot: Bot, slack_api: FakeSlackWebApi) -> None:
    """Raw HTTP with Transfer-Encoding: chunked, the chunks apart in time."""
    body = json.dumps(webhook_body('{}:{alertname="HighErrorRate", chunked="yes"}')).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", alert_bot.port)
    writer.write(
        b"POST /alertmanager HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TOKEN}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    for start in range(0, len(body), 300):
        piece = body[start : start + 300]
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)  # each chunk its own segment
    writer.write(b"0\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    head, _, answer = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), response[:300]
    assert json.loads(answer)["posted"] == 1
