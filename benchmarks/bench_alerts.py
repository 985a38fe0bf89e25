"""Alertmanager webhook figures on this machine (not a test: it prints numbers only).

The bot runs as `rollback-bot serve` in its own process against the simulated cluster (another
process) and the Slack stand-in (this one). Webhook deliveries for many distinct alert groups are
sent with a fixed concurrency, then repeated (repeat_interval): throughput in alerts handled per
second, and the latency from sending a delivery to the bot's chat.postMessage (first delivery)
or chat.update (repeat) for that group, p50 / p99.

Run: .venv/bin/python -m benchmarks.bench_alerts [--groups 200] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta

import aiohttp

from benchmarks.measure import pct
from benchmarks.stack import running_stack
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID
from rollback_sandbox.slack.web_api import FakeSlackWebApi

TOKEN = "bench-alertmanager-token"
NAME = re.compile(r"HighErrorRate(\d+)\b")


def body(group: int, status: str = "firing") -> str:
    labels = {
        "alertname": f"HighErrorRate{group}",
        "namespace": "shop",
        "deployment": "checkout",
        "severity": "critical",
    }
    started = (datetime.now(UTC) - timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="HighErrorRate{group}"}}',
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "rollback-bot",
            "groupLabels": {"alertname": labels["alertname"]},
            "commonLabels": labels,
            "commonAnnotations": {"summary": "5xx above 5%"},
            "externalURL": "http://alertmanager.example.com:9093",
            "alerts": [
                {
                    "status": status,
                    "labels": labels,
                    "annotations": {"summary": "5xx above 5%"},
                    "startsAt": started,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example.com:9090/graph",
                    "fingerprint": f"{group:016x}",
                }
            ],
        }
    )


async def deliver_all(
    http: aiohttp.ClientSession, url: str, groups: int, concurrency: int
) -> tuple[float, dict[int, float], int]:
    """Send one delivery per group; returns wall time, send time per group, non-200 count."""
    sent: dict[int, float] = {}
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for group in range(groups):
        queue.put_nowait(group)

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            group = queue.get_nowait()
            for _attempt in range(5):  # Alertmanager retries a 503 the same way
                sent[group] = time.time()
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with http.post(url, data=body(group), headers=headers) as response:
                    if response.status == 200:
                        break
                await asyncio.sleep(0.2)
            else:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, sent, failures


def latencies(slack: FakeSlackWebApi, method: str, sent: dict[int, float]) -> list[float]:
    """For each group, the first `method` call about it after its delivery was sent."""
    first: dict[int, float] = {}
    for call in slack.calls(method):
        found = NAME.search(str(call.args.get("text", "")))
        if found is None:
            continue
        group = int(found.group(1))
        at = sent.get(group)
        if at is not None and call.time >= at and group not in first:
            first[group] = call.time - at
    return list(first.values())


async def main_async(groups: int, concurrency: int) -> None:
    env = {
        "ROLLBACK_BOT_ALERTMANAGER_TOKEN": TOKEN,
        "ROLLBACK_BOT_DEFAULT_CHANNEL": DEFAULT_CHANNEL_ID,
        "ROLLBACK_BOT_NAMESPACE": "shop",
    }
    async with running_stack(speed=1.0, env=env) as stack:
        slack, url = stack.slack, f"{stack.bot_url}/alertmanager"
        wall, sent, failed = await deliver_all(stack.http, url, groups, concurrency)
        posted = latencies(slack, "chat.postMessage", sent)
        print(f"first deliveries: {groups} groups, {concurrency} at a time, {failed} given up")
        print(
            f"  throughput {groups / wall:7.1f} alerts/s   "
            f"to chat.postMessage p50 {pct(posted, 0.5):6.1f} ms  p99 {pct(posted, 0.99):6.1f} ms"
        )
        wall, sent, failed = await deliver_all(stack.http, url, groups, concurrency)
        updated = latencies(slack, "chat.update", sent)
        print(f"repeats (same groups): {failed} given up")
        print(
            f"  throughput {groups / wall:7.1f} alerts/s   "
            f"to chat.update      p50 {pct(updated, 0.5):6.1f} ms  p99 {pct(updated, 0.99):6.1f} ms"
        )
        posted_count = len(slack.messages(DEFAULT_CHANNEL_ID))
        print(f"messages in the channel: {posted_count} for {groups} groups")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main_async(args.groups, args.concurrency))


if __name__ == "__main__":
    main()
