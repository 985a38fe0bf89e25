"""Measurements several benchmarks take, kept in one place so that two figures compared with
each other (the bot against a reference, or this run against an earlier one) were taken the
same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rollback_sandbox.slack.requests import SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi

HANDLED_TIMEOUT = 60.0


def pct(samples: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of `samples` in seconds, as milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def ack_round(
    sender: SlackRequestSender,
    slack: FakeSlackWebApi,
    *,
    text: str,
    concurrency: int,
    handled: Callable[[], int],
    command: str = "/rollback",
) -> list[float]:
    """Send `concurrency` signed `command text` at once; the seconds each waited for its HTTP
    answer (the ack Slack waits at most 3 s for).

    Returns only once `handled()` (a count of the answers visible in Slack) has grown by
    `concurrency`, so that the work left after the acks is not measured by the next round.
    """
    before = handled()

    async def one() -> float:
        start = time.perf_counter()
        reply = await sender.slash_command(command, text)
        elapsed = time.perf_counter() - start
        if reply.status != 200:
            raise RuntimeError(f"{command} {text} answered HTTP {reply.status}: {reply.text[:200]}")
        return elapsed

    acks = list(await asyncio.gather(*(one() for _ in range(concurrency))))
    await slack.wait_for(lambda: handled() >= before + concurrency, timeout=HANDLED_TIMEOUT)
    return acks


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM of a process, in KiB, as Linux accounts them."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "VmHWM"}
    figures: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            figures[key] = int(value.split()[0])
    return figures
