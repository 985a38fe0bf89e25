"""The local Slack workspace's bot token and signing secret stay out of sight: not on any
process's command line (`ps` shows those to everyone on the machine), not in the page's state
API; the embedded workspace that `rollback-bot serve` starts gets them by environment, and uses
them."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.entry.serve.embedded import embedded_slack
from rollback_sandbox.slack.main import (
    BOT_TOKEN_VARIABLE,
    LOCAL_BOT_TOKEN,
    LOCAL_SIGNING_SECRET,
    SIGNING_SECRET_VARIABLE,
    main,
)
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID
from rollback_sandbox.slack.workspace_ui import LocalWorkspace

TOKEN = "xoxb-0000-do-not-show-this-token"
SECRET = "0f1e2d3c-do-not-show-this-secret"
NOWHERE = "http://127.0.0.1:9/slack/events"


async def test_the_state_api_holds_neither_the_bot_token_nor_the_signing_secret() -> None:
    async with (
        LocalWorkspace(bot_events_url=NOWHERE, signing_secret=SECRET, bot_token=TOKEN) as ws,
        aiohttp.ClientSession() as session,
    ):
        # The bot's health check has answered (offline): the state says all it will say.
        await ws.api.wait_for(lambda: ws.state()["bot"]["state"] == "offline")
        seen: list[str] = []
        for path in ("ui/api/state", f"ui/api/state?channel={DEFAULT_CHANNEL_ID}", "", "ui/app.js"):
            async with session.get(f"{ws.url}{path}") as response:
                assert response.status == 200
                seen.append(await response.text())
        for body in seen:
            assert TOKEN not in body and SECRET not in body
        bot = json.loads(seen[0])["state"]["bot"]
        # It still says how to start the bot for this workspace, the credentials left out.
        assert bot["command"] == (
            "SLACK_BOT_TOKEN='<SLACK_BOT_TOKEN>' SLACK_SIGNING_SECRET='<SLACK_SIGNING_SECRET>' "
            f"ROLLBACK_BOT_SLACK_API_URL={ws.api_url} ROLLBACK_BOT_HOST=127.0.0.1 "
            "ROLLBACK_BOT_PORT=9 rollback-bot serve"
        )
        # The one who started it (its terminal, not the page) gets the whole command.
        assert f"SLACK_BOT_TOKEN={TOKEN} SLACK_SIGNING_SECRET={SECRET} " in ws.bot_command()


def test_the_workspace_takes_its_credentials_from_the_environment_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(BOT_TOKEN_VARIABLE, raising=False)
    monkeypatch.delenv(SIGNING_SECRET_VARIABLE, raising=False)
    assert main(["--print-env", "--port", "3999"]) == 0
    printed = capsys.readouterr().out
    assert f"export SLACK_BOT_TOKEN={LOCAL_BOT_TOKEN}\n" in printed
    assert f"export SLACK_SIGNING_SECRET={LOCAL_SIGNING_SECRET}\n" in printed

    monkeypatch.setenv(BOT_TOKEN_VARIABLE, TOKEN)
    monkeypatch.setenv(SIGNING_SECRET_VARIABLE, SECRET)
    assert main(["--print-env", "--port", "3999"]) == 0
    printed = capsys.readouterr().out
    assert f"export SLACK_BOT_TOKEN={TOKEN}\n" in printed
    assert f"export SLACK_SIGNING_SECRET={SECRET}\n" in printed
    # No way left to put them on the command line.
    for flag in ("--signing-secret", "--bot-token"):
        with pytest.raises(SystemExit):
            main(["--print-env", flag, "x"])
        assert "unrecognized arguments" in capsys.readouterr().err


@dataclass
class FakeBot:
    """Stands in for the bot's HTTP server: records what the workspace sends, answers 200."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextlib.contextmanager
def fake_bot() -> Iterator[FakeBot]:
    bot = FakeBot(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # /healthz
            self._answer()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            bot.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self._answer()

        def _answer(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    bot.url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield bot
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def command_lines() -> dict[int, str]:
    """Every process's command line that `ps` would show, by pid."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
                found[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                )
    return found


def parent_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))


def post_json(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL of this test
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def test_the_embedded_workspace_gets_its_credentials_by_environment_not_command_line() -> None:
    with fake_bot() as bot, embedded_slack(bot.url, port=free_port()) as local:
        lines = command_lines()
        [workspace] = [
            pid
            for pid, line in lines.items()
            if "rollback_sandbox.slack" in line and parent_of(pid) == os.getpid()
        ]
        assert f"--bot-events-url {bot.url}" in lines[workspace]
        for pid, line in lines.items():
            assert local.signing_secret not in line, f"the signing secret in `ps`: pid {pid}"
            assert local.bot_token not in line, f"the bot token in `ps`: pid {pid}"
        environment = Path(f"/proc/{workspace}/environ").read_bytes().split(b"\0")
        assert f"{SIGNING_SECRET_VARIABLE}={local.signing_secret}".encode() in environment
        assert f"{BOT_TOKEN_VARIABLE}={local.bot_token}".encode() in environment

        # And it uses them: its Web API takes the token, it signs with the secret.
        auth = urllib.request.Request(  # noqa: S310 - loopback
            f"{local.api_url}auth.test", headers={"Authorization": f"Bearer {local.bot_token}"}
        )
        with urllib.request.urlopen(auth, timeout=5) as response:  # noqa: S310 - loopback
            assert json.loads(response.read())["ok"] is True
        sent = post_json(f"{local.url}/ui/api/send", {"text": "/rollback checkout"})
        assert sent["ok"], sent
        deadline = time.monotonic() + 5
        while not bot.received:
            assert time.monotonic() < deadline, "the command never reached the bot"
            time.sleep(0.02)
        headers, body = bot.received[0]
        verifier = SignatureVerifier(local.signing_secret)
        assert verifier.is_valid_request(body, headers)
        assert b"command=%2Frollback" in body
