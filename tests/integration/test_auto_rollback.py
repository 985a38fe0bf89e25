"""Automatic rollback end to end: the real Prometheus (Debian's, scraping the harness' test
exporter every second), the simulated cluster, the Slack stand-in and the bot as `serve` wires
it, watching a service deployed at 1.0.0 when 1.1.0 goes out through the cluster's API.

The exporter serves each revision's pods under the pod-template-hash the cluster gave its
ReplicaSet: the old pods at 0.5 % errors, the new ones at what the test says. The analysis is
short (a 12 s window, every second, rates over 3 s, 2 breaching intervals in a row) so each
case takes about 20 s, most of it Prometheus' first samples and the window.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.adapters.slack.action_ids import ANALYSIS_STOP
from bot.config.catalog import Catalog, ServiceEntry
from bot.domain.analysis.config import AutoRollbackConfig, PrometheusConfig
from bot.domain.rollback.migrations import MIGRATION_ANNOTATION
from bot.domain.rollback.models import Target
from bot.entry.serve.wiring import Bot, build_bot
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_USER_ID,
    SlackRequestSender,
)
from rollback_sandbox.slack.web_api import FakeSlackWebApi, StoredMessage
from tests.bot_fixtures import bot_settings
from tests.integration.deploys import deploy, deployment, replicaset_of
from tests.integration.prometheus import (
    Prometheus,
    TestExporter,
    exporting,
    requires_prometheus,
    running_prometheus,
)

pytestmark = [requires_prometheus]

NAMESPACE = "shop"
CHANNEL = DEFAULT_CHANNEL_ID
ON_CALL = "S0ONCALL1"
BASELINE_ERRORS = 0.005
WAIT = 45.0


@dataclass
class World:
    cluster: SandboxThread
    prometheus: Prometheus
    exporter: TestExporter
    bots: list[Bot]  # the test's replicas, the first one first; a test may stop one
    service: str
    old_hash: str


Start = Callable[..., Awaitable[World]]


@pytest.fixture
async def start(
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slack_signing_secret: str,
    demo_cluster: SandboxThread,
    demo_kubeconfig: Path,
    tmp_path: Path,
) -> AsyncIterator[Start]:
    """`start(service, mode=…, approvals=…)`: the service deployed at 1.0.0 and served by the
    exporter, Prometheus scraping it, and the bot watching it."""
    bots: list[Bot] = []
    stack = contextlib.AsyncExitStack()

    async def begin(
        service: str,
        *,
        mode: str = "act",
        approvals: int = 0,
        replicas: int = 1,
        window: float = 12,
    ) -> World:
        async with aiohttp.ClientSession() as http:
            await deploy(http, demo_cluster, NAMESPACE, service, "1.0.0")
            old_hash, _ = await replicaset_of(http, demo_cluster, NAMESPACE, service, "1.0.0")
        exporter = await stack.enter_async_context(exporting())
        exporter.set_version(
            old_hash,
            namespace=NAMESPACE,
            deployment=service,
            rps=50,
            error_ratio=BASELINE_ERRORS,
            served_for=60,
        )
        prometheus = await stack.enter_async_context(
            running_prometheus(tmp_path / "prometheus", [exporter.target])
        )
        await prometheus.wait_for_samples(
            f'http_requests_total{{pod_template_hash="{old_hash}"}}', timeout=30
        )
        entry = ServiceEntry(
            namespace=NAMESPACE,
            deployment=service,
            channel=CHANNEL,
            approvals=approvals,
            auto_rollback=AutoRollbackConfig(
                mode=mode,  # type: ignore[arg-type]
                prometheus=PrometheusConfig(url=prometheus.url),
                window=window,
                interval=1,
                query_window=3,
                consecutive=2,
                on_call_group=ON_CALL,
            ),
        )
        settings = bot_settings(
            slack_api, demo_kubeconfig, slack_signing_secret, namespace=NAMESPACE
        )
        for _ in range(replicas):
            bot = build_bot(settings, Catalog(services={service: entry}))
            bots.append(bot)
            await bot.start()
        slack_sender.events_url = f"http://127.0.0.1:{bots[0].port}/slack/events"
        return World(demo_cluster, prometheus, exporter, bots, service, old_hash)

    async with stack:
        try:
            yield begin
        finally:
            for bot in reversed(bots):
                await bot.stop(grace=5)


async def go_out(
    world: World, version: str, error_ratio: float, *, annotations: dict[str, str] | None = None
) -> str:
    """Deploy `version` as a CI would, and serve its pods at `error_ratio`; its hash."""
    async with aiohttp.ClientSession() as http:
        if annotations is None:
            await deploy(http, world.cluster, NAMESPACE, world.service, version)
        else:
            template = deployment(world.service, version, NAMESPACE)["spec"]["template"]
            template["metadata"]["annotations"] = annotations
            url = (
                f"{world.cluster.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/"
                f"{world.service}"
            )
            headers = {"Content-Type": "application/strategic-merge-patch+json"}
            async with http.patch(
                url, json={"spec": {"template": template}}, headers=headers
            ) as answer:
                assert answer.status == 200, await answer.text()
        new_hash, _ = await replicaset_of(http, world.cluster, NAMESPACE, world.service, version)
    world.exporter.set_version(
        new_hash,
        namespace=NAMESPACE,
        deployment=world.service,
        rps=50,
        error_ratio=error_ratio,
    )
    return new_hash


async def watch_message(slack: FakeSlackWebApi, service: str) -> StoredMessage:
    found = await slack.wait_for(
        lambda: next(
            (m for m in slack.messages(CHANNEL) if "Watching" in m.text and service in m.text),
            None,
        ),
        timeout=WAIT,
    )
    assert found is not None
    return found


async def edited_to(
    slack: FakeSlackWebApi, message: StoredMessage, check: Callable[[str], bool]
) -> StoredMessage:
    def edited() -> StoredMessage | None:
        now = slack.message(CHANNEL, message.ts)
        return now if now is not None and check(now.text) else None

    try:
        found = await slack.wait_for(edited, timeout=WAIT)
    except AssertionError as exc:
        shown = [(m.ts, m.thread_ts, m.text[:100]) for m in slack.messages(CHANNEL)]
        replies_ = [(m.ts, m.text[:100]) for m in slack.thread(CHANNEL, message.ts)]
        raise AssertionError(f"{exc}; channel: {shown}; thread: {replies_}") from None
    assert found is not None, slack.message(CHANNEL, message.ts)
    return found


def replies(slack: FakeSlackWebApi, message: StoredMessage) -> list[StoredMessage]:
    return [m for m in slack.thread(CHANNEL, message.ts) if m.ts != message.ts]


def every_text(message: StoredMessage) -> str:
    """The message's text and its blocks' (what a person reads)."""
    return message.text + " " + str(message.blocks)


async def version_now(engine: RollbackEngine, service: str) -> str:
    return (await engine.status(_target(service))).version


async def test_a_bad_rollout_is_rolled_back_with_the_evidence_and_the_chart(
    start: Start, slack_api: FakeSlackWebApi, demo_engine: RollbackEngine
) -> None:
    world = await start("web", mode="act")
    await go_out(world, "1.1.0", error_ratio=0.3)
    watching = await watch_message(slack_api, "web")
    assert "1.1.0" in watching.text and "1.0.0" in watching.text
    await edited_to(slack_api, watching, lambda text: "rolled back" in text.lower())

    thread = replies(slack_api, watching)
    verdict = next(m for m in thread if "subteam" in every_text(m))
    text = every_text(verdict)
    assert f"<!subteam^{ON_CALL}>" in text
    assert "error ratio" in text and "30%" in text and "0.5%" in text
    assert world.prometheus.url in text  # the link to Prometheus' graph page
    assert not verdict.reply_broadcast  # the edited watch message says it in the channel
    chart = await slack_api.wait_for(lambda: next(iter(slack_api.files(CHANNEL)), None), timeout=30)
    assert chart is not None and chart.thread_ts == watching.ts
    assert chart.data.startswith(b"\x89PNG")
    # Through the runner: the rollout is told in the same thread, and the Deployment goes back.
    for _ in range(600):
        if await version_now(demo_engine, "web") == "1.0.0":
            break
        await asyncio.sleep(0.1)
    assert await version_now(demo_engine, "web") == "1.0.0"
    outcome = await slack_api.wait_for(
        lambda: next(
            (
                m
                for m in replies(slack_api, watching)
                if "rolled back" in m.text.lower() and "subteam" not in every_text(m)
            ),
            None,
        ),
        timeout=30,
    )
    assert outcome is not None, [m.text for m in replies(slack_api, watching)]
    print([m.text for m in replies(slack_api, watching)])
    # The rollback is no new version: nothing watches it.
    assert [m.ts for m in slack_api.messages(CHANNEL) if m.thread_ts in (None, m.ts)] == [
        watching.ts
    ]


async def test_in_dry_run_a_bad_rollout_is_told_with_a_button_and_nothing_is_patched(
    start: Start, slack_api: FakeSlackWebApi, demo_engine: RollbackEngine
) -> None:
    world = await start("api", mode="dry-run")
    await go_out(world, "1.1.0", error_ratio=0.3)
    watching = await watch_message(slack_api, "api")
    await edited_to(slack_api, watching, lambda text: "would have rolled back" in text.lower())
    verdict = next(m for m in replies(slack_api, watching) if "subteam" in every_text(m))
    buttons = [b for b in verdict.buttons() if str(b.get("action_id", "")).startswith("rollback")]
    assert buttons, verdict.blocks
    status = await demo_engine.status(_target("api"))
    assert status.version == "1.1.0" and status.revision == 2
    assert not any("rolling back" in m.text for m in replies(slack_api, watching))


async def test_a_good_rollout_is_declared_healthy_quietly(
    start: Start, slack_api: FakeSlackWebApi
) -> None:
    world = await start("shop-ui", mode="act")
    await go_out(world, "1.1.0", error_ratio=BASELINE_ERRORS)
    watching = await watch_message(slack_api, "shop-ui")
    await edited_to(slack_api, watching, lambda text: "looks healthy" in text)
    assert replies(slack_api, watching) == []
    assert slack_api.files(CHANNEL) == []
    assert len(slack_api.messages(CHANNEL)) == 1


async def test_prometheus_stopped_mid_analysis_gives_no_verdict_and_no_rollback(
    start: Start, slack_api: FakeSlackWebApi, demo_engine: RollbackEngine
) -> None:
    world = await start("finder", mode="act")
    await go_out(world, "1.1.0", error_ratio=BASELINE_ERRORS)
    watching = await watch_message(slack_api, "finder")
    await world.prometheus.stop()
    # From here on, the new pods go bad: nobody can see it, and nothing is rolled back for it.
    world.exporter.set_version(
        (await _hash_of(world, "1.1.0")),
        namespace=NAMESPACE,
        deployment="finder",
        rps=50,
        error_ratio=0.5,
    )
    ended = await edited_to(slack_api, watching, lambda text: "no verdict" in text.lower())
    assert "unreachable" in every_text(ended) or "cannot" in every_text(ended)
    notices = [m for m in replies(slack_api, watching) if "metrics cannot be read" in m.text]
    assert len(notices) == 1
    assert (await demo_engine.status(_target("finder"))).version == "1.1.0"


async def test_a_migration_guarded_target_is_not_rolled_back_and_the_team_is_mentioned(
    start: Start, slack_api: FakeSlackWebApi, demo_engine: RollbackEngine
) -> None:
    world = await start("billing", mode="act")
    await go_out(
        world, "1.1.0", error_ratio=0.3, annotations={MIGRATION_ANNOTATION: "irreversible"}
    )
    watching = await watch_message(slack_api, "billing")
    ended = await edited_to(slack_api, watching, lambda text: "not rolled back" in text.lower())
    assert "schema migrated by 1.1.0" in every_text(ended)
    verdict = next(m for m in replies(slack_api, watching) if "subteam" in every_text(m))
    assert f"<!subteam^{ON_CALL}>" in every_text(verdict)
    assert verdict.reply_broadcast
    assert (await demo_engine.status(_target("billing"))).version == "1.1.0"


def _target(service: str) -> Target:
    return Target(NAMESPACE, service, None)


async def _hash_of(world: World, version: str) -> str:
    async with aiohttp.ClientSession() as http:
        found, _ = await replicaset_of(http, world.cluster, NAMESPACE, world.service, version)
    return found


async def watch_lease(world: World) -> dict[str, Any]:
    url = (
        f"{world.cluster.url}/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/"
        f"rollback-bot-watch.{world.service}"
    )
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        assert answer.status == 200, await answer.text()
        lease: dict[str, Any] = await answer.json()
        return lease


async def test_two_replicas_watch_once_and_a_stopping_holder_hands_the_watch_over(
    start: Start, slack_api: FakeSlackWebApi
) -> None:
    world = await start("cart-api", mode="dry-run", replicas=2, window=14)
    await go_out(world, "1.1.0", error_ratio=BASELINE_ERRORS)
    watching = await watch_message(slack_api, "cart-api")
    holder = (await watch_lease(world))["spec"]["holderIdentity"]
    stopping = next(bot for bot in world.bots if bot.runner.replica == holder)
    world.bots.remove(stopping)
    await stopping.stop(grace=5)
    (other,) = world.bots

    # Ended (healthy, or no verdict where a loaded machine's Prometheus missed scrapes) by the
    # replica that took it over, in the same message.
    ended = await edited_to(slack_api, watching, lambda text: "Watching" not in text)
    assert "looks healthy" in ended.text or "no verdict" in ended.text, ended.text
    # One message for the rollout, told to its end by the replica that took it over.
    top_level = [m.ts for m in slack_api.messages(CHANNEL) if m.thread_ts in (None, m.ts)]
    assert top_level == [watching.ts]
    notes = (await watch_lease(world))["metadata"]["annotations"]
    assert notes["rollback-bot.io/watch-ended"] in ("healthy", "no_verdict")
    assert notes["rollback-bot.io/watch-ts"] == watching.ts
    assert other.runner.replica != holder


async def test_stop_watching_from_slack_ends_the_watch_and_records_who(
    start: Start, slack_api: FakeSlackWebApi, slack_sender: SlackRequestSender
) -> None:
    world = await start("ledger", mode="act", window=60)
    await go_out(world, "1.1.0", error_ratio=BASELINE_ERRORS)
    watching = await watch_message(slack_api, "ledger")
    button = watching.button(ANALYSIS_STOP)
    user = DEFAULT_USER_ID
    await slack_sender.click(CHANNEL, watching.ts, ANALYSIS_STOP, value=button["value"])

    ended = await edited_to(slack_api, watching, lambda text: "stopped watching" in text.lower())
    assert f"<@{user}>" in every_text(ended)
    assert not ended.buttons()
    notes = (await watch_lease(world))["metadata"]["annotations"]
    assert notes["rollback-bot.io/watch-ended"] == "stopped"
    assert notes["rollback-bot.io/watch-stop-by"] == user
    # Whoever clicked is told privately.
    told = await slack_api.wait_for(
        lambda: next(iter(slack_api.ephemerals(CHANNEL, user)), None), timeout=WAIT
    )
    assert told is not None and "Stopping the watch" in told.text
