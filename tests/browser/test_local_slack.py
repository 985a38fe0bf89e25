"""The local Slack workspace in a real browser, used as a person uses it: type `/rollback
checkout`, click *Roll back to 2.13.0*, confirm with a reason, watch the thread; open another
confirmation; switch channels. A real bot and the demo cluster are behind the page
(conftest.py); a screenshot of each step lands in the test's output folder."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import aiohttp
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, Request, expect

from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID
from rollback_sandbox.slack.web_api import GENERAL_CHANNEL_ID
from tests.bot_fixtures import CHECKOUT
from tests.browser.conftest import LocalSlack, Screenshots

INCIDENTS = DEFAULT_CHANNEL_ID
GENERAL = GENERAL_CHANNEL_ID
REASON = "5xx spike after 2.14.0"
#: Long enough for a rollout of the demo's checkout at the browser tests' pace, several times.
ROLLOUT_MS = 30_000

#: Records, in the page, each text the thread's progress message shows (the one with the bar):
#: every render replaces the timeline, so each version the person could see is seen here.
WATCH_PROGRESS = """() => {
  window.progressSeen = [];
  const look = () => {
    for (const reply of document.querySelectorAll("#timeline .thread article.msg.reply")) {
      const blocks = reply.querySelector(".blocks");
      const text = blocks ? blocks.textContent : "";
      const seen = window.progressSeen;
      if (/[▰▱]/.test(text) && seen[seen.length - 1] !== text) seen.push(text);
    }
  };
  new MutationObserver(look).observe(
    document.getElementById("timeline"), { childList: true, subtree: true, characterData: true }
  );
  look();
}"""


class StatePolls:
    """The page's requests for a channel's state (`/ui/api/state`), as the browser sent them,
    and how each ended: "finished", or the browser's failure (`net::ERR_ABORTED`)."""

    def __init__(self, page: Page) -> None:
        self.sent: list[Request] = []
        self.ended: dict[Request, str] = {}
        page.on("request", self._sent)
        page.on("requestfinished", lambda r: self._end(r, "finished"))
        page.on("requestfailed", lambda r: self._end(r, r.failure or "failed"))

    def _sent(self, request: Request) -> None:
        if urlsplit(request.url).path == "/ui/api/state":
            self.sent.append(request)

    def _end(self, request: Request, how: str) -> None:
        if request in self.sent:
            self.ended[request] = how

    def in_flight(self, channel: str) -> list[Request]:
        return [r for r in self.sent if r not in self.ended and channel_of(r) == channel]


def channel_of(request: Request) -> str:
    return parse_qs(urlsplit(request.url).query).get("channel", [""])[0]


def since_of(request: Request) -> str:
    return parse_qs(urlsplit(request.url).query).get("since", [""])[0]


async def holding_polls(slack: LocalSlack, polls: StatePolls, channel: str) -> list[Request]:
    """The page's long polls of `channel` that wait for a change: asked with the state's
    current etag, so they are held by the server until something changes."""
    url = f"{slack.workspace.url}ui/api/state"
    deadline = time.monotonic() + 10
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url, params={"channel": channel}) as response:
                etag = (await response.json())["etag"]
            holding = [r for r in polls.in_flight(channel) if since_of(r) == etag]
            if holding:
                return holding
            assert time.monotonic() < deadline, f"no long poll of {channel} holding"
            await asyncio.sleep(0.02)


T = TypeVar("T")


async def until(found: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    """Wait for `found()` to be truthy (an event seen by the page's listeners)."""
    deadline = time.monotonic() + timeout
    while not (result := found()):
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        await asyncio.sleep(0.02)
    return result


async def open_workspace(page: Page, slack: LocalSlack) -> StatePolls:
    polls = StatePolls(page)
    await page.goto(slack.workspace.url)
    await expect(page.locator("#channel-name")).to_have_text("#incidents")
    await expect(page.locator("#bot-status")).to_have_class(re.compile(r"\bonline\b"))
    return polls


async def type_command(page: Page, text: str) -> None:
    composer = page.locator("#composer-input")
    await composer.click()
    await composer.press_sequentially(text)
    await composer.press("Enter")


def top_messages(page: Page) -> Locator:
    return page.locator("#timeline > article.msg")


def rollback_button(where: Locator | Page, version: str) -> Locator:
    return where.get_by_role("button", name=f"Roll back to {version}", exact=True)


async def versions_message(page: Page) -> Locator:
    """The bot's answer to `/rollback checkout`: by its ts, since it loses its buttons while a
    rollback runs and gets them back after."""
    answer = top_messages(page).filter(has=rollback_button(page, "2.13.0"))
    await expect(answer).to_be_visible()
    ts = await answer.get_attribute("data-ts")
    return top_messages(page).and_(page.locator(f'[data-ts="{ts}"]'))


async def confirmation(page: Page, to_version: str) -> Locator:
    """The confirmation box for a rollback to `to_version`, open: its reason field."""
    await expect(page.locator("#modal-backdrop")).to_be_visible()
    await expect(page.locator("#modal-title")).to_have_text("Confirm rollback")
    await expect(page.locator("#modal-body")).to_contain_text(f"to {to_version} (revision")
    reason = page.locator("#modal-body input[type=text]")
    await expect(reason).to_have_count(1)
    return reason


async def roll_back(page: Page, message: Locator, version: str, reason: str) -> Locator:
    """Click *Roll back to VERSION*, type the reason, confirm: the thread's outcome reply."""
    await rollback_button(message, version).click()
    field = await confirmation(page, version)
    await field.press_sequentially(reason)
    await page.locator("#modal-submit").click()
    await expect(page.locator("#modal-backdrop")).to_be_hidden()
    return message.locator(".thread article.reply").filter(has_text=f"rolled back to {version} in")


async def second_confirmation_opens_empty(
    page: Page, message: Locator, screenshots: Screenshots
) -> Locator:
    """Once the first rollback is told (its outcome in the thread) and the message has its
    buttons back, a new confirmation (to 2.12.0) shows an empty reason field."""
    await expect(rollback_button(message, "2.12.0")).to_be_visible(timeout=ROLLOUT_MS)
    await rollback_button(message, "2.12.0").click()
    field = await confirmation(page, "2.12.0")
    await screenshots.take(page, "second-confirmation")
    typed = await field.input_value()
    assert typed == "", f"the second confirmation opened with {typed!r} typed in"
    return field


async def switch_to_general_and_ask(
    page: Page, slack: LocalSlack, polls: StatePolls, screenshots: Screenshots
) -> None:
    """Click `# general` while the page long-polls #incidents, ask there: the old poll is
    cancelled, the answer shows in #general, and the page stays there."""
    old = await holding_polls(slack, polls, INCIDENTS)
    before = len(polls.sent)
    await page.locator("#channels a", has_text="# general").click()
    await expect(page.locator("#channel-name")).to_have_text("#general")
    await expect(page).to_have_url(re.compile(rf"\?channel={GENERAL}$"))
    await until(
        lambda: all(r in polls.ended for r in old),
        "the long poll for #incidents ended after switching to #general",
        timeout=5,
    )
    assert {polls.ended[r] for r in old} == {"net::ERR_ABORTED"}, "the old poll was not cancelled"
    await screenshots.take(page, "general")

    await type_command(page, "/rollback checkout")
    answer = top_messages(page).filter(has=page.get_by_role("button", name="Roll back to 2.12.0"))
    await expect(answer).to_be_visible()
    await screenshots.take(page, "answer-in-general")
    await expect(page.locator("#channel-name")).to_have_text("#general")
    await expect(page).to_have_url(re.compile(rf"\?channel={GENERAL}$"))
    assert await page.title() == "#general · Local Slack"
    asked_since = {channel_of(r) for r in polls.sent[before:]}
    assert asked_since == {GENERAL}, f"channels asked for after the switch: {asked_since}"


async def scroll_to(element: Locator) -> None:
    """Scroll `element` into view for a screenshot. The page redraws a thread when one of its
    messages changes, which can swap the element out under the scroll: find it again then."""
    for _ in range(5):
        try:
            await element.scroll_into_view_if_needed(timeout=2000)
            return
        except PlaywrightError:
            await asyncio.sleep(0.1)
    await element.scroll_into_view_if_needed()


async def test_a_rollback_from_the_browser_from_command_to_outcome(
    page: Page, local_slack: LocalSlack, screenshots: Screenshots, demo_engine: RollbackEngine
) -> None:
    polls = await open_workspace(page, local_slack)
    await screenshots.take(page, "workspace")
    await type_command(page, "/rollback checkout")
    message = await versions_message(page)
    await screenshots.take(page, "versions")

    await page.evaluate(WATCH_PROGRESS)
    await rollback_button(message, "2.13.0").click()
    field = await confirmation(page, "2.13.0")
    assert await field.input_value() == ""
    await field.press_sequentially(REASON)
    await screenshots.take(page, "confirmation")
    await page.locator("#modal-submit").click()
    await expect(page.locator("#modal-backdrop")).to_be_hidden()

    thread = message.locator(".thread")
    await expect(thread).to_contain_text("started rolling checkout")
    await expect(thread).to_contain_text(REASON)
    await page.wait_for_function("window.progressSeen.length > 0")
    await screenshots.take(page, "progress")
    outcome = thread.locator("article.reply").filter(has_text="rolled back to 2.13.0 in")
    await expect(outcome).to_be_visible(timeout=ROLLOUT_MS)
    await scroll_to(outcome)
    await screenshots.take(page, "rolled-back")
    await expect(outcome).to_contain_text("✅")
    assert (await demo_engine.status(CHECKOUT)).version == "2.13.0"

    seen: list[str] = await page.evaluate("window.progressSeen")
    first, last = seen[0], seen[-1]
    assert "▱" in first, f"the progress bar was full from the start: {first!r} (seen: {seen})"
    assert "▰" * 10 in last and "▱" not in last, f"the bar did not end full: {last!r}"
    assert "✅" in last and "⏳" not in last, f"the progress message did not end ✅: {last!r}"

    await second_confirmation_opens_empty(page, message, screenshots)
    await page.locator("#modal-close").click()
    await expect(page.locator("#modal-backdrop")).to_be_hidden()

    await switch_to_general_and_ask(page, local_slack, polls, screenshots)


async def test_a_new_confirmation_starts_empty_and_the_old_reason_goes_nowhere(
    page: Page, local_slack: LocalSlack, screenshots: Screenshots, demo_engine: RollbackEngine
) -> None:
    await open_workspace(page, local_slack)
    await type_command(page, "/rollback checkout")
    message = await versions_message(page)
    outcome = await roll_back(page, message, "2.13.0", REASON)
    await expect(outcome).to_be_visible(timeout=ROLLOUT_MS)
    assert REASON in ((await demo_engine.status(CHECKOUT)).change_cause or "")

    await second_confirmation_opens_empty(page, message, screenshots)
    await page.locator("#modal-submit").click()  # the reason is optional here: none given
    await expect(page.locator("#modal-backdrop")).to_be_hidden()
    second = message.locator(".thread article.reply").filter(has_text="rolled back to 2.12.0 in")
    await expect(second).to_be_visible(timeout=ROLLOUT_MS)
    await scroll_to(second)
    await screenshots.take(page, "second-rollback")
    deployed = await demo_engine.status(CHECKOUT)
    assert deployed.version == "2.12.0"
    assert REASON not in (deployed.change_cause or ""), deployed.change_cause
    started = message.locator(".thread article.reply").filter(has_text="back from 2.13.0")
    await expect(started).to_have_count(1)
    await expect(started).not_to_contain_text(REASON)


async def test_switching_channels_shows_the_answer_in_the_new_channel(
    page: Page, local_slack: LocalSlack, screenshots: Screenshots
) -> None:
    polls = await open_workspace(page, local_slack)
    await screenshots.take(page, "incidents")
    await switch_to_general_and_ask(page, local_slack, polls, screenshots)
    # Back to #incidents: its own (empty) timeline, and nothing of #general's.
    await page.locator("#channels a", has_text="# incidents").click()
    await expect(page.locator("#channel-name")).to_have_text("#incidents")
    await expect(top_messages(page)).to_have_count(0)
    await expect(page.locator("#timeline .empty")).to_contain_text("beginning of #incidents")
