"""The processes a benchmark measures: the simulated cluster and `rollback-bot serve`, each in its
own process as in production (neither steals the bot's interpreter lock), and the Slack
stand-in in the benchmark's own process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from rollback_sandbox.slack.web_api import FakeSlackWebApi

SIGNING_SECRET = "bench-signing-secret"
CATALOG = "services:\n  checkout: {namespace: shop, deployment: checkout}\n"


@dataclass(frozen=True)
class Stack:
    slack: FakeSlackWebApi
    http: aiohttp.ClientSession
    cluster_url: str
    bot_url: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_file(path: Path) -> None:
    for _ in range(600):
        if path.exists() and path.stat().st_size > 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{path} never appeared")


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(600):
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never became ready")


@asynccontextmanager
async def running_stack(
    *, speed: float, env: Mapping[str, str] | None = None
) -> AsyncIterator[Stack]:
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig, catalog = Path(tmp) / "kubeconfig", Path(tmp) / "catalog.yaml"
        catalog.write_text(CATALOG)
        cluster_port, bot_port = free_port(), free_port()
        processes: list[subprocess.Popen[bytes]] = [
            subprocess.Popen(
                [sys.executable, "-m", "bot", "sandbox", "--port", str(cluster_port),
                 "--speed", str(speed), "--kubeconfig-out", str(kubeconfig)],
                stdout=subprocess.DEVNULL,
            )
        ]  # fmt: skip
        try:
            await wait_file(kubeconfig)
            async with FakeSlackWebApi() as slack, aiohttp.ClientSession() as http:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bot", "serve"],
                        env={
                            **os.environ,
                            "KUBECONFIG": str(kubeconfig),
                            "ROLLBACK_BOT_CONFIG": str(catalog),
                            "SLACK_BOT_TOKEN": slack.bot_token,
                            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                            "ROLLBACK_BOT_SLACK_API_URL": slack.api_url,
                            "ROLLBACK_BOT_HOST": "127.0.0.1",
                            "ROLLBACK_BOT_PORT": str(bot_port),
                            "ROLLBACK_BOT_LOG_LEVEL": "WARNING",
                            **(env or {}),
                        },
                    )
                )
                bot_url = f"http://127.0.0.1:{bot_port}"
                await wait_ready(http, f"{bot_url}/readyz")
                yield Stack(slack, http, f"http://127.0.0.1:{cluster_port}", bot_url)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(timeout=30)
