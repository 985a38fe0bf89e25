"""The bot's HTTP surface: `/slack/events` (Bolt), `/alertmanager`, `/healthz`, `/readyz` and
`/metrics`. Routing only: each route hands the request to what the wiring built."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.observability.metrics import Metrics
from handlers import alertmanager

READY_CACHE_SECONDS = 10.0
READY_CHECK_SECONDS = 5.0

Check = Callable[[], Awaitable[object]]


@dataclass
class Readiness:
    """`/readyz`: Slack auth works and every cluster in the catalog answers, cached briefly."""

    checks: dict[str, Check]
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, dict[str, str]] | None = field(default=None, init=False)

    async def report(self) -> dict[str, str]:
        if self._cached is not None and self.clock() - self._cached[0] < READY_CACHE_SECONDS:
            return self._cached[1]
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                async with asyncio.timeout(READY_CHECK_SECONDS):
                    await check()
                results[name] = "ok"
            except Exception as exc:  # each failure is reported, none is fatal to the probe
                results[name] = str(exc) or type(exc).__name__
        self._cached = (self.clock(), results)
        return results


def payload_type(body: dict[str, Any]) -> str:
    """slash_command, block_actions, view_submission, event_callback, … for the ack metric."""
    if "command" in body:
        return "slash_command"
    return str(body.get("type") or "unknown")[:32]


def build_routes(
    *,
    bolt: AsyncApp | None,
    alertmanager_webhook: alertmanager.Handler,
    readiness: Readiness,
    metrics: Metrics,
) -> web.Application:
    """The aiohttp application; `bolt` None in Socket Mode (Slack then comes over a socket)."""

    async def slack_events(request: web.Request) -> web.Response:
        assert bolt is not None
        started = time.perf_counter()
        bolt_request = await to_bolt_request(request)
        response = await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        kind = payload_type(bolt_request.body)
        metrics.slack_ack_seconds.labels(kind).observe(time.perf_counter() - started)
        return response

    async def metrics_endpoint(_request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        results = await readiness.report()
        ready = all(v == "ok" for v in results.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results},
            status=200 if ready else 503,
        )

    app = web.Application(client_max_size=alertmanager.MAX_BODY_BYTES + 1024)
    app.router.add_post("/alertmanager", alertmanager_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    if bolt is not None:
        app.router.add_post("/slack/events", slack_events)
    return app
