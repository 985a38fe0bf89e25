"""An alert storm from the real Alertmanager (Debian's package): 200 groups about 40 services fire
at once into one channel. The channel gets a few messages and one digest listing every service
with its button; a rollback started from the digest tells its outcome as soon as the rollout is
done, while the Slack stand-in enforces Slack's rate limits; resolving everything updates the
digest. Plus the digest's picker when the services overflow it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.adapters.slack.payloads import RollbackButton
from bot.config.catalog import Catalog, ServiceEntry
from bot.domain.rollback.progress import Phase, rollout_progress
from bot.entry.serve.wiring import Bot, build_bot
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi, StoredMessage
from tests.bot_fixtures import bot_settings
from tests.integration.alertmanager import (
    AlertmanagerConfig,
    alert,
    requires_alertmanager,
    running_alertmanager,
)
from tests.integration.deploys import deploy_services

TOKEN = "am-storm-token-3f1a"
CHANNEL = DEFAULT_CHANNEL_ID
NAMESPACE = "shop"
ALERT_NAMES = ("HighErrorRate", "HighLatency", "PodCrashLooping", "SaturationHigh", "ErrorBudget")


def webhook_body(name: str, n: int) -> dict[str, Any]:
    """One group about one service, as Alertmanager's webhook sends it."""
    labels = {"alertname": "HighErrorRate", "namespace": NAMESPACE, "deployment": name}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{deployment="{name}"}}',
        "status": "firing",
        "receiver": "rollback-bot",
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com:9093",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {},
                "startsAt": "2026-12-02T11:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com:9090/graph",
                "fingerprint": f"{n:016x}",
            }
        ],
    }


def storm_catalog(names: list[str]) -> Catalog:
    return Catalog(
        services={
            name: ServiceEntry(namespace=NAMESPACE, deployment=name, channel=CHANNEL)
            for name in names
        }
    )


StartStorm = Callable[..., Awaitable[tuple[list[Bot], list[str]]]]


@pytest.fixture
async def start_storm(
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slack_signing_secret: str,
    demo_cluster: SandboxThread,
    demo_kubeconfig: Path,
) -> AsyncIterator[StartStorm]:
    """`start(services, replicas=1, **settings)`: that many services deployed, each with two
    revisions and the one channel, and that many bot replicas started (the sender talks to the
    first); all stopped after the test."""
    started: list[Bot] = []

    async def start(
        services: int, replicas: int = 1, **extra: object
    ) -> tuple[list[Bot], list[str]]:
        names = [f"svc-{i:02d}" for i in range(services)]
        await deploy_services(demo_cluster, NAMESPACE, names)
        settings = bot_settings(
            slack_api,
            demo_kubeconfig,
            slack_signing_secret,
            alertmanager_token=SecretStr(TOKEN),
            namespace=NAMESPACE,
            **extra,
        )
        bots = [build_bot(settings, storm_catalog(names)) for _ in range(replicas)]
        for bot in bots:
            started.append(bot)
            await bot.start()
        slack_sender.events_url = f"http://127.0.0.1:{bots[0].port}/slack/events"
        return bots, names

    try:
        yield start
    finally:
        for bot in reversed(started):
            await bot.stop(grace=5)


def digest_of(slack: FakeSlackWebApi) -> StoredMessage | None:
    return next((m for m in slack.messages(CHANNEL) if m.text.startswith("Alert storm")), None)


def offered(message: StoredMessage) -> dict[str, tuple[dict[str, Any], RollbackButton]]:
    """The digest's rollback buttons by service."""
    found = {}
    for button in message.buttons():
        if str(button.get("action_id", "")).startswith("rollback:to"):
            value = RollbackButton.decode(button["value"])
            found[value.service] = (button, value)
    return found


@requires_alertmanager
async def test_a_storm_of_200_groups_gives_one_digest_with_every_service_and_rollbacks_go_first(
    start_storm: StartStorm,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    demo_engine: RollbackEngine,
    tmp_path: Path,
) -> None:
    [bot], names = await start_storm(40)
    assert slack_api.limits is not None  # Slack's documented rate limits, enforced
    config = AlertmanagerConfig(
        webhook_url=f"http://127.0.0.1:{bot.port}/alertmanager",
        token=TOKEN,
        group_by=("alertname", "namespace", "deployment"),
    )
    async with running_alertmanager(tmp_path, config) as am:
        labels = [
            {"alertname": alert_name, "namespace": NAMESPACE, "deployment": name}
            for name in names
            for alert_name in ALERT_NAMES
        ]
        assert len(labels) == 200
        await am.post_alerts([alert(each, annotations={"summary": "bad"}) for each in labels])

        def every_service_in_the_digest() -> StoredMessage | None:
            # Each service has five groups and only four groups came before the storm: every
            # service has a group in the digest, so the digest offers every one of them.
            digest = digest_of(slack_api)
            return digest if digest is not None and set(offered(digest)) == set(names) else None

        digest = await slack_api.wait_for(every_service_in_the_digest, timeout=90)
        assert digest is not None
        top_level = slack_api.messages(CHANNEL)
        refused = sum(1 for c in slack_api.calls() if c.status == 429)
        buttons = offered(digest)
        print(f"{len(top_level)} top-level messages, {len(buttons)} digest buttons, {refused} 429s")
        assert len(top_level) <= 5, [m.text for m in top_level]
        assert all(value.target_version == "1.0.0" for _, value in buttons.values())

        # A rollback from the digest during the storm: its outcome goes before alert traffic.
        service = sorted(buttons)[0]
        button, value = buttons[service]
        views = len(slack_api.views())
        await slack_sender.click(
            CHANNEL,
            digest.ts,
            button["action_id"],
            value=button["value"],
            block_id=button["block_id"],
        )
        view: Any = await slack_api.wait_for(
            lambda: slack_api.views()[-1] if len(slack_api.views()) > views else None, timeout=20
        )
        await slack_sender.submit_view(view["id"], {"reason": "storm"})
        ref = storm_catalog(names).resolve(service)
        completed = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = await demo_engine.status(ref.target)
            if rollout_progress(now).phase is Phase.COMPLETE and now.version == "1.0.0":
                completed = time.time()
                break
            await asyncio.sleep(0.05)
        assert completed is not None, "the rollback did not complete"

        def outcome() -> float | None:
            return next(
                (
                    c.time
                    for c in slack_api.calls("chat.postMessage")
                    if c.ok
                    and c.args.get("thread_ts") == digest.ts
                    and f"rolled back to *{value.target_version}*" in json.dumps(c.args)
                ),
                None,
            )

        told = await slack_api.wait_for(outcome, timeout=20)
        assert told is not None
        print(f"outcome posted {told - completed:.2f}s after the rollout completed")
        assert told - completed < 1.0, f"outcome {told - completed:.2f}s after the rollout"

        # Everything resolves: the digest says so, and no message is added.
        ended = datetime.now(UTC) - timedelta(seconds=1)
        await am.post_alerts([alert(each, ends_at=ended) for each in labels])

        def all_resolved() -> bool:
            current = slack_api.message(CHANNEL, digest.ts)
            return (
                current is not None
                and not offered(current)
                and "all resolved" in (current.all_text())
            )

        assert await slack_api.wait_for(all_resolved, timeout=90)
        assert len(slack_api.messages(CHANNEL)) == len(top_level)


async def test_services_past_what_the_digest_holds_are_picked_and_offered_in_its_thread(
    start_storm: StartStorm, slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender
) -> None:
    [bot], names = await start_storm(60, alert_storm_messages=2)
    url = f"http://127.0.0.1:{bot.port}/alertmanager"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:

        async def deliver(name: str) -> None:
            body = webhook_body(name, names.index(name))
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 200, await response.text()

        await asyncio.gather(*(deliver(name) for name in names))

    def overflowing() -> StoredMessage | None:
        digest = digest_of(slack_api)
        if digest is None or "59 alert groups" not in digest.all_text():
            return None
        listing = [m for m in slack_api.thread(CHANNEL, digest.ts) if m.ts != digest.ts]
        return digest if listing and "svc-59" in listing[0].all_text() else None

    digest = await slack_api.wait_for(overflowing, timeout=60)
    assert digest is not None
    shown = offered(digest)
    hidden = sorted(set(names[1:]) - set(shown))  # the first group has its own message
    assert hidden and len(shown) + len(hidden) == 59
    picker = next(
        element
        for block in digest.blocks
        for element in [block.get("accessory") or {}]
        if element.get("type") == "static_select"
    )
    assert {o["value"] for o in picker["options"]} == set(hidden)

    assert bot.scheduler is not None
    sent = bot.scheduler.stats().attempts
    await slack_sender.click(CHANNEL, digest.ts, picker["action_id"], value=hidden[0])

    def offer() -> StoredMessage | None:
        return next(
            (
                m
                for m in slack_api.thread(CHANNEL, digest.ts)
                if any(
                    RollbackButton.decode(b["value"]).service == hidden[0]
                    for b in m.buttons()
                    if str(b.get("action_id", "")).startswith("rollback:to")
                )
            ),
            None,
        )

    message = await slack_api.wait_for(offer, timeout=20)
    assert message is not None
    assert f"<@{slack_sender.user_id}>" in message.all_text()  # who asked, for everyone
    # The listener posted it through the scheduler (Bolt's own client is swapped for it).
    assert bot.scheduler.stats().attempts > sent
    [button] = [b for b in message.buttons() if b["action_id"].startswith("rollback:to")]
    views = len(slack_api.views())
    await slack_sender.click(CHANNEL, message.ts, button["action_id"])
    view: Any = await slack_api.wait_for(
        lambda: slack_api.views()[-1] if len(slack_api.views()) > views else None, timeout=20
    )
    assert hidden[0] in json.dumps(view)


async def test_two_replicas_in_one_storm_post_one_digest(
    start_storm: StartStorm, slack_api: FakeSlackWebApi
) -> None:
    replicas, names = await start_storm(12, replicas=2)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:

        async def deliver(n: int) -> dict[str, Any]:
            # Each group to both replicas at once, as two Alertmanagers of a cluster would.
            url = f"http://127.0.0.1:{replicas[n % 2].port}/alertmanager"
            for _ in range(5):  # a 503 ("being posted by the other replica") is retried
                async with http.post(
                    url, json=webhook_body(names[n // 3], n // 3), headers=headers
                ) as response:
                    if response.status != 503:
                        assert response.status == 200, await response.text()
                        answer: dict[str, Any] = await response.json()
                        return answer
            raise AssertionError("503 five times")

        answers = await asyncio.gather(*(deliver(n) for n in range(3 * len(names))))
    assert sum(a["posted"] for a in answers) == 4  # four groups of their own, once each

    def settled() -> StoredMessage | None:
        digest = digest_of(slack_api)
        return digest if digest is not None and len(offered(digest)) == 8 else None

    digest = await slack_api.wait_for(settled, timeout=30)
    assert digest is not None
    top_level = slack_api.messages(CHANNEL)
    assert len(top_level) == 5, [m.text for m in top_level]
    assert [m.text.startswith("Alert storm") for m in top_level].count(True) == 1
