"""Alertmanager webhook figures under an alert storm (not a test: it prints numbers only).

The bot runs as `rollback-bot serve` in its own process against the simulated cluster (another
process) and the Slack stand-in (this one, enforcing Slack's rate limits). The catalog names
`--services` services per channel, each a Deployment of the simulated cluster with two
revisions (so a digest line can offer its rollback button), all of one channel's services
mapped to that one channel.

1. Storm: `--storm-groups` new alert groups about the storm channel's services (the groups
   spread evenly over them), delivered at once, `--concurrency` at a time (a 503 is retried as
   Alertmanager would). Printed: the top-level messages the channel got (target: at most
   ROLLBACK_BOT_ALERT_STORM_MESSAGES, 5), which services the digest shows (a line each; those
   that do not fit are in its picker and in the thread's full list), the time from the first
   delivery until every service is visible in the channel (polled in the stand-in's state), and
   the 429s the stand-in answered.
2. Throughput: `--deliveries` deliveries sent open-loop at `--rate` a second (a send every
   1/rate s, never waiting for an answer) about `--groups` groups of another channel, repeats
   included (delivery i is of group i % groups). Printed: the alerts per second answered 200,
   and the latency from each send to its answer, p50 / p99. The webhook answers once the group
   is in the alert index (a ConfigMap), so for digested groups that is receipt → index; a group
   with a message of its own also waits for Slack (its post or update), so the answer kinds are
   shown apart. Target: 500 alerts/s with a p99 under 200 ms.

The index's writes (PUTs and POSTs of the ConfigMap) are counted from a watch of it on the
simulated cluster. The machine is shared and noisy: compare runs, not absolutes.

Run: .venv/bin/python -m benchmarks.bench_alerts [--services 40] [--storm-groups 200]
     [--concurrency 50] [--rate 500] [--deliveries 2000] [--groups 400] [--only storm|rate]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.measure import pct
from benchmarks.stack import running_bot, running_cluster
from rollback_sandbox.slack.web_api import FakeSlackWebApi

TOKEN = "bench-alertmanager-token"
NAMESPACE = "storm"  # the services' Deployments
BOT_NAMESPACE = "shop"  # where the bot keeps its alert index
INDEX_NAME = "rollback-bot-alert-messages"
STORM_CHANNEL = "C0STORM"
RATE_CHANNEL = "C0RATE"
ALERT_NAMES = ("HighErrorRate", "HighLatency", "PodCrashLooping", "SaturationHigh", "SLOBurn")
STORM_MESSAGES_TARGET = 5
RATE_TARGET = 500.0
P99_TARGET_MS = 200.0
SPEED = 100.0  # simulated seconds per real second: the Deployments' rollouts end at once
POLL = 0.02  # how often the stand-in's channel is looked at (in this process: no HTTP)
QUIET = 2.0  # Slack calls stop this long: the digest's background edits are done
MAX_ATTEMPTS = 5  # of one storm delivery, as Alertmanager retries a 503

SERVICE_LINE = re.compile(r"^~?\*([^*\n]+)\*")  # a digest line: "*name* · …" or "~*name*~ · …"
LIST_LINE = re.compile(r"^• (?::point_right: )?~?\*([^*\n]+)\*", re.MULTILINE)


# -- the simulated cluster ----------------------------------------------------------------------


def deployment(name: str, version: str) -> dict[str, Any]:
    labels = {"app": name, "app.kubernetes.io/version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": name},
            "annotations": {"kubernetes.io/change-cause": f"deploy {name} {version}"},
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": f"registry.example.com/{name}:{version}"}
                    ]
                },
            },
        },
    }


async def _send(
    http: aiohttp.ClientSession, method: str, url: str, body: Any, content_type: str
) -> Any:
    async with http.request(
        method, url, data=json.dumps(body), headers={"Content-Type": content_type}
    ) as response:
        if response.status >= 300 and response.status != 409:  # 409: the namespace exists
            raise RuntimeError(f"{method} {url}: HTTP {response.status}: {await response.text()}")
        return await response.json()


async def rolled_out(http: aiohttp.ClientSession, cluster: str, names: Sequence[str]) -> None:
    """Until each Deployment's latest generation is fully rolled out (bounded)."""
    url = f"{cluster}/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    async with asyncio.timeout(60):
        while True:
            async with http.get(url) as response:
                items = (await response.json())["items"]
            done = {
                d["metadata"]["name"]
                for d in items
                if d.get("status", {}).get("observedGeneration") == d["metadata"]["generation"]
                and d["status"].get("updatedReplicas") == d["spec"]["replicas"]
                and d["status"].get("availableReplicas") == d["spec"]["replicas"]
            }
            if done >= set(names):
                return
            await asyncio.sleep(0.05)


async def create_services(http: aiohttp.ClientSession, cluster: str, names: Sequence[str]) -> None:
    """Each name a Deployment of NAMESPACE with two revisions (1.0.0, then 1.1.0), rolled out."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    await _send(http, "POST", f"{cluster}/api/v1/namespaces", namespace, "application/json")
    deployments = f"{cluster}/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    await asyncio.gather(
        *(_send(http, "POST", deployments, deployment(n, "1.0.0"), "application/json")
          for n in names)
    )  # fmt: skip
    await rolled_out(http, cluster, names)
    await asyncio.gather(
        *(
            _send(
                http,
                "PATCH",
                f"{deployments}/{n}",
                {"spec": {"template": deployment(n, "1.1.0")["spec"]["template"]}},
                "application/merge-patch+json",
            )
            for n in names
        )
    )
    await rolled_out(http, cluster, names)
    url = f"{cluster}/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"
    async with http.get(url) as response:
        owners = Counter(rs["metadata"]["labels"]["app"] for rs in (await response.json())["items"])
    short = [n for n in names if owners[n] < 2]
    if short:
        raise RuntimeError(f"{len(short)} Deployments have fewer than two revisions: {short[:3]}")


class IndexWrites:
    """Writes of the alert index, counted from a watch of its ConfigMap (rows of a Table
    without the object: the watch costs the cluster next to nothing)."""

    def __init__(self, http: aiohttp.ClientSession, cluster: str) -> None:
        self._http = http
        self._url = (
            f"{cluster}/api/v1/namespaces/{BOT_NAMESPACE}/configmaps?watch=1"
            f"&fieldSelector=metadata.name%3D{INDEX_NAME}&includeObject=None"
        )
        self.times: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._http.get(self._url, headers={"Accept": accept}, timeout=timeout) as r:
            async for line in r.content:
                if line.strip() and json.loads(line).get("type") in ("ADDED", "MODIFIED"):
                    self.times.append(time.monotonic())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._task

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.times if start <= t <= end)


# -- the stack ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    slack: FakeSlackWebApi
    http: aiohttp.ClientSession
    webhook: str
    writes: IndexWrites


def service_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(count)]


def catalog_yaml(channels: Mapping[str, Sequence[str]]) -> str:
    lines = ["services:"]
    for channel, names in channels.items():
        lines += [
            f"  {n}: {{namespace: {NAMESPACE}, deployment: {n}, channel: {channel}}}" for n in names
        ]
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def running_bench(channels: Mapping[str, Sequence[str]]) -> AsyncIterator[Bench]:
    """The cluster with every channel's services, the stand-in with the channels, the bot."""
    names = [n for group in channels.values() for n in group]
    with tempfile.TemporaryDirectory() as tmp, running_cluster(Path(tmp), speed=SPEED) as cluster:
        catalog = Path(tmp) / "catalog.yaml"
        catalog.write_text(catalog_yaml(channels))
        env = {
            "ROLLBACK_BOT_ALERTMANAGER_TOKEN": TOKEN,
            "ROLLBACK_BOT_NAMESPACE": BOT_NAMESPACE,
        }
        async with FakeSlackWebApi() as slack, aiohttp.ClientSession() as http:
            for channel in channels:
                slack.add_channel(channel.lower(), channel_id=channel)
            start = time.perf_counter()
            await create_services(http, cluster.url, names)
            print(
                f"cluster: {len(names)} Deployments with 2 revisions each in "
                f"{time.perf_counter() - start:.1f} s"
            )
            writes = IndexWrites(http, cluster.url)
            writes.start()
            try:
                async with running_bot(cluster, catalog, slack, http, env) as bot:
                    yield Bench(slack, http, f"{bot.url}/alertmanager", writes)
            finally:
                await writes.stop()


# -- deliveries -----------------------------------------------------------------------------------


def body(group: int, service: str, starts: datetime) -> bytes:
    alertname = ALERT_NAMES[group % len(ALERT_NAMES)]
    labels = {
        "alertname": alertname,
        "namespace": NAMESPACE,
        "deployment": service,
        "severity": "critical",
        "group": str(group),  # one group per number, whatever its name and service
    }
    started = starts.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{alertname}", deployment="{service}", '
            f'group="{group}"}}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "rollback-bot",
            "groupLabels": {"alertname": alertname, "deployment": service, "group": str(group)},
            "commonLabels": labels,
            "commonAnnotations": {"summary": f"{alertname} on {service}"},
            "externalURL": "http://alertmanager.example.com:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": f"{alertname} on {service}"},
                    "startsAt": started,
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example.com:9090/graph",
                    "fingerprint": f"{group:016x}",
                }
            ],
        }
    ).encode()


HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer (connection error or timeout)
    kind: str  # posted, updated, digested (what the answer counts), or the status
    latency: float  # seconds from the send to the answer
    at: float  # perf_counter when the answer came


async def deliver(http: aiohttp.ClientSession, url: str, data: bytes) -> Answer:
    start = time.perf_counter()
    try:
        async with http.post(url, data=data, headers=HEADERS) as response:
            answer = await response.json() if response.status == 200 else {}
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status, answer = 0, {}
    end = time.perf_counter()
    kind = next((k for k in ("posted", "updated", "digested") if answer.get(k)), str(status))
    return Answer(status, kind, end - start, end)


# -- what the channel shows -----------------------------------------------------------------------


def _text(block: Mapping[str, Any]) -> str:
    text = block.get("text")
    return str(text.get("text", "")) if isinstance(text, dict) else ""


@dataclass
class Seen:
    """What the channel shows now."""

    top_level: int = 0
    own: set[str] = field(default_factory=set)  # services with an alert message of their own
    digests: int = 0
    lines: set[str] = field(default_factory=set)  # services with a line in a digest
    picker: set[str] = field(default_factory=set)  # in a digest's picker
    listed: set[str] = field(default_factory=set)  # in a digest's thread list

    @property
    def with_line(self) -> set[str]:
        return self.own | self.lines

    @property
    def anywhere(self) -> set[str]:
        return self.own | self.lines | self.picker | self.listed


def seen(slack: FakeSlackWebApi, channel: str) -> Seen:
    found = Seen()
    for message in slack.messages(channel):
        if message.is_reply:
            continue
        found.top_level += 1
        header = next((b for b in message.blocks if b.get("type") == "header"), None)
        title = _text(header) if header else message.text
        if title.startswith("Alert storm:"):
            found.digests += 1
            for block in message.blocks:
                if block.get("type") != "section":
                    continue
                if block.get("block_id") == "digest:more":
                    options = (block.get("accessory") or {}).get("options") or []
                    found.picker |= {str(o.get("value")) for o in options}
                elif m := SERVICE_LINE.match(_text(block)):
                    found.lines.add(m.group(1))
            for reply in slack.thread(channel, message.ts):
                for block in reply.blocks:
                    found.listed |= set(LIST_LINE.findall(_text(block)))
        elif title.startswith(("[FIRING", "[RESOLVED]")):
            found.own.add(title.rsplit(" · ", 1)[-1])
    return found


async def quiet(slack: FakeSlackWebApi, within: float) -> None:
    """Until the stand-in got no call for QUIET seconds (at most `within` s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        calls = slack.calls()
        if not calls or time.time() - calls[-1].time >= QUIET:
            return
        await asyncio.sleep(0.1)


def calls_summary(slack: FakeSlackWebApi, since: float) -> str:
    calls = [c for c in slack.calls() if c.time >= since]
    by_method = Counter(c.method for c in calls if c.status != 429)
    limited = Counter(c.method for c in calls if c.status == 429)
    done = ", ".join(f"{m} {n}" for m, n in sorted(by_method.items()))
    refused = ", ".join(f"{m} {n}" for m, n in sorted(limited.items())) or "none"
    return f"429s: {sum(limited.values())} ({refused}); calls that passed the limits: {done}"


def ms(samples: Sequence[float]) -> str:
    if not samples:
        return "n/a"
    return (
        f"p50 {pct(samples, 0.5):7.1f} ms  p99 {pct(samples, 0.99):7.1f} ms  "
        f"max {max(samples) * 1000:7.1f} ms"
    )


# -- 1. the storm ---------------------------------------------------------------------------------


async def storm(bench: Bench, services: Sequence[str], groups: int, concurrency: int) -> None:
    slack, wall_start = bench.slack, time.time()
    starts = datetime.now(UTC)
    bodies = [body(g, services[g % len(services)], starts) for g in range(groups)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for group in range(groups):
        queue.put_nowait(group)
    answers: list[Answer] = []
    retried = 0
    given_up = 0

    async def worker() -> None:
        nonlocal retried, given_up
        while not queue.empty():
            group = queue.get_nowait()
            for attempt in range(MAX_ATTEMPTS):
                answer = await deliver(bench.http, bench.webhook, bodies[group])
                answers.append(answer)
                if answer.status == 200:
                    break
                retried += attempt < MAX_ATTEMPTS - 1
                await asyncio.sleep(0.2)
            else:
                given_up += 1

    want = set(services)
    visible: dict[str, float] = {}

    async def watch(start: float, within: float) -> None:
        deadline = start + within
        while time.perf_counter() < deadline and len(visible) < 2:
            now_seen = seen(slack, STORM_CHANNEL)
            now = time.perf_counter()
            if "line" not in visible and now_seen.with_line >= want:
                visible["line"] = now - start
            if "anywhere" not in visible and now_seen.anywhere >= want:
                visible["anywhere"] = now - start
            await asyncio.sleep(POLL)

    writes_start = time.monotonic()
    start = time.perf_counter()
    watcher = asyncio.get_running_loop().create_task(watch(start, 120.0))
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    delivered = time.perf_counter() - start
    await watcher
    await quiet(slack, 60.0)
    final = seen(slack, STORM_CHANNEL)
    writes = bench.writes.between(writes_start, time.monotonic())

    ok = [a for a in answers if a.status == 200]
    kinds = Counter(a.kind for a in ok)
    statuses = Counter(a.status for a in answers if a.status != 200)
    n = len(services)
    print(
        f"\n1. storm: {groups} new alert groups about {n} services, one channel, "
        f"{concurrency} deliveries at a time"
    )
    print(
        f"  webhook: {len(ok)} answered 200 ({', '.join(f'{v} {k}' for k, v in kinds.items())})"
        f" in {delivered:.2f} s; non-200: {dict(statuses) or 'none'} ({retried} retried, "
        f"{given_up} given up)"
    )
    print(f"  answer latency (200s)      {ms([a.latency for a in ok])}")
    print(
        f"  top-level messages in the channel: {final.top_level}"
        f"   (target: ≤ {STORM_MESSAGES_TARGET}); "
        f"{len(final.own)} alert messages of their own, {final.digests} digest(s)"
    )
    in_digest = want - final.own
    print(
        f"  the digest lists {len(final.lines & in_digest)} of the {len(in_digest)} services "
        f"without a message of their own (a line each); its picker {len(final.picker)}, "
        f"its thread's list {len(final.listed)}"
    )
    missing = sorted(want - final.with_line)
    print(
        f"  all {n} services shown (own message or digest line): "
        + ("yes" if not missing else f"no, {len(missing)} without ({', '.join(missing[:5])}, …)")
    )
    line, anywhere = visible.get("line"), visible.get("anywhere")
    print(
        "  every service visible (own message or digest line): "
        + (f"{line:.2f} s after the first delivery" if line is not None else "not within 120 s")
    )
    if anywhere is not None and anywhere != line:
        print(f"    (in a line, the picker or the thread's list: {anywhere:.2f} s)")
    print(f"  Slack: {calls_summary(slack, wall_start)}")
    print(f"  index writes: {writes} (ConfigMap {BOT_NAMESPACE}/{INDEX_NAME})")


# -- 2. throughput --------------------------------------------------------------------------------


async def throughput(
    bench: Bench, services: Sequence[str], groups: int, deliveries: int, rate: float
) -> None:
    starts = datetime.now(UTC)
    bodies = [body(g, services[g % len(services)], starts) for g in range(groups)]
    interval = 1.0 / rate
    tasks: list[asyncio.Task[Answer]] = []
    lag = 0.0
    wall_start = time.time()
    # Its own connections, as many as needed: the answers must not wait for a pooled one.
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as http:
        loop = asyncio.get_running_loop()
        writes_start = time.monotonic()
        start = time.perf_counter()
        sent = 0
        while sent < deliveries:
            now = time.perf_counter()
            due = min(deliveries, int((now - start) / interval) + 1)
            for i in range(sent, due):
                lag = max(lag, now - (start + i * interval))
                tasks.append(loop.create_task(deliver(http, bench.webhook, bodies[i % groups])))
            sent = due
            await asyncio.sleep(max(0.0, start + sent * interval - time.perf_counter()))
        sending = time.perf_counter() - start
        answers = await asyncio.gather(*tasks)
    await quiet(bench.slack, 60.0)
    writes = bench.writes.between(writes_start, time.monotonic())

    ok = [a for a in answers if a.status == 200]
    last = max((a.at for a in ok), default=start)
    statuses = Counter("no answer" if a.status == 0 else a.status for a in answers)
    del statuses[200]
    print(
        f"\n2. throughput: {deliveries} deliveries (1 alert each) about {groups} groups of "
        f"{len(services)} services, one channel, sent open-loop at {rate:g}/s"
    )
    print(
        f"  sent in {sending:.2f} s ({deliveries / sending:.0f}/s offered, the sender at most "
        f"{lag * 1000:.0f} ms late)"
    )
    print(
        f"  accepted: {len(ok) / (last - start):7.1f} alerts/s ({len(ok)} answered 200 in "
        f"{last - start:.2f} s)   (target: {RATE_TARGET:g} alerts/s, p99 < {P99_TARGET_MS:g} ms)"
    )
    print(f"  send → answer, all 200s   {ms([a.latency for a in ok])}")
    for kind, count in sorted(Counter(a.kind for a in ok).items()):
        print(f"    {kind:9} ×{count:<5}     {ms([a.latency for a in ok if a.kind == kind])}")
    print(f"  non-200: {dict(statuses) or 'none'}")
    print(f"  Slack: {calls_summary(bench.slack, wall_start)}")
    print(f"  index writes: {writes} for {len(ok)} deliveries")


async def main_async(args: argparse.Namespace) -> None:
    channels: dict[str, list[str]] = {}
    if args.only in (None, "storm"):
        channels[STORM_CHANNEL] = service_names("storm", args.services)
    if args.only in (None, "rate"):
        channels[RATE_CHANNEL] = service_names("rate", args.services)
    print(f"machine: {os.cpu_count()} cores")
    async with running_bench(channels) as bench:
        if STORM_CHANNEL in channels:
            await storm(bench, channels[STORM_CHANNEL], args.storm_groups, args.concurrency)
        if RATE_CHANNEL in channels:
            await throughput(bench, channels[RATE_CHANNEL], args.groups, args.deliveries, args.rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=40, help="services per channel")
    parser.add_argument("--storm-groups", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50, help="storm deliveries at once")
    parser.add_argument("--rate", type=float, default=RATE_TARGET, help="deliveries a second")
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=400, help="groups of the throughput run")
    parser.add_argument("--only", choices=("storm", "rate"), help="run one part only")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
