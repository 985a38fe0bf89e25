"""The browser tests' world: Debian's Chromium driven headless by Playwright, on the local Slack
workspace page, with a real bot (Bolt on aiohttp, over real HTTP) and the demo cluster behind it.

Playwright's own browser download is never used: `make tools` installs Debian's Chromium
(scripts/install-chromium.sh). Without it these tests fail, saying so; they are never skipped."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from bot.config.catalog import Catalog
from bot.entry.serve.wiring import Bot, build_bot
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.workspace_ui import LocalWorkspace
from tests.bot_fixtures import bot_settings
from tests.slack_fixtures import SLACK_SIGNING_SECRET

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Simulated seconds per real second: a pod of checkout gets ready in ~0.75 s, so its rollout
#: takes a few seconds, long enough for the thread to show it under way.
BROWSER_SPEED = 4.0
#: Nothing listens here: the workspace is pointed at the bot once the bot has its port.
NOWHERE = "http://127.0.0.1:9/slack/events"


@pytest.fixture
def demo_cluster() -> Iterator[SandboxThread]:
    """The demo (checkout 2.14.0, bad, over 2.13.0 and 2.12.0) at a pace a person can follow."""
    with SandboxThread(seed="demo", speed=BROWSER_SPEED) as sandbox:
        yield sandbox


@dataclass
class LocalSlack:
    workspace: LocalWorkspace
    bot: Bot


@pytest.fixture
async def local_slack(demo_kubeconfig: Path, catalog: Catalog) -> AsyncIterator[LocalSlack]:
    """The local Slack workspace (the page and Slack's Web API) and a real bot for it."""
    async with LocalWorkspace(bot_events_url=NOWHERE, signing_secret=SLACK_SIGNING_SECRET) as ws:
        bot = build_bot(bot_settings(ws.api, demo_kubeconfig, SLACK_SIGNING_SECRET), catalog)
        await bot.start()
        ws.bot_events_url = f"http://127.0.0.1:{bot.port}/slack/events"
        try:
            yield LocalSlack(ws, bot)
        finally:
            await bot.stop(grace=5)


def chromium_or_fail() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Debian's Chromium is not installed at {CHROMIUM}: the browser tests need it. "
            "Run `make tools` (or `bash scripts/install-chromium.sh`)."
        )
    return CHROMIUM


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh headless Chromium (its own new profile) with one tab."""
    chromium = chromium_or_fail()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
        )
        try:
            context.set_default_timeout(15_000)
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()


@dataclass
class Screenshots:
    """Numbered screenshots of each step, in the test's own output folder."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    async def take(self, page: Page, step: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{step}.png"
        await page.screenshot(path=path)
        self.taken.append(path)
        return path


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return Screenshots(folder)
