"""The bot's HTTP surface: `/slack/events` (Bolt), `/alertmanager`, `/healthz`, `/readyz` and
`/metrics`. Routing only: each route hands the request to what the wiring built."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from bot.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.observability.metrics import Metrics
from handlers import alertmanager

log = logging.getLogger(__name__)

READY_CACHE_SECONDS = 10.0
READY_CHECK_SECONDS = 5.0

Check = Callable[[], Awaitable[object]]


@dataclass
class Readiness:
    """`/readyz`: Slack auth works and every cluster in the catalog answers, cached briefly."""

    checks: dict[str, Check]
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, dict[str, str]] | None = field(default=None, init=False)
    stopping: bool = field(default=False, init=False)

    async def report(self) -> dict[str, str]:
        if self.stopping:  # at once, so the Service stops sending this replica new requests
            return {"replica": "stopping"}
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


# The ack metric's label: one of these, so no request can add a series of its own.
PAYLOAD_TYPES = frozenset(
    {
        "slash_command",
        "block_actions",
        "view_submission",
        "view_closed",
        "event_callback",
        "url_verification",
        "shortcut",
        "message_action",
        "block_suggestion",
    }
)


def payload_type(body: dict[str, Any]) -> str:
    """slash_command, block_actions, view_submission, event_callback, … or "other"."""
    if "command" in body:
        return "slash_command"
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind in PAYLOAD_TYPES else "other"


# What Bolt reads of any payload to build its context, taking each for an object.
OBJECT_FIELDS = ("team", "user", "channel", "enterprise", "container", "view", "message", "event")


def _has(obj: Any, *keys: str) -> bool:
    """`obj` is an object whose `keys` are strings."""
    return isinstance(obj, dict) and all(isinstance(obj.get(k), str) for k in keys)


def shape_problem(body: dict[str, Any]) -> str | None:
    """What is missing from a signed payload Bolt would route on (it assumes Slack's shapes and
    fails with a 500 otherwise); None when it has what its kind needs."""
    for key in OBJECT_FIELDS:
        # Slack sends `"enterprise": null` outside Enterprise Grid; null elsewhere is not Slack.
        if key in body and not (
            isinstance(body[key], dict) or (key == "enterprise" and body[key] is None)
        ):
            return f"{key} must be an object"
    if "command" in body:
        ok = _has(body, "command", "user_id", "channel_id")
        return None if ok else "a command needs command, user_id and channel_id"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        if not (
            isinstance(actions, list) and actions and all(_has(a, "action_id") for a in actions)
        ):
            return "block_actions need a list of actions, each with its action_id"
        return None if _has(body.get("user"), "id") else "block_actions need the user's id"
    if kind in ("view_submission", "view_closed"):
        if not _has(body.get("view"), "id", "callback_id"):
            return f"a {kind} needs its view, with id and callback_id"
        return None if _has(body.get("user"), "id") else f"a {kind} needs the user's id"
    if kind == "event_callback" and not _has(body.get("event"), "type"):
        return "an event_callback needs its event, with a type"
    return None


def _unsigned(reason: str) -> web.Response:
    return web.json_response({"status": "error", "error": reason}, status=401)


def build_routes(
    *,
    bolt: AsyncApp | None,
    signing_secret: str | None,
    alertmanager_webhook: alertmanager.Handler,
    readiness: Readiness,
    metrics: Metrics,
) -> web.Application:
    """The aiohttp application; `bolt` None in Socket Mode (Slack then comes over a socket).

    A request to `/slack/events` is checked against Slack's signature before anything reads
    it: an unsigned one is answered 401 and leaves no trace (no parsing, no body in the logs, no
    metric series)."""
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        assert bolt is not None and verifier is not None
        started = time.perf_counter()
        body = await request.read()  # bounded by the application's client_max_size
        if not verifier.is_valid(
            body,
            request.headers.get("X-Slack-Request-Timestamp", ""),
            request.headers.get("X-Slack-Signature", ""),
        ):
            return _unsigned("invalid or expired Slack signature")
        try:
            bolt_request = await to_bolt_request(request)
            problem = shape_problem(bolt_request.body)
            if problem is not None:
                log.warning("a signed Slack request refused: %s", problem)
                return web.json_response({"status": "error", "error": problem}, status=400)
            response = await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            # Signed, yet not a payload Bolt can route (it assumes Slack's shapes): refused in
            # one line, without the body.
            log.warning("a signed Slack request Bolt could not route: %s", type(exc).__name__)
            return web.json_response(
                {"status": "error", "error": "malformed Slack payload"}, status=400
            )
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
        status = "stopping" if readiness.stopping else "ready" if ready else "not ready"
        return web.json_response(
            {"status": status, "checks": results},
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
