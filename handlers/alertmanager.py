"""`POST /alertmanager`: Alertmanager's webhook (format version 4), bearer-authenticated."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import StreamReader, web
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError

from bot.domain.alerts.webhook import BadWebhook, parse_webhook
from bot.domain.errors import RollbackBotError
from bot.observability.logs import interaction_id
from bot.usecases.alerts.offers import AlertBusy, AlertOffers

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


async def read_bounded(stream: StreamReader, limit: int) -> bytes:
    """The whole body, however it was split across writes, but never more than `limit` bytes
    (`read(n)` alone returns only what has arrived so far)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def webhook(
    offers: AlertOffers, token: SecretStr | None, *, max_bytes: int = MAX_BODY_BYTES
) -> Handler:
    """The handler of `POST /alertmanager` (the routes mount it)."""
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None

    async def alertmanager(request: web.Request) -> web.Response:
        if expected is None:
            return _error(
                503, "the Alertmanager webhook is off: set ROLLBACK_BOT_ALERTMANAGER_TOKEN"
            )
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"status": "error", "error": "missing or wrong bearer token"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="rollback-bot"'},
            )
        if request.content_length is not None and request.content_length > max_bytes:
            return _error(413, f"the body is over {max_bytes} bytes")
        try:
            body = await read_bounded(request.content, max_bytes + 1)
            group = parse_webhook(body, max_bytes)
        except BadWebhook as exc:
            return _error(exc.status, exc.message)
        interaction_id.set(f"alert-group:{group.group_key[:200]}")
        try:
            handled = await offers.handle(group)
        except AlertBusy as exc:
            return _error(503, str(exc))  # Alertmanager retries
        except RollbackBotError as exc:
            log.warning("alert group %s not handled: %s", group.group_key, exc)
            return _error(503, str(exc))
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown error")
            log.warning("alert group %s not posted: Slack answered %s", group.group_key, error)
            return _error(502, f"Slack refused the message: {error}")
        return web.json_response(
            {
                "status": "ok",
                "posted": handled.posted,
                "updated": handled.updated,
                "unmapped": handled.unmapped,
                "noChannel": handled.no_channel,
                "digested": handled.digested,
            }
        )

    return alertmanager
