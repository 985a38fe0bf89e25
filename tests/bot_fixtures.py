"""A real bot (Bolt on aiohttp, over real HTTP) wired to the Slack stand-in and a simulated
cluster seeded with the demo: checkout 2.14.0 (bad) on top of 2.13.0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.adapters.kube.clusters import ClusterRegistry
from bot.config.catalog import Catalog, ServiceEntry
from bot.config.settings import Settings
from bot.domain.rollback.models import Target
from bot.entry.serve.wiring import Bot, build_bot
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi
from tests.builders import OneCluster

# Simulated seconds per real second: pods become ready in a fraction of a second.
DEMO_SPEED = 40.0
CHECKOUT = Target("shop", "checkout")


@pytest.fixture
def demo_cluster() -> Iterator[SandboxThread]:
    with SandboxThread(seed="demo", speed=DEMO_SPEED) as sandbox:
        yield sandbox


@pytest.fixture
def demo_kubeconfig(demo_cluster: SandboxThread, tmp_path: Path) -> Path:
    return demo_cluster.write_kubeconfig(tmp_path / "demo.kubeconfig", namespace="shop")


@pytest.fixture
async def demo_engine(demo_kubeconfig: Path) -> AsyncIterator[RollbackEngine]:
    """The test's own view of the cluster (separate from the bot's), to check what happened."""
    cluster = ClusterRegistry(str(demo_kubeconfig), None, request_timeout=5).cluster(None)
    yield RollbackEngine(OneCluster(cluster))
    await cluster.close()


def demo_catalog(**services: ServiceEntry) -> Catalog:
    """The demo's services (checkout and cart, open to everyone), with `services` added or
    replacing them: `demo_catalog(checkout=ServiceEntry(..., reason_required=True))`."""
    return Catalog(
        services={
            "checkout": ServiceEntry(namespace="shop", deployment="checkout"),
            "cart": ServiceEntry(namespace="shop", deployment="cart"),
            **services,
        }
    )


@pytest.fixture
def catalog() -> Catalog:
    return demo_catalog()


@dataclass
class BotUnderTest:
    bot: Bot
    slack: FakeSlackWebApi
    sender: SlackRequestSender

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.port}/slack/events"


def bot_settings(
    slack: FakeSlackWebApi, kubeconfig: Path, secret: str, **extra: object
) -> Settings:
    return Settings(
        kubeconfig=str(kubeconfig),
        slack_bot_token=SecretStr(slack.bot_token),
        slack_signing_secret=SecretStr(secret),
        slack_api_url=slack.api_url,
        host="127.0.0.1",
        port=0,
        **extra,  # type: ignore[arg-type]
    )


StartBot = Callable[[Catalog], Awaitable[BotUnderTest]]


@pytest.fixture
async def start_bot(
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slack_signing_secret: str,
    demo_kubeconfig: Path,
) -> AsyncIterator[StartBot]:
    """Start a bot built with the given catalog (its configuration is fixed from then on);
    `slack_sender` then sends to it. Every bot started is stopped after the test."""
    started: list[Bot] = []

    async def start(catalog: Catalog) -> BotUnderTest:
        bot = build_bot(bot_settings(slack_api, demo_kubeconfig, slack_signing_secret), catalog)
        started.append(bot)
        await bot.start()
        slack_sender.events_url = f"http://127.0.0.1:{bot.port}/slack/events"
        return BotUnderTest(bot, slack_api, slack_sender)

    try:
        yield start
    finally:
        for bot in reversed(started):
            await bot.stop(grace=5)


@pytest.fixture
async def running_bot(start_bot: StartBot, catalog: Catalog) -> BotUnderTest:
    return await start_bot(catalog)
