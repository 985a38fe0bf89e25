"""The smallest real Slack Bolt app on aiohttp: the yardstick `bench_start` holds the bot to.

It serves HTTP mode as `rollback-bot serve` does (an aiohttp `web.Application` whose
`POST /slack/events` goes through `to_bolt_request` / `async_dispatch` /
`to_aiohttp_response`, requests verified with the signing secret) and has one `/rollback`
listener that acks, then posts one message with `chat.postMessage`. Whatever the bot costs
beyond this is the bot's own.

It reads the same environment variables as `rollback-bot serve` (SLACK_BOT_TOKEN,
SLACK_SIGNING_SECRET, ROLLBACK_BOT_SLACK_API_URL, ROLLBACK_BOT_HOST, ROLLBACK_BOT_PORT), so
a benchmark starts both the same way. The Slack API URL has no default: pointed nowhere, it
must not reach the real Slack.

Run: .venv/bin/python benchmarks/bare_bolt_app.py (stops on SIGTERM or Ctrl-C)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

#: How a benchmark tells this app's messages from the bot's in the same channel.
MARK = "bare-bolt:"


def build(token: str, signing_secret: str, api_url: str) -> web.Application:
    bolt = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url), signing_secret=signing_secret
    )

    @bolt.command("/rollback")
    async def on_rollback(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.chat_postMessage(
            channel=command["channel_id"], text=f"{MARK} /rollback {command.get('text', '')}"
        )

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()


def main() -> int:
    try:
        # Taken out: Bolt would read it from the environment too, and warn that the client's
        # token wins.
        token = os.environ.pop("SLACK_BOT_TOKEN")
        secret = os.environ["SLACK_SIGNING_SECRET"]
        api_url = os.environ["ROLLBACK_BOT_SLACK_API_URL"]
    except KeyError as exc:
        print(f"bare_bolt_app: {exc.args[0]} is not set", file=sys.stderr)
        return 2
    host = os.environ.get("ROLLBACK_BOT_HOST", "127.0.0.1")
    port = int(os.environ.get("ROLLBACK_BOT_PORT", "3000"))
    asyncio.run(serve(build(token, secret, api_url), host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
