"""Slack-side figures on this machine (not a test: it prints numbers, it asserts nothing).

1. Ack latency of `/rollback checkout` under 50 concurrent signed commands (p50 / p99): the time
   from sending the request to the bot's HTTP 200, which must stay under Slack's 3 s.
2. Click → modal open, and confirm → patch: from the signed view_submission to the Deployment's
   new generation on the simulated cluster (polled over HTTP every millisecond).

The bot runs as `rollback-bot serve` in its own process, the simulated cluster in another.

Run: `make bench` (or .venv/bin/python -m benchmarks.bench_slack [--rounds N]).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp

from benchmarks.measure import ack_round, pct
from benchmarks.stack import SIGNING_SECRET, running_stack
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi


async def generation(session: aiohttp.ClientSession, cluster_url: str) -> int:
    url = f"{cluster_url}/apis/apps/v1/namespaces/shop/deployments/checkout"
    async with session.get(url) as response:
        return int((await response.json())["metadata"]["generation"])


async def main_async(rounds: int, concurrency: int) -> None:
    async with running_stack(speed=100) as stack:
        await measure(
            stack.slack,
            stack.http,
            stack.cluster_url,
            f"{stack.bot_url}/slack/events",
            rounds,
            concurrency,
        )


async def measure(
    slack: FakeSlackWebApi,
    session: aiohttp.ClientSession,
    cluster_url: str,
    events_url: str,
    rounds: int,
    concurrency: int,
) -> None:
    async with SlackRequestSender(SIGNING_SECRET, events_url=events_url, slack=slack) as sender:
        await sender.slash_command("/rollback", "help")  # warm: Bolt's first auth.test
        acks: list[float] = []
        for _ in range(rounds):
            acks += await ack_round(
                sender,
                slack,
                text="checkout",
                concurrency=concurrency,
                handled=lambda: len([m for m in slack.messages(DEFAULT_CHANNEL_ID) if m.buttons()]),
            )
        print(f"ack of /rollback checkout, {concurrency} concurrent x {rounds} rounds:")
        print(
            f"  p50 {pct(acks, 0.5):7.1f} ms   p99 {pct(acks, 0.99):7.1f} ms   "
            f"max {max(acks) * 1000:7.1f} ms"
        )

        modal: list[float] = []
        to_patch: list[float] = []
        for _ in range(rounds):
            before = len(slack.messages(DEFAULT_CHANNEL_ID))
            await sender.slash_command("/rollback", "checkout")
            message: Any = await slack.wait_for(
                lambda: (
                    slack.messages(DEFAULT_CHANNEL_ID)[-1]
                    if len(slack.messages(DEFAULT_CHANNEL_ID)) > before
                    else None
                )
            )
            action = message.buttons()[0]["action_id"]
            views = len(slack.views())
            start = time.perf_counter()
            await sender.click(DEFAULT_CHANNEL_ID, message.ts, action)
            view: Any = await slack.wait_for(
                lambda: slack.views()[-1] if len(slack.views()) > views else None,
                interval=0.001,
            )
            modal.append(time.perf_counter() - start)
            gen = await generation(session, cluster_url)
            start = time.perf_counter()
            await sender.submit_view(view["id"], {"reason": "bench"})
            async with asyncio.timeout(60):  # a lost patch must end the benchmark, not hang it
                while await generation(session, cluster_url) == gen:
                    await asyncio.sleep(0.001)
            to_patch.append(time.perf_counter() - start)
            await slack.wait_for(
                lambda: any(
                    "rolled back to" in m.all_text()
                    for m in slack.thread(DEFAULT_CHANNEL_ID, message.ts)
                ),
                timeout=60,
            )
        print(
            f"click → modal open (views.open), median of {rounds}: "
            f"{statistics.median(modal) * 1000:7.1f} ms"
        )
        print(
            f"confirm → patch on the cluster,  median of {rounds}: "
            f"{statistics.median(to_patch) * 1000:7.1f} ms (max {max(to_patch) * 1000:.1f} ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main_async(args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
