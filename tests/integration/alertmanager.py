"""The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) for integration tests.

`running_alertmanager(workdir, config)` starts the binary on 127.0.0.1 with a free port, gossip
off (`--cluster.listen-address=`), its own storage path under `workdir` and a generated
configuration (one route, `group_wait: 1s`, `group_interval: 2s`, a webhook receiver with bearer
credentials and, optionally, a `slack_configs` entry), waits for `/-/ready`, and stops it
cleanly. Tests push alerts through its v2 API (`post_alerts`; an `endsAt` in the past resolves
one) and collect what it sends with `Receiver`, a tiny aiohttp server on 127.0.0.1.

Installed by the test setup with `apt-get install -y --no-install-recommends
prometheus-alertmanager`; tests using it skip (saying why) when the binary is absent. The package's
own systemd service is never used: it would listen on 9093, this harness never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

JsonDict = dict[str, Any]

ALERTMANAGER_BINARY = Path(
    os.environ.get("ROLLBACK_BOT_ALERTMANAGER_BINARY", "/usr/bin/prometheus-alertmanager")
)
APT_INSTALL = "apt-get install -y --no-install-recommends prometheus-alertmanager"
DEFAULT_PORT = 9093  # the packaged service's port: never ours

# The test setup (`make tools`, run by `make test` and CI) installs it: a missing binary fails the
# tests that need it rather than skipping them silently.
requires_alertmanager = pytest.mark.alertmanager


def require_binary() -> None:
    if not ALERTMANAGER_BINARY.exists():
        pytest.fail(f"needs the real Alertmanager at {ALERTMANAGER_BINARY} ({APT_INSTALL})")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (never 9093)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != DEFAULT_PORT:
            return port


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert(
    labels: Mapping[str, str],
    *,
    annotations: Mapping[str, str] | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    generator_url: str = "http://prometheus.example.com:9090/graph?g0.expr=up",
) -> JsonDict:
    """One alert for `POST /api/v2/alerts` as Prometheus sends it; an `ends_at` past resolves it."""
    body: JsonDict = {
        "labels": dict(labels),
        "annotations": dict(annotations or {}),
        "generatorURL": generator_url,
    }
    if starts_at is not None:
        body["startsAt"] = rfc3339(starts_at)
    if ends_at is not None:
        body["endsAt"] = rfc3339(ends_at)
    return body


@dataclass(frozen=True)
class AlertmanagerConfig:
    """What the generated alertmanager.yml says; the defaults suit fast tests."""

    webhook_url: str
    token: str
    group_by: tuple[str, ...] = ("alertname", "namespace", "deployment")
    group_wait: str = "1s"
    group_interval: str = "2s"
    repeat_interval: str = "1h"
    max_alerts: int = 0
    send_resolved: bool = True
    # One `slack_configs` entry (api_url, title, text, …) added to the same receiver.
    slack: JsonDict | None = None

    def render(self) -> str:
        receiver: JsonDict = {
            "name": "rollback-bot",
            "webhook_configs": [
                {
                    "url": self.webhook_url,
                    "send_resolved": self.send_resolved,
                    "max_alerts": self.max_alerts,
                    "http_config": {"authorization": {"type": "Bearer", "credentials": self.token}},
                }
            ],
        }
        if self.slack is not None:
            receiver["slack_configs"] = [{"send_resolved": self.send_resolved, **self.slack}]
        config: JsonDict = {
            "global": {"resolve_timeout": "5m"},
            "route": {
                "receiver": "rollback-bot",
                "group_by": list(self.group_by),
                "group_wait": self.group_wait,
                "group_interval": self.group_interval,
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [receiver],
        }
        return json.dumps(config, indent=2)  # JSON is YAML


class AlertmanagerFailed(RuntimeError):
    """The binary did not start or did not become ready; the message has its log's tail."""


@dataclass
class Alertmanager:
    """A running Alertmanager: its base URL, and its v2 API for the test."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    session: aiohttp.ClientSession

    def log(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def post_alerts(self, alerts: Sequence[JsonDict]) -> None:
        async with self.session.post(f"{self.url}/api/v2/alerts", json=list(alerts)) as response:
            if response.status != 200:
                detail = await response.text()
                raise AlertmanagerFailed(f"POST /api/v2/alerts: {response.status} {detail}")

    async def alerts(self) -> list[JsonDict]:
        async with self.session.get(f"{self.url}/api/v2/alerts") as response:
            response.raise_for_status()
            data: list[JsonDict] = await response.json()
            return data

    async def wait_ready(self, within: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if self.process.poll() is not None:
                raise AlertmanagerFailed(
                    f"Alertmanager exited with {self.process.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.session.get(
                    f"{self.url}/-/ready", timeout=aiohttp.ClientTimeout(total=1)
                ) as response:
                    if response.status == 200:
                        return
            if loop.time() > deadline:
                raise AlertmanagerFailed(
                    f"Alertmanager not ready within {within:g}s:\n{self.log()}"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; never leaves the process behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 5)


def _prepare(workdir: Path, config: AlertmanagerConfig) -> tuple[Path, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(config.render(), encoding="utf-8")
    storage = workdir / "data"
    storage.mkdir(exist_ok=True)
    return config_path, storage


def _spawn(config_path: Path, storage: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [
                str(ALERTMANAGER_BINARY),
                f"--config.file={config_path}",
                f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.external-url=http://127.0.0.1:{port}",
                "--cluster.listen-address=",  # gossip off: nothing on 9094
                "--log.level=debug",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.asynccontextmanager
async def running_alertmanager(
    workdir: Path, config: AlertmanagerConfig, *, attempts: int = 3
) -> AsyncIterator[Alertmanager]:
    """Start the real Alertmanager for one test and stop it afterwards."""
    require_binary()
    config_path, storage = await asyncio.to_thread(_prepare, workdir, config)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for attempt in range(1, attempts + 1):
            port = free_port()
            log_path = workdir / f"alertmanager-{attempt}.log"
            process = await asyncio.to_thread(_spawn, config_path, storage, port, log_path)
            manager = Alertmanager(f"http://127.0.0.1:{port}", port, process, log_path, session)
            try:
                await manager.wait_ready()
            except AlertmanagerFailed:
                await manager.stop()
                # Another process took the port between our probe and the bind: try another.
                if attempt < attempts and "address already in use" in manager.log():
                    continue
                raise
            try:
                yield manager
            finally:
                await manager.stop()
            return


@dataclass(frozen=True)
class Delivery:
    """One request Alertmanager sent: where, with which headers, what body."""

    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> JsonDict:
        data: JsonDict = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 recording every POST, answering `respond(delivery)`."""

    respond: Callable[[Delivery], int] = lambda _delivery: 200
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _queues: dict[str, asyncio.Queue[Delivery]] = field(default_factory=dict)

    def _queue(self, path: str) -> asyncio.Queue[Delivery]:
        return self._queues.setdefault(path, asyncio.Queue())

    async def _handle(self, request: web.Request) -> web.Response:
        delivery = Delivery(request.path, dict(request.headers), await request.read())
        self.deliveries.append(delivery)
        self._queue(request.path).put_nowait(delivery)
        return web.Response(status=self.respond(delivery), text="ok")

    async def next(self, path: str, within: float = 10.0) -> Delivery:
        """The next request to `path`, waiting up to `within` seconds."""
        try:
            return await asyncio.wait_for(self._queue(path).get(), within)
        except TimeoutError:
            seen = ", ".join(sorted({d.path for d in self.deliveries})) or "nothing"
            raise AssertionError(f"no request to {path} within {within:g}s (saw {seen})") from None

    async def until(
        self, path: str, predicate: Callable[[Delivery], bool], within: float = 10.0
    ) -> Delivery:
        """The first next request to `path` that satisfies `predicate` (others are skipped).

        Alertmanager flushes a group at once when its first alert is older than `group_wait`,
        so the first notification may carry only the alerts received so far.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            delivery = await self.next(path, max(0.0, deadline - loop.time()))
            if predicate(delivery):
                return delivery


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver | None = None) -> AsyncIterator[Receiver]:
    """Serve a `Receiver` on 127.0.0.1 (a free port) for the duration of the block."""
    receiver = receiver or Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()
