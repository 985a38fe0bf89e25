"""`rollback-bot serve` as real processes against the test's simulated cluster and Slack
stand-in: each started by replica name (POD_NAME), ready before it is returned, and stopped
after the test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from rollback_sandbox.slack.web_api import FakeSlackWebApi

__all__ = ["ServeProcess", "StartServe", "serve_processes"]


@dataclass
class ServeProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


# A replica's name, and the settings of this test's world (KUBECONFIG, ROLLBACK_BOT_CONFIG, …).
StartServe = Callable[[str, Mapping[str, str]], Awaitable[ServeProcess]]


@pytest.fixture
async def serve_processes(
    slack_api: FakeSlackWebApi,
    slack_signing_secret: str,
    tmp_path: Path,
    unused_tcp_port_factory: Callable[[], int],
) -> AsyncIterator[StartServe]:
    secrets = tmp_path / "no-secrets"
    secrets.mkdir()
    started: list[ServeProcess] = []

    async def start(name: str, settings: Mapping[str, str]) -> ServeProcess:
        port = unused_tcp_port_factory()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("KUBERNETES_", "ROLLBACK_BOT_", "SLACK_"))
        }
        env.update(
            POD_NAME=name,
            SLACK_BOT_TOKEN=slack_api.bot_token,
            SLACK_SIGNING_SECRET=slack_signing_secret,
            ROLLBACK_BOT_SLACK_API_URL=slack_api.api_url,
            ROLLBACK_BOT_HOST="127.0.0.1",
            ROLLBACK_BOT_PORT=str(port),
            ROLLBACK_BOT_SECRETS_DIR=str(secrets),
            **settings,
        )
        log = tmp_path / f"{name}-{len(started)}.log"
        with log.open("wb") as out:
            process = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-m", "bot", "serve"],
                env=env,
                stdout=out,
                stderr=out,
            )
        replica = ServeProcess(name, port, process, log)
        started.append(replica)
        await _ready(replica)
        return replica

    try:
        yield start
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.kill()
            replica.process.wait(timeout=10)


async def _ready(replica: ServeProcess, timeout: float = 60.0) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
        while True:
            if replica.process.poll() is not None:
                raise AssertionError(f"{replica.name} exited:\n{replica.output()}")
            try:
                async with http.get(f"http://127.0.0.1:{replica.port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
