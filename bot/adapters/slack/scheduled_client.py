"""An `AsyncWebClient` whose every Web API call goes through the bot's `SlackScheduler`, so
the listeners (Bolt's `client`, `say`) and every adapter share one budget and one queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from aiohttp import FormData
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.slack.scheduler import SlackScheduler

_D = TypeVar("_D")


class ScheduledWebClient(AsyncWebClient):
    """`AsyncWebClient(**client_args)` whose calls wait for `scheduler`.

    The scheduler is the one place that handles 429s: a rate-limit retry handler among
    `retry_handlers` would wait inside a call while its lane waits too, so it is refused."""

    def __init__(self, scheduler: SlackScheduler, **client_args: Any) -> None:
        handlers = client_args.get("retry_handlers") or ()
        if any(isinstance(handler, AsyncRateLimitErrorRetryHandler) for handler in handlers):
            raise ValueError(
                "the Slack scheduler handles rate limits: leave AsyncRateLimitErrorRetryHandler out"
            )
        super().__init__(**client_args)
        self.scheduler = scheduler

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | FormData | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> AsyncSlackResponse:
        unscheduled = super().api_call

        async def attempt() -> AsyncSlackResponse:
            # slack_sdk changes the dicts it is given (it pops a `token` argument, adds
            # headers): each attempt starts from the caller's arguments.
            return await unscheduled(
                api_method,
                http_verb=http_verb,
                files=_copied(files),
                data=_copied(data),
                params=_copied(params),
                json=_copied(json),
                headers=_copied(headers),
                auth=auth,
            )

        return await self.scheduler.send(
            api_method,
            attempt,
            channel=_argument("channel", json, data, params),
            ts=_argument("ts", json, data, params),
        )


def _copied(value: _D) -> _D:
    return cast(_D, dict(value)) if isinstance(value, dict) else value


def _argument(name: str, *sources: object) -> str | None:
    """An API argument as given, wherever slack_sdk put it (JSON body, form or query)."""
    for source in sources:
        if isinstance(source, Mapping):
            value = source.get(name)
            if isinstance(value, str) and value:
                return value
    return None
