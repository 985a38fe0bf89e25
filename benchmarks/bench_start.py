"""Start-up figures, the bot beside a reference in the same run (not a test: it prints numbers,
it asserts nothing).

1. CLI wall time: `rollback-bot status checkout -o json` (with a catalog) against
   `kubectl get deploy checkout -n shop -o json`, on the same simulated cluster, runs
   interleaved; and the bot's median against the issue's 0.3 s.
2. `serve` memory: the RSS of `rollback-bot serve` (HTTP mode) once ready and one signed
   `/rollback checkout` handled, against a bare Slack Bolt app (benchmarks/bare_bolt_app.py)
   after the same command.
3. Ack latency of `/rollback checkout` under 50 concurrent signed commands, p50 / p99, with the
   bot's rounds and the bare app's taken in turn.

The cluster, the bot and the bare app each run in their own process; the Slack stand-in runs
in this one. Only the bot's command line, environment variables and HTTP endpoints are used.
The machine is shared and noisy: compare the ratios, which are taken within one run.

Run: .venv/bin/python -m benchmarks.bench_start [--runs 15] [--rounds 7] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp

from benchmarks.bare_bolt_app import MARK
from benchmarks.measure import ack_round, memory_kib, pct
from benchmarks.stack import (
    CATALOG,
    SIGNING_SECRET,
    Cluster,
    Server,
    bot_command,
    kubectl_binary,
    local_env,
    running_bot,
    running_cluster,
    running_server,
    slack_env,
)
from rollback_sandbox.slack.requests import SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi

BARE_APP = Path(__file__).with_name("bare_bolt_app.py")
CLI_TIMEOUT = 60.0
#: Work a listener does after its answer (the bot's audit records) must not land in the next
#: reading or in the other app's round.
SETTLE = 1.0
TARGET_CLI_SECONDS = 0.3
TARGET_RSS_RATIO = 1.5
TARGET_P99_RATIO = 1.2


@dataclass(frozen=True)
class Row:
    metric: str
    bot: str
    reference: str
    ratio: float
    target: str


# -- 1. CLI wall time -------------------------------------------------------------------------


def run_cli(argv: Sequence[str], env: dict[str, str], *, keep_output: bool = False) -> str:
    done = subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if keep_output else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()[-600:]
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}: {message}")
    return done.stdout.decode() if keep_output else ""


def same_deployment(bot_json: str, kubectl_json: str) -> None:
    """Both commands must have read the same Deployment, or the comparison means nothing."""
    bot: Any = json.loads(bot_json)
    kube: Any = json.loads(kubectl_json)
    meta = kube["metadata"]
    seen = (bot["namespace"], bot["deployment"], str(bot["revision"]))
    expected = (
        meta["namespace"],
        meta["name"],
        meta["annotations"]["deployment.kubernetes.io/revision"],
    )
    if seen != expected:
        raise RuntimeError(f"the bot saw {seen}, kubectl {expected}")


def time_cli(cluster: Cluster, catalog: Path, runs: int) -> dict[str, list[float]]:
    env = local_env(
        {
            "KUBECONFIG": str(cluster.kubeconfig),
            "ROLLBACK_BOT_CONFIG": str(catalog),
            # kubectl's discovery cache, kept with this run rather than in ~/.kube
            "KUBECACHEDIR": str(catalog.parent / "kube-cache"),
        }
    )
    commands = {
        "bot": [*bot_command(), "status", "checkout", "-o", "json"],
        "kubectl": [kubectl_binary(), "get", "deploy", "checkout", "-n", "shop", "-o", "json"],
    }
    # Not counted: compiles the bot's bytecode, fills kubectl's discovery cache and the page
    # cache, as on any machine that ran the command before.
    same_deployment(
        run_cli(commands["bot"], env, keep_output=True),
        run_cli(commands["kubectl"], env, keep_output=True),
    )
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs):
        # Alternating who goes first keeps one command from always following the other.
        for name in sorted(commands, reverse=bool(i % 2)):
            start = time.perf_counter()
            run_cli(commands[name], env)
            samples[name].append(time.perf_counter() - start)
    return samples


def spread(samples: list[float]) -> str:
    return (
        f"min {min(samples):6.3f} s  median {statistics.median(samples):6.3f} s  "
        f"max {max(samples):6.3f} s  (n={len(samples)})"
    )


def cli_figures(cluster: Cluster, catalog: Path, runs: int) -> Row:
    samples = time_cli(cluster, catalog, runs)
    bot, kubectl = statistics.median(samples["bot"]), statistics.median(samples["kubectl"])
    print(f"CLI wall time, {runs} runs each, interleaved")
    print(f"  rollback-bot status checkout -o json         {spread(samples['bot'])}")
    print(f"  kubectl get deploy checkout -n shop -o json  {spread(samples['kubectl'])}")
    pairs = zip(samples["bot"], samples["kubectl"], strict=True)
    paired = statistics.median(b / k for b, k in pairs)
    print(
        f"  ratio of medians {bot / kubectl:.2f}x (median of paired ratios {paired:.2f}x); "
        f"bot median {bot:.3f} s (target ≤ {TARGET_CLI_SECONDS} s)"
    )
    return Row(
        "CLI status -o json, median wall",
        f"{bot:.3f} s",
        f"{kubectl:.3f} s",
        bot / kubectl,
        f"bot ≤ {TARGET_CLI_SECONDS} s",
    )


# -- 2. and 3. serve: memory and ack latency ---------------------------------------------------


@dataclass
class Subject:
    name: str
    server: Server
    sender: SlackRequestSender
    #: How many of its answers Slack has seen (messages posted, response_url posts).
    handled: Callable[[], int]
    memory: dict[str, dict[str, int]] = field(default_factory=dict)
    rounds: list[list[float]] = field(default_factory=list)

    @property
    def acks(self) -> list[float]:
        return [ack for one in self.rounds for ack in one]

    def per_round(self, q: float) -> list[float]:
        return [pct(one, q) for one in self.rounds]


def answers(slack: FakeSlackWebApi, mine: Callable[[str], bool]) -> Callable[[], int]:
    """A counter of successful answers whose text `mine` recognises: by message or response_url,
    whatever the bot's messages look like."""

    def count() -> int:
        calls = [*slack.calls("chat.postMessage"), *slack.calls("response_url")]
        # `error`, not `ok`: a response_url's answer carries no `ok` field.
        return sum(1 for c in calls if c.error is None and mine(str(c.args.get("text", ""))))

    return count


def mib(kib: int) -> str:
    return f"{kib / 1024:6.1f} MiB"


def show_memory(subject: Subject, when: str) -> None:
    m = subject.memory[when]
    print(
        f"  {subject.name:<18} {when:<22} RSS {mib(m['VmRSS'])}  "
        f"(anon {mib(m['RssAnon'])}, file {mib(m['RssFile'])}; peak {mib(m['VmHWM'])})"
    )


async def serve_figures(
    cluster: Cluster, catalog: Path, rounds: int, concurrency: int
) -> list[Row]:
    async with (
        # Acks and the patch are measured here, not Slack's limits: the bare Bolt reference does
        # not pace itself, and 50 commands at once would only measure 429s.
        FakeSlackWebApi(enforce_limits=False) as slack,
        aiohttp.ClientSession() as http,
        running_bot(cluster, catalog, slack, http) as bot_server,
        running_server(
            [sys.executable, str(BARE_APP)], slack_env(slack), http, ready_path="/healthz"
        ) as bare_server,
        SlackRequestSender(
            SIGNING_SECRET, events_url=f"{bot_server.url}/slack/events", slack=slack
        ) as bot_sender,
        SlackRequestSender(
            SIGNING_SECRET, events_url=f"{bare_server.url}/slack/events", slack=slack
        ) as bare_sender,
    ):
        bot = Subject(
            "rollback-bot serve",
            bot_server,
            bot_sender,
            answers(slack, lambda text: not text.startswith(MARK)),
        )
        bare = Subject(
            "bare Bolt app", bare_server, bare_sender, answers(slack, lambda t: t.startswith(MARK))
        )
        subjects = (bot, bare)

        print("serve memory (Linux /proc/PID/status)")
        for subject in subjects:
            subject.memory["ready"] = memory_kib(subject.server.pid)
            # One command first: Bolt's auth.test, the listener's imports and the Kubernetes
            # client's first calls happen on first use, and an idle bot has been used.
            await ack_round(
                subject.sender, slack, text="checkout", concurrency=1, handled=subject.handled
            )
            await asyncio.sleep(SETTLE)
            subject.memory["after one /rollback"] = memory_kib(subject.server.pid)
        for subject in subjects:
            show_memory(subject, "ready")
            show_memory(subject, "after one /rollback")

        for i in range(rounds):
            for subject in subjects if i % 2 == 0 else subjects[::-1]:
                acks = await ack_round(
                    subject.sender,
                    slack,
                    text="checkout",
                    concurrency=concurrency,
                    handled=subject.handled,
                )
                subject.rounds.append(acks)
                await asyncio.sleep(SETTLE)
        for subject in subjects:
            subject.memory[f"after {rounds}x{concurrency} more"] = memory_kib(subject.server.pid)
            show_memory(subject, f"after {rounds}x{concurrency} more")

    # The acks of one round share its moment on a noisy machine, so a round is one sample:
    # the summary takes each round's p50 and p99 (of 50, its slowest ack) and their medians.
    print(f"ack of /rollback checkout, {concurrency} concurrent x {rounds} rounds, taken in turn")
    for subject in subjects:
        p50s, p99s = subject.per_round(0.5), subject.per_round(0.99)
        print(
            f"  {subject.name:<18}  median of {len(subject.rounds)} rounds: "
            f"p50 {statistics.median(p50s):6.1f} ms  p99 {statistics.median(p99s):6.1f} ms"
        )
        print(f"  {'':<18}  each round's p99:    {' '.join(f'{v:.0f}' for v in p99s)} ms")
        print(
            f"  {'':<18}  all {len(subject.acks)} acks together: "
            f"p50 {pct(subject.acks, 0.5):6.1f} ms  p99 {pct(subject.acks, 0.99):6.1f} ms  "
            f"max {max(subject.acks) * 1000:6.1f} ms"
        )
    rss_bot = bot.memory["after one /rollback"]["VmRSS"]
    rss_bare = bare.memory["after one /rollback"]["VmRSS"]
    p50 = (statistics.median(bot.per_round(0.5)), statistics.median(bare.per_round(0.5)))
    p99 = (statistics.median(bot.per_round(0.99)), statistics.median(bare.per_round(0.99)))
    print(f"  ratio of p99 {p99[0] / p99[1]:.2f}x (target ≤ {TARGET_P99_RATIO}x)")
    return [
        Row(
            "serve RSS after one /rollback",
            mib(rss_bot).strip(),
            mib(rss_bare).strip(),
            rss_bot / rss_bare,
            f"≤ {TARGET_RSS_RATIO}x",
        ),
        Row(
            f"ack p50, {concurrency} concurrent, median of rounds",
            f"{p50[0]:.1f} ms",
            f"{p50[1]:.1f} ms",
            p50[0] / p50[1],
            "-",
        ),
        Row(
            f"ack p99, {concurrency} concurrent, median of rounds",
            f"{p99[0]:.1f} ms",
            f"{p99[1]:.1f} ms",
            p99[0] / p99[1],
            f"≤ {TARGET_P99_RATIO}x",
        ),
    ]


# -- the run ----------------------------------------------------------------------------------


def summary(rows: Sequence[Row]) -> None:
    header = ("metric", "bot", "reference", "ratio", "target")
    table = [header, *((r.metric, r.bot, r.reference, f"{r.ratio:.2f}x", r.target) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print()
    print("reference: kubectl for the CLI, a bare Slack Bolt app for serve")
    for n, line in enumerate(table):
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # Unwinding through the `with` blocks is what stops the processes this run started.
    raise SystemExit(143)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="CLI runs of each command")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of concurrent commands")
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    print(f"machine: {os.cpu_count()} cores; bot: {' '.join(bot_command())}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_cluster(Path(tmp), speed=4, seed="demo") as cluster,
    ):
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(CATALOG)
        # Nothing but the cluster runs while the CLI is timed.
        rows = [cli_figures(cluster, catalog, args.runs)]
        rows += asyncio.run(serve_figures(cluster, catalog, args.rounds, args.concurrency))
    summary(rows)


if __name__ == "__main__":
    main()
