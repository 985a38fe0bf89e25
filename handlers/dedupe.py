"""Slack retries and redeliveries start nothing twice: Bolt does not dedupe, this middleware does.
It also names the interaction in every log line written while handling it.

The key is the Events API `event_id` or the interaction's `trigger_id` (a retried delivery of the
same command, click or submission carries the same one).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.observability.logs import interaction_id

log = logging.getLogger(__name__)

SEEN_SECONDS = 600.0
SEEN_MAX = 10_000


class SeenKeys:
    def __init__(self, ttl: float = SEEN_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, key: str) -> bool:
        now = self._clock()
        while self._seen and (
            next(iter(self._seen.values())) < now - self._ttl or len(self._seen) > SEEN_MAX
        ):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True


def delivery_key(body: dict[str, Any]) -> str | None:
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("trigger_id"):
        return f"trigger:{body['trigger_id']}"
    return None


def register(app: AsyncApp, seen: SeenKeys) -> None:
    @app.middleware
    async def dedupe(
        body: dict[str, Any], resp: BoltResponse, next_: Callable[[], Awaitable[None]]
    ) -> BoltResponse:
        key = delivery_key(body)
        if key is not None:
            interaction_id.set(key)
        if key is not None and not seen.first_time(key):
            log.info("ignoring a repeated Slack delivery (%s)", key)
            return BoltResponse(status=200, body="")  # acked, and no listener runs
        await next_()
        return resp
