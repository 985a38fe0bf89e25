"""Slack's Socket Mode side: a websocket that says `hello`, delivers envelopes, records acks.

Mounted in the fake Web API's aiohttp app; `apps.connections.open` hands out its URL
(`ws://127.0.0.1:<port>/link/?ticket=…&app_id=…`, shaped like Slack's `wss://…/link/?ticket=`).

What Slack documents and this reproduces (docs.slack.dev "Using Socket Mode"):
- on connect, `{"type": "hello", "num_connections", "debug_info", "connection_info": {"app_id"}}`;
- each delivery is an envelope `{"envelope_id", "type", "payload", "accepts_response_payload"}`
  plus `retry_attempt`/`retry_reason` for `events_api`; `type` is `slash_commands`,
  `interactive` or `events_api`, and `payload` is exactly what the HTTP request would carry;
- the app acks with `{"envelope_id", "payload"?}` on the same socket;
- `{"type": "disconnect", "reason": …}` asks the client to reconnect via a new URL.
Slack delivers an envelope on one of the app's open connections; this uses the newest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

__all__ = ["Ack", "Envelope", "EnvelopeType", "SocketModeServer"]

EnvelopeType = Literal["slash_commands", "interactive", "events_api"]
JsonDict = dict[str, Any]

#: Interactive payload types whose ack may carry a response (`response_action`, options).
_RESPONSE_PAYLOAD_INTERACTIONS = {"view_submission", "block_suggestion"}


@dataclass(frozen=True)
class Envelope:
    """One envelope as sent over the socket."""

    envelope_id: str
    type: EnvelopeType
    payload: Mapping[str, Any]
    accepts_response_payload: bool
    retry_attempt: int | None = None
    retry_reason: str | None = None
    sent_at: float = field(default_factory=time.monotonic)

    def to_json(self) -> JsonDict:
        message: JsonDict = {
            "envelope_id": self.envelope_id,
            "payload": dict(self.payload),
            "type": self.type,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.retry_attempt is not None:
            message["retry_attempt"] = self.retry_attempt
            message["retry_reason"] = self.retry_reason or ""
        return message


@dataclass(frozen=True)
class Ack:
    """The client's acknowledgement of one envelope."""

    envelope_id: str
    #: The ack's `payload` (e.g. a slash command's response or `response_action`), if any.
    payload: Mapping[str, Any] | None
    #: The whole message the client sent.
    raw: Mapping[str, Any]
    #: Seconds from sending the envelope to receiving the ack (Slack wants < 3 s).
    elapsed: float


class SocketModeServer:
    """The websocket endpoint and its recorded traffic."""

    def __init__(self, *, app_id: str, path: str = "/link/") -> None:
        self.app_id = app_id
        self.path = path
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._pending: dict[str, tuple[Envelope, asyncio.Future[Ack]]] = {}
        self._connected = asyncio.Event()
        #: Every envelope delivered, in order.
        self.envelopes: list[Envelope] = []
        #: Every ack received, in order (including acks for unknown envelope ids).
        self.acks: list[Ack] = []
        #: Every other text message a client sent (not an ack).
        self.unexpected: list[str] = []
        #: How many websocket connections were ever accepted.
        self.connection_count = 0

    def attach(self, app: web.Application) -> None:
        app.router.add_get(self.path, self._handle)

    def issue_url(self, ws_base: str) -> str:
        """A fresh connection URL (what `apps.connections.open` returns)."""
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return f"{ws_base}{self.path}?ticket={ticket}&app_id={self.app_id}"

    @property
    def connected(self) -> int:
        """The number of open connections."""
        return sum(1 for ws in self._sockets if not ws.closed)

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least `count` connections have ever been made and one is open."""
        async with asyncio.timeout(timeout):
            while self.connection_count < count or self.connected == 0:
                self._connected.clear()
                await self._connected.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.connection_count += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": self.connected,
                "debug_info": {
                    "host": f"applink-fake-{secrets.token_hex(4)}",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        )
        self._connected.set()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(message.data)
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove(ws)
        return ws

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self.unexpected.append(data)
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            self.unexpected.append(data)
            return
        envelope_id = str(message["envelope_id"])
        pending = self._pending.pop(envelope_id, None)
        elapsed = time.monotonic() - pending[0].sent_at if pending else float("nan")
        payload = message.get("payload")
        ack = Ack(
            envelope_id=envelope_id,
            payload=payload if isinstance(payload, dict) else None,
            raw=message,
            elapsed=elapsed,
        )
        self.acks.append(ack)
        if pending is not None and not pending[1].done():
            pending[1].set_result(ack)

    def _socket(self) -> web.WebSocketResponse:
        open_sockets = [ws for ws in self._sockets if not ws.closed]
        if not open_sockets:
            raise RuntimeError("no Socket Mode client is connected")
        return open_sockets[-1]

    # -- delivering -------------------------------------------------------------------------

    async def send(
        self,
        type_: EnvelopeType,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> Envelope:
        """Send one envelope without waiting for its ack (see `wait_ack`)."""
        if accepts_response_payload is None:
            accepts_response_payload = type_ == "slash_commands" or (
                type_ == "interactive" and payload.get("type") in _RESPONSE_PAYLOAD_INTERACTIONS
            )
        if type_ == "events_api" and retry_attempt is None:
            retry_attempt, retry_reason = 0, retry_reason or ""
        envelope = Envelope(
            envelope_id=str(uuid.uuid4()),
            type=type_,
            payload=payload,
            accepts_response_payload=accepts_response_payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[envelope.envelope_id] = (envelope, future)
        self.envelopes.append(envelope)
        await self._socket().send_json(envelope.to_json())
        return envelope

    async def wait_ack(self, envelope: Envelope, timeout: float = 5.0) -> Ack:
        """The ack for `envelope`; raises TimeoutError if none arrives within `timeout`."""
        for ack in self.acks:
            if ack.envelope_id == envelope.envelope_id:
                return ack
        pending = self._pending.get(envelope.envelope_id)
        if pending is None:
            raise LookupError(f"envelope {envelope.envelope_id} was not sent by this server")
        async with asyncio.timeout(timeout):
            return await asyncio.shield(pending[1])

    async def deliver(
        self,
        type_: EnvelopeType,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 5.0,
    ) -> Ack:
        """Send one envelope and return the client's ack (TimeoutError if none comes)."""
        envelope = await self.send(
            type_,
            payload,
            accepts_response_payload=accepts_response_payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )
        return await self.wait_ack(envelope, timeout)

    async def deliver_slash_command(
        self, payload: Mapping[str, str], *, timeout: float = 5.0
    ) -> Ack:
        return await self.deliver("slash_commands", payload, timeout=timeout)

    async def deliver_interactive(self, payload: Mapping[str, Any], *, timeout: float = 5.0) -> Ack:
        return await self.deliver("interactive", payload, timeout=timeout)

    async def deliver_event(
        self,
        payload: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,
    ) -> Ack:
        """Deliver an `event_callback` body; a retry has `retry_attempt` ≥ 1 and a reason
        such as `timeout`."""
        return await self.deliver(
            "events_api",
            payload,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            timeout=timeout,
        )

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the connected client to reconnect (Slack does this every few hours)."""
        await self._socket().send_json(
            {
                "type": "disconnect",
                "reason": reason,
                "debug_info": {"host": f"applink-fake-{secrets.token_hex(4)}"},
            }
        )

    async def close(self) -> None:
        """Close every connection (going away) and fail the acks still awaited."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server shutdown")
        for _, future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()
