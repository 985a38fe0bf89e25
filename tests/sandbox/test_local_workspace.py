"""The local Slack workspace, driven over HTTP the way its page drives it: the simulated cluster,
the workspace and a real bot, with the user typing `/rollback checkout`, clicking and confirming."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config.catalog import Catalog, ServiceEntry
from bot.entry.serve.wiring import Bot, build_bot
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.slack.main import bot_environment, describe, serve
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from rollback_sandbox.slack.workspace_ui import LocalWorkspace
from tests.bot_fixtures import CHECKOUT, bot_settings, demo_catalog
from tests.slack_fixtures import SLACK_SIGNING_SECRET

JsonDict = dict[str, Any]
#: Nothing listens here: port 9 (discard) on the loopback is closed on any test machine.
NOWHERE = "http://127.0.0.1:9/slack/events"


class Browser:
    """What the page does: JSON over HTTP to the workspace."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base.rstrip("/")
        self.session = session

    async def get_state(self, since: str | None = None) -> tuple[str, JsonDict]:
        params = {"channel": DEFAULT_CHANNEL_ID, **({"since": since} if since else {})}
        async with self.session.get(f"{self.base}/ui/api/state", params=params) as r:
            assert r.status == 200
            body = await r.json()
        return str(body["etag"]), body["state"]

    async def post(self, path: str, body: JsonDict) -> JsonDict:
        async with self.session.post(f"{self.base}{path}", json=body) as r:
            assert r.status == 200, await r.text()
            result: JsonDict = await r.json()
        return result

    async def wait(self, predicate: Callable[[JsonDict], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            _, state = await self.get_state()
            found = predicate(state)
            if found:
                return found
            assert time.monotonic() < deadline, f"not seen within {timeout}s: {state}"
            await asyncio.sleep(0.05)


def texts(node: Any) -> list[str]:
    """Every `text` string in a JSON tree (blocks, attachments …), in order."""
    if isinstance(node, dict):
        own = [node["text"]] if isinstance(node.get("text"), str) else []
        return own + [t for v in node.values() if not isinstance(v, str) for t in texts(v)]
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    return []


def buttons(message: JsonDict) -> list[JsonDict]:
    found: list[JsonDict] = []
    for block in message["blocks"]:
        found.extend(e for e in block.get("elements", []) if e.get("type") == "button")
        if block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


@dataclass
class Stack:
    workspace: LocalWorkspace
    browser: Browser
    bot: Bot | None


@pytest.fixture
async def offline() -> AsyncIterator[Stack]:
    """The workspace with no bot behind it."""
    async with (
        LocalWorkspace(bot_events_url=NOWHERE, signing_secret=SLACK_SIGNING_SECRET) as ws,
        aiohttp.ClientSession() as session,
    ):
        yield Stack(ws, Browser(ws.url, session), None)


@asynccontextmanager
async def running_stack(kubeconfig: Path, catalog: Catalog) -> AsyncIterator[Stack]:
    """The workspace, and a bot built with `catalog` for the cluster of `kubeconfig`."""
    async with (
        LocalWorkspace(bot_events_url=NOWHERE, signing_secret=SLACK_SIGNING_SECRET) as ws,
        aiohttp.ClientSession() as session,
    ):
        bot = build_bot(bot_settings(ws.api, kubeconfig, SLACK_SIGNING_SECRET), catalog)
        await bot.start()
        ws.bot_events_url = f"http://127.0.0.1:{bot.port}/slack/events"
        try:
            yield Stack(ws, Browser(ws.url, session), bot)
        finally:
            await bot.stop(grace=5)


@pytest.fixture
async def stack(demo_kubeconfig: Path, catalog: Catalog) -> AsyncIterator[Stack]:
    """The demo cluster (checkout 2.14.0 over 2.13.0), the workspace, and the bot."""
    async with running_stack(demo_kubeconfig, catalog) as running:
        yield running


async def open_confirmation(b: Browser) -> tuple[JsonDict, JsonDict]:
    """Type `/rollback checkout`, click "Roll back to 2.13.0": the message and the modal."""
    sent = await b.post(
        "/ui/api/send", {"channel": DEFAULT_CHANNEL_ID, "text": "/rollback checkout"}
    )
    assert sent["ok"], sent
    message = await b.wait(
        lambda s: next((m for m in s["messages"] if m["is_bot"] and m["blocks"]), None)
    )
    button = next(x for x in buttons(message) if x["text"]["text"] == "Roll back to 2.13.0")
    assert button["style"] == "danger"
    clicked = await b.post(
        "/ui/api/click",
        {"channel": message["channel"], "ts": message["ts"], "action_id": button["action_id"]},
    )
    assert clicked["ok"], clicked
    modal = await b.wait(lambda s: s["modal"])
    return message, modal


def reason_input(modal: JsonDict) -> JsonDict:
    return next(b for b in modal["blocks"] if b["type"] == "input")


async def test_command_click_confirm_and_the_thread_tells_the_story(
    stack: Stack, demo_engine: RollbackEngine
) -> None:
    b = stack.browser
    message, modal = await open_confirmation(b)
    assert modal["title"]["text"] == "Confirm rollback"
    assert modal["submit"]["text"] == "Roll back"
    field = reason_input(modal)
    assert field["element"]["type"] == "plain_text_input"

    result = await b.post(
        f"/ui/api/views/{modal['id']}/submit",
        {"values": {field["element"]["action_id"]: "5xx spike after 2.14.0"}},
    )
    assert result["ok"] and result["closed"] and not result["errors"], result

    def finished(state: JsonDict) -> JsonDict | None:
        parent = next(m for m in state["messages"] if m["ts"] == message["ts"])
        story = "\n".join(t for reply in parent["replies"] for t in texts(reply))
        return parent if "rolled back to *2.13.0*" in story else None

    parent = await b.wait(finished, timeout=15)
    story = "\n".join(t for reply in parent["replies"] for t in texts(reply))
    assert f"<@{DEFAULT_USER_ID}> started rolling *checkout*" in story
    assert "5xx spike after 2.14.0" in story
    assert (await demo_engine.status(CHECKOUT)).version == "2.13.0"
    _, state = await b.get_state()
    assert state["modal"] is None
    await b.wait(lambda s: s["bot"]["state"] == "online", timeout=5)
    assert {"chat.postMessage", "views.open", "chat.update"} <= {
        c["method"] for c in state["calls"]
    }


async def test_errors_from_the_bot_show_in_the_modal_and_keep_it_open(
    demo_kubeconfig: Path,
) -> None:
    catalog = demo_catalog(
        checkout=ServiceEntry(namespace="shop", deployment="checkout", reason_required=True)
    )
    async with running_stack(demo_kubeconfig, catalog) as stack:
        b = stack.browser
        _, modal = await open_confirmation(b)
        result = await b.post(f"/ui/api/views/{modal['id']}/submit", {"values": {}})
        assert result["ok"] and not result["closed"]
        assert result["errors"] == {
            reason_input(modal)["block_id"]: "A reason is required to roll back checkout."
        }
        _, state = await b.get_state()
        assert state["modal"]["id"] == modal["id"]

        closed = await b.post(f"/ui/api/views/{modal['id']}/close", {})
        assert closed["ok"]
        _, state = await b.get_state()
        assert state["modal"] is None


async def test_ephemeral_answers_are_shown_to_you_and_can_be_dismissed(stack: Stack) -> None:
    b = stack.browser
    await b.post("/ui/api/send", {"channel": DEFAULT_CHANNEL_ID, "text": "/rollback chekout"})
    notice = await b.wait(lambda s: next((m for m in s["messages"] if m["ephemeral"]), None))
    assert "did you mean 'checkout'?" in "\n".join(texts(notice))
    dismissed = await b.post("/ui/api/dismiss", {"channel": DEFAULT_CHANNEL_ID, "ts": notice["ts"]})
    assert dismissed["ok"]
    _, state = await b.get_state()
    assert not state["messages"]


async def test_an_unreachable_bot_is_reported_like_slack_does(offline: Stack) -> None:
    b = offline.browser
    sent = await b.post(
        "/ui/api/send", {"channel": DEFAULT_CHANNEL_ID, "text": "/rollback checkout"}
    )
    assert (sent["ok"], sent["error"]) == (False, "dispatch_failed")
    assert "127.0.0.1:9" in sent["detail"]
    notice = await b.wait(lambda s: next((m for m in s["messages"] if m["system"]), None))
    assert notice["author"] == "Slackbot" and notice["ephemeral"]
    assert '`/rollback` failed with the error "dispatch_failed"' in notice["text"]
    state = await b.wait(lambda s: s if s["bot"]["state"] == "offline" else None, timeout=5)
    assert "not answering" in state["bot"]["detail"]

    unknown = await b.post("/ui/api/send", {"channel": DEFAULT_CHANNEL_ID, "text": "/deploy x"})
    assert unknown["error"] == "unknown_command"


async def test_the_state_long_polls_until_something_changes(
    offline: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = offline.browser
    # The bot's health is part of the state: once its first check has found it offline, nothing
    # changes the state but the message below.
    await b.wait(lambda s: s["bot"]["state"] == "offline", timeout=5)
    etag, state = await b.get_state()
    assert state["channel"]["name"] == "incidents" and not state["messages"]
    # Count the server's looks at the state: it compares it with `since` on every tick.
    looks = 0
    state_now = offline.workspace.state

    def counted_state(channel: str | None = None) -> JsonDict:
        nonlocal looks
        looks += 1
        return state_now(channel)

    monkeypatch.setattr(offline.workspace, "state", counted_state)
    started = time.monotonic()
    waiting = asyncio.create_task(b.get_state(since=etag))
    # A second look for this request means the first found nothing new and it held its answer.
    await offline.workspace.api.wait_for(lambda: looks >= 2)
    assert not waiting.done()
    # A plain message is stored (and offered to the bot, which is not there: no matter).
    await b.post("/ui/api/send", {"channel": DEFAULT_CHANNEL_ID, "text": "anyone on call?"})
    new_etag, new_state = await asyncio.wait_for(waiting, 5)
    assert new_etag != etag and time.monotonic() - started < 5
    [message] = new_state["messages"]
    assert (message["text"], message["author"], message["is_bot"]) == (
        "anyone on call?",
        "On Call",
        False,
    )


async def test_the_page_and_its_assets_are_served_and_posts_must_be_json(offline: Stack) -> None:
    session = offline.browser.session
    base = offline.workspace.url
    async with session.get(base) as r:
        assert r.status == 200 and r.content_type == "text/html"
        page = await r.text()
    assert "/ui/app.js" in page and "/ui/app.css" in page and "http" not in page.split("<body>")[1]
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        async with session.get(f"{base}ui/{name}") as r:
            assert (r.status, r.content_type) == (200, kind)
    async with session.get(f"{base}ui/secrets.txt") as r:
        assert r.status == 404
    form = {"channel": DEFAULT_CHANNEL_ID, "text": "/rollback checkout"}
    async with session.post(f"{base}ui/api/send", data=form) as r:
        assert r.status == 415


async def test_serve_runs_until_stopped_and_says_how_to_connect_the_bot() -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    seen: list[LocalWorkspace] = []

    def ready(workspace: LocalWorkspace) -> None:
        seen.append(workspace)
        started.set()

    task = asyncio.create_task(
        serve("127.0.0.1", 0, NOWHERE, "s3cret", "xoxb-1", stop=stop, on_ready=ready)
    )
    await asyncio.wait_for(started.wait(), 5)
    workspace = seen[0]
    env = workspace.bot_environment()
    assert env == {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s3cret",
        "ROLLBACK_BOT_SLACK_API_URL": workspace.api_url,
        "ROLLBACK_BOT_HOST": "127.0.0.1",
        "ROLLBACK_BOT_PORT": "9",
    }
    port = int(workspace.api_url.rsplit(":", 1)[1].split("/")[0])
    given = bot_environment(
        port, bot_events_url=NOWHERE, signing_secret="s3cret", bot_token="xoxb-1"
    )
    assert given == env
    assert workspace.url in describe(workspace)
    assert "ROLLBACK_BOT_PORT=9 rollback-bot serve" in describe(workspace)
    async with aiohttp.ClientSession() as session, session.get(workspace.url) as r:
        assert r.status == 200
    stop.set()
    assert await asyncio.wait_for(task, 5) == 0
