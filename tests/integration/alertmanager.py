"""The real Prometheus Alertmanager (Debian's `prometheus-alertmanager`) for integration tests.

`running_alertmanager(workdir, config)` starts the binary on 127.0.0.1 with a free port, gossip
off (`--cluster.listen-address=`), its own storage path under `workdir` and a generated
configuration (one route, `group_wait: 1s`, `group_interval: 2s`, a webhook receiver with bearer
credentials and, optionally, a `slack_configs` entry), waits for `/-/ready`, and stops it
cleanly. Tests push alerts through its v2 API (`post_alerts`; an `endsAt` in the past resolves
one) and collect what it sends with `Receiver`, a tiny aiohttp server on 127.0.0.1.

Installed by the test setup with `apt-get install -y --no-install-recommends
prometheus-alertmanager`; tests using it fail (saying how to install it) when the binary is absent.
The package's own systemd service is never used: it would listen on 9093, this harness never does.
`local_servers` runs its process (port, start, readiness, stop), as it runs Prometheus's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web

from tests.integration import local_servers

JsonDict = dict[str, Any]

ALERTMANAGER_BINARY = Path(
    os.environ.get("ROLLBACK_BOT_ALERTMANAGER_BINARY", "/usr/bin/prometheus-alertmanager")
)
APT_INSTALL = "apt-get install -y --no-install-recommends prometheus-alertmanager"
DEFAULT_PORT = 9093  # the packaged service's port: never ours

requires_alertmanager = pytest.mark.alertmanager


def require_binary() -> None:
    local_servers.require_binary(ALERTMANAGER_BINARY, "Alertmanager", APT_INSTALL)


def free_port() -> int:
    return local_servers.free_port(avoid=DEFAULT_PORT)


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


class AlertmanagerFailed(local_servers.ServerFailed):
    """Alertmanager did not start, did not become ready, or refused the alerts posted."""


@dataclass
class Alertmanager(local_servers.LocalServer):
    """A running Alertmanager: its base URL, and its v2 API for the test."""

    name: ClassVar[str] = "Alertmanager"
    failure: ClassVar[type[local_servers.ServerFailed]] = AlertmanagerFailed

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


@contextlib.asynccontextmanager
async def running_alertmanager(
    workdir: Path, config: AlertmanagerConfig, *, attempts: int = 3
) -> AsyncIterator[Alertmanager]:
    """Start the real Alertmanager for one test and stop it afterwards."""
    require_binary()
    config_path, storage = await asyncio.to_thread(
        local_servers.prepare_workdir, workdir, "alertmanager.yml", config.render(), "data"
    )
    argv = [
        str(ALERTMANAGER_BINARY),
        f"--config.file={config_path}",
        f"--storage.path={storage}",
        "--cluster.listen-address=",  # gossip off: nothing on 9094
        "--log.level=debug",
    ]
    async with local_servers.start_on_free_port(
        Alertmanager, argv, workdir=workdir, avoid=DEFAULT_PORT, attempts=attempts
    ) as manager:
        yield manager


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
    async with local_servers.serve_app(app) as url:
        receiver.url = url
        yield receiver
