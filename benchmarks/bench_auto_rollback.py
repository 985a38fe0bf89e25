"""Automatic rollback figures (not a test: it prints numbers, it asserts nothing).

The simulated cluster and `rollback-bot serve` run as separate processes (benchmarks/stack.py);
the Slack stand-in and small exporters run in this one; Debian's real Prometheus
(/usr/bin/prometheus, its own configuration and TSDB, 127.0.0.1 on a free port) scrapes them
every second. An exporter serves, per pod, what the presets query
(bot/domain/analysis/presets.py): `http_requests_total{namespace,pod,pod_template_hash,code}`
and the `http_request_duration_seconds` histogram, its counters advanced from the clock on each
scrape.

1. Detection time: `--runs` catalog services (`detect-N`, namespace `detect`, a channel), all in
   one bot's catalog with `auto_rollback: {mode: act, window: 2m, interval: 1s, query_window:
   2s, consecutive: 3}`, each served by its own exporter (its own scrape target, so each is
   scraped at its own moment within the second, as a fleet's pods are). Each run, the bot
   running on: the service is deployed at 1.0.0 through the cluster's HTTP API and its pods
   served at 0.5 % errors; once Prometheus holds them, 1.1.0 goes out and, as soon as its
   ReplicaSet exists, its pods are served at 30 % errors. Measured: from the first bad sample
   (the first scrape that returned the new pods' counters, timed in the exporter's handler) to
   the rollback's PATCH (the Deployment's template back at 1.0.0, timed as its event arrives on
   a watch of the namespace: the simulated API server logs no request times). Printed: each
   run with its timeline, the median, the configured minimum (consecutive × interval) and the
   difference, and the bot's own `rollbackbot_auto_rollback_detection_seconds` (its /metrics).
2. Watch cost: `--services` Deployments (one revision each, over two namespaces, deployed
   longer ago than their window: a fleet between deploys) in the catalogs of two bots started
   side by side, one whose services have an `auto_rollback` block (dry-run, this Prometheus)
   and, as the reference, one whose services have none. Once both settled, each one's RSS
   (/proc/PID/status) and CPU time (/proc/PID/stat utime + stime) over `--idle` seconds. Then
   a deploy of one service shows the watch was live: the time until its watch message.
   The fleet is created after the detection runs: 200 Deployments slow the simulated API
   server down for everyone.

The bots' logs go to files in the work directory (`--keep DIR` keeps it). The machine is
shared and noisy: compare the figures within one run.

Run: .venv/bin/python -m benchmarks.bench_auto_rollback [--runs 5] [--services 200] [--idle 60]
     [--only detect|cost] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from benchmarks.measure import memory_kib
from benchmarks.stack import (
    HOST,
    START_TIMEOUT,
    Cluster,
    Server,
    free_port,
    running_bot,
    running_cluster,
    stop,
    wait_ready,
)
from rollback_sandbox.slack.web_api import FakeSlackWebApi

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
SPEED = 100.0  # simulated seconds per real second: rollouts end at once

DETECT_NAMESPACE = "detect"
DETECT_CHANNEL = "C0DETECT"
INTERVAL = 1.0
SCRAPE = 1.0  # Prometheus' scrape interval here
SCRAPE_LAG = 0.25  # the bot's lag for a 1 s interval (usecases/analysis/watch.py): not imported
CONSECUTIVE = 3
DETECT_BLOCK = {
    "mode": "act",
    "window": "2m",
    "interval": f"{INTERVAL:g}s",
    "query_window": "2s",  # rate() needs two samples of the 1 s scrapes
    "consecutive": CONSECUTIVE,
}
BASELINE_ERRORS = 0.005
BAD_ERRORS = 0.30
RPS = 50.0  # per version, over its pods
PODS = 2
OLD_SCRAPES = 3  # scrapes of the old pods Prometheus holds before the new version goes out
ROLLBACK_WITHIN = 90.0
QUIET = 2.0  # Slack calls stop this long: the bot's work after a rollback (chart) is done

FLEET_NAMESPACES = ("fleet-a", "fleet-b")
FLEET_CHANNEL = "C0FLEET"
# A short window, so that the fleet's one revision is out of it a few seconds after it is
# deployed: the idle figures are those of a fleet between deploys, with no analysis running.
FLEET_WINDOW, FLEET_INTERVAL, FLEET_CONSECUTIVE = 20.0, 5.0, 3
FLEET_HORIZON = FLEET_WINDOW + FLEET_CONSECUTIVE * FLEET_INTERVAL
SETTLE_CPU = 0.02  # CPU seconds per second under which a process counts as settled
SETTLE_SECONDS = 3  # for this many seconds in a row
SETTLE_WITHIN = 120.0
RSS_EVERY = 5.0

# Latency: the same for every version (p99 ≈ 97 ms), so only the error ratio breaches.
BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LATENCY_CDF = (0.5, 0.9, 0.995, 0.999, 1.0, 1.0)
LATENCY_MEAN = 0.035

JsonDict = dict[str, Any]


# -- the exporter -------------------------------------------------------------------------------


@dataclass
class _Pod:
    name: str
    ok: float = 0.0
    errors: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    latency_sum: float = 0.0


@dataclass
class _Version:
    namespace: str
    pods: list[_Pod]
    error_ratio: float
    last: float  # when its counters were last advanced (time.monotonic)
    first_scraped: float | None = None
    scrapes: int = 0

    def advance(self, now: float) -> None:
        per_pod = RPS * max(0.0, now - self.last) / len(self.pods)
        self.last = now
        for pod in self.pods:
            pod.errors += per_pod * self.error_ratio
            pod.ok += per_pod * (1 - self.error_ratio)
            for i, fraction in enumerate(LATENCY_CDF):
                pod.buckets[i] += per_pod * fraction
            pod.latency_sum += per_pod * LATENCY_MEAN


class Exporter:
    """Per-pod request counters and latency histograms, labelled as the presets expect, for the
    versions the benchmark serves; each scrape is timed (the first bad sample)."""

    def __init__(self) -> None:
        self._versions: dict[str, _Version] = {}
        self.url = ""

    def serve(self, pod_template_hash: str, namespace: str, deployment: str, errors: float) -> None:
        pods = [_Pod(f"{deployment}-{pod_template_hash}-{i}") for i in range(PODS)]
        self._versions[pod_template_hash] = _Version(namespace, pods, errors, time.monotonic())

    def stop(self, pod_template_hash: str) -> None:
        self._versions.pop(pod_template_hash, None)

    def first_scraped(self, pod_template_hash: str) -> float | None:
        version = self._versions.get(pod_template_hash)
        return version.first_scraped if version else None

    async def scraped(self, pod_template_hash: str, times: int, within: float = 30.0) -> None:
        version = self._versions[pod_template_hash]
        async with asyncio.timeout(within):
            while version.scrapes < times:
                await asyncio.sleep(0.05)

    def text(self) -> str:
        requests = [
            "# HELP http_requests_total Requests served, by status code.",
            "# TYPE http_requests_total counter",
        ]
        durations = [
            "# HELP http_request_duration_seconds Time to answer a request.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        for pod_template_hash, version in self._versions.items():
            for pod in version.pods:
                labels = (
                    f'namespace="{version.namespace}",pod="{pod.name}",'
                    f'pod_template_hash="{pod_template_hash}"'
                )
                requests.append(f'http_requests_total{{{labels},code="200"}} {pod.ok!r}')
                requests.append(f'http_requests_total{{{labels},code="500"}} {pod.errors!r}')
                total = pod.ok + pod.errors
                for bound, count in zip(BUCKETS, pod.buckets, strict=True):
                    durations.append(
                        f'http_request_duration_seconds_bucket{{{labels},le="{bound!r}"}} {count!r}'
                    )
                durations.append(
                    f'http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {total!r}'
                )
                durations.append(
                    f"http_request_duration_seconds_sum{{{labels}}} {pod.latency_sum!r}"
                )
                durations.append(f"http_request_duration_seconds_count{{{labels}}} {total!r}")
        return "\n".join([*requests, *durations]) + "\n"

    async def handle(self, _request: web.Request) -> web.Response:
        now = time.monotonic()
        for version in self._versions.values():
            version.advance(now)
            version.scrapes += 1
            if version.first_scraped is None:
                version.first_scraped = now
        return web.Response(
            text=self.text(), content_type="text/plain", headers={"X-Version": "0.0.4"}
        )


@contextlib.asynccontextmanager
async def _serving(exporter: Exporter) -> AsyncIterator[Exporter]:
    app = web.Application()
    app.router.add_get("/metrics", exporter.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        port = free_port()
        await web.TCPSite(runner, HOST, port).start()
        exporter.url = f"http://{HOST}:{port}"
        yield exporter
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def exporting(count: int) -> AsyncIterator[list[Exporter]]:
    """`count` exporters, each on its own port: a target each, so Prometheus scrapes each at its
    own offset within the second, as it does a fleet's pods (the offset comes from a hash of
    the target), and the runs see the first bad sample land at different moments."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(_serving(Exporter())) for _ in range(count)]


# -- Prometheus ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_prometheus(
    workdir: Path, targets: Sequence[str], http: aiohttp.ClientSession
) -> AsyncIterator[str]:
    """Debian's Prometheus scraping `targets` (host:port) every second, on a free port of
    127.0.0.1, with its own configuration and TSDB under `workdir`; stopped with SIGTERM (then
    waited for)."""
    if not PROMETHEUS_BINARY.exists():
        raise SystemExit(
            f"{PROMETHEUS_BINARY} is missing: apt-get install -y --no-install-recommends "
            "prometheus (scripts/install-prometheus.sh)"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {
            "scrape_interval": f"{SCRAPE:g}s",
            "scrape_timeout": f"{SCRAPE:g}s",
            "evaluation_interval": f"{SCRAPE:g}s",
        },
        "scrape_configs": [
            {
                "job_name": "bench-exporter",
                "honor_labels": True,  # namespace/pod/pod_template_hash stand for the pods' own
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    port = free_port()
    url = f"http://{HOST}:{port}"
    with (workdir / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS_BINARY),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address={HOST}:{port}",
            ],
            stdout=log,
            stderr=log,
        )
        try:
            await wait_ready(http, f"{url}/-/ready", process)
            yield url
        finally:
            await asyncio.to_thread(stop, process)


async def query(http: aiohttp.ClientSession, prometheus: str, promql: str) -> list[JsonDict]:
    async with http.get(f"{prometheus}/api/v1/query", params={"query": promql}) as response:
        body: JsonDict = await response.json(content_type=None)
    if body.get("status") != "success":
        raise RuntimeError(f"{promql}: {body.get('error')}")
    result: list[JsonDict] = body["data"]["result"]
    return result


async def first_scrapes(http: aiohttp.ClientSession, prometheus: str, targets: int) -> None:
    """Until Prometheus scraped every target once (it hands targets over 5 s after start)."""
    async with asyncio.timeout(START_TIMEOUT):
        while len(await query(http, prometheus, 'up{job="bench-exporter"} == 1')) < targets:
            await asyncio.sleep(0.2)


# -- the simulated cluster ----------------------------------------------------------------------


def deployment(namespace: str, name: str, version: str, replicas: int) -> JsonDict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name, version),
        },
    }


def template(name: str, version: str) -> JsonDict:
    return {
        "metadata": {"labels": {"app": name, "app.kubernetes.io/version": version}},
        "spec": {
            "containers": [{"name": "app", "image": f"registry.example.com/{name}:{version}"}]
        },
    }


async def _send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any,
    content_type: str = "application/json",
) -> JsonDict:
    async with http.request(
        method, url, data=json.dumps(body), headers={"Content-Type": content_type}
    ) as response:
        if response.status >= 300 and response.status != 409:  # 409: the namespace exists
            raise RuntimeError(f"{method} {url}: HTTP {response.status}: {await response.text()}")
        answer: JsonDict = await response.json()
        return answer


async def create_namespace(http: aiohttp.ClientSession, cluster: str, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    await _send(http, "POST", f"{cluster}/api/v1/namespaces", body)


def deployments_url(cluster: str, namespace: str) -> str:
    return f"{cluster}/apis/apps/v1/namespaces/{namespace}/deployments"


async def create_deployment(
    http: aiohttp.ClientSession, cluster: str, namespace: str, name: str, replicas: int
) -> None:
    body = deployment(namespace, name, "1.0.0", replicas)
    await _send(http, "POST", deployments_url(cluster, namespace), body)


async def deploy(
    http: aiohttp.ClientSession, cluster: str, namespace: str, name: str, version: str
) -> None:
    """A new version, as a CI would: the template changed."""
    await _send(
        http,
        "PATCH",
        f"{deployments_url(cluster, namespace)}/{name}",
        {"spec": {"template": template(name, version)}},
        "application/merge-patch+json",
    )


async def replicaset_of(
    http: aiohttp.ClientSession, cluster: str, namespace: str, name: str, version: str
) -> tuple[str, str]:
    """The pod-template-hash and creationTimestamp of `version`'s ReplicaSet, once it exists
    (polled every 20 ms)."""
    url = f"{cluster}/apis/apps/v1/namespaces/{namespace}/replicasets"
    async with asyncio.timeout(30):
        while True:
            async with http.get(url, params={"labelSelector": f"app={name}"}) as response:
                items = (await response.json())["items"]
            for item in items:
                labels = item["spec"]["template"]["metadata"]["labels"]
                if labels.get("app.kubernetes.io/version") == version:
                    return labels["pod-template-hash"], item["metadata"]["creationTimestamp"]
            await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Change:
    at: float  # time.monotonic() when the event arrived
    name: str
    version: str


class DeploymentEvents:
    """A watch of a namespace's Deployments: each change's arrival time and template version."""

    def __init__(self, http: aiohttp.ClientSession, cluster: str, namespace: str) -> None:
        self._http = http
        self._url = deployments_url(cluster, namespace)
        self.changes: list[Change] = []
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        resource_version: str | None = None
        while True:  # resumed where it was if the server ends the stream
            params = {"watch": "1"}
            if resource_version is not None:
                params["resourceVersion"] = resource_version
            async with self._http.get(self._url, params=params, timeout=timeout) as response:
                async for line in response.content:
                    if not line.strip():
                        continue
                    at = time.monotonic()
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    meta = obj.get("metadata") or {}
                    resource_version = meta.get("resourceVersion", resource_version)
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        labels = obj["spec"]["template"]["metadata"].get("labels") or {}
                        version = labels.get("app.kubernetes.io/version", "")
                        self.changes.append(Change(at, meta["name"], version))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._task

    async def rolled_back(self, name: str, after: float, within: float) -> float | None:
        """When `name` went back to 1.0.0 after going to another version since `after`."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._task is not None and self._task.done():
                self._task.result()  # the watch failed: say why
            moved = False
            for change in self.changes:
                if change.at < after or change.name != name:
                    continue
                if change.version != "1.0.0":
                    moved = True
                elif moved:
                    return change.at
            await asyncio.sleep(0.01)
        return None


# -- the bot --------------------------------------------------------------------------------------


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """This process' stderr (fd 2) into `path` while a process is started: the child keeps it,
    so its logs (the audit records are logged whatever ROLLBACK_BOT_LOG_LEVEL says) stay out of
    the figures."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.asynccontextmanager
async def logged_bot(
    cluster: Cluster,
    catalog_path: Path,
    slack: FakeSlackWebApi,
    http: aiohttp.ClientSession,
    log: Path,
) -> AsyncIterator[Server]:
    """`running_bot`, its logs in `log` (their tail printed if it does not start)."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            with stderr_to(log):
                server = await stack.enter_async_context(
                    running_bot(cluster, catalog_path, slack, http)
                )
        except Exception:
            tail = log.read_text(errors="replace").splitlines()[-10:]
            print(f"{log} ends with:", *tail, sep="\n", file=sys.stderr)
            raise
        yield server


def catalog(services: Mapping[str, JsonDict]) -> str:
    return yaml.safe_dump({"services": dict(services)}, sort_keys=False)


async def bot_metrics(http: aiohttp.ClientSession, bot: str) -> dict[str, float]:
    async with http.get(f"{bot}/metrics") as response:
        text = await response.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("rollbackbot_auto_rollback_detection_seconds_") or name.startswith(
            "rollbackbot_analyses_total"
        ):
            found[name] = float(value)
    return found


async def quiet(slack: FakeSlackWebApi, within: float = 30.0) -> None:
    """Until the stand-in got no call for QUIET seconds (at most `within` s)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        calls = slack.calls()
        if not calls or time.time() - calls[-1].time >= QUIET:
            return
        await asyncio.sleep(0.1)


def watching_posted(slack: FakeSlackWebApi, channel: str, name: str, version: str) -> float | None:
    """When (Slack ts, wall time) the bot posted its watch message about `version` of `name`:
    the first top-level message naming both (it is edited later: its ts stays)."""
    for message in slack.messages(channel):
        text = message.text + " " + json.dumps(message.blocks)
        if not message.is_reply and name in text and version in text:
            return float(message.ts)
    return None


def watch_story(slack: FakeSlackWebApi, channel: str, name: str, version: str) -> str:
    """What the watch message of `version` of `name` and its thread say now (shortened)."""
    for message in slack.messages(channel):
        text = message.text + " " + json.dumps(message.blocks)
        if not message.is_reply and name in text and version in text:
            replies = [m.text for m in slack.thread(channel, message.ts) if m.ts != message.ts]
            return " | ".join([message.text, *replies])[:800]
    return "no watch message"


# -- 1. detection time ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    name: str
    detection: float | None  # first bad sample → rollback PATCH, seconds
    went_out: float  # wall time of the new ReplicaSet's creationTimestamp (whole seconds)
    timeline: dict[str, float]  # event → wall time
    story: str = ""  # what Slack shows of the watch, when no rollback was seen


def wall_of(monotonic: float) -> float:
    return time.time() - (time.monotonic() - monotonic)


def parse_timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").timestamp()


async def one_run(
    http: aiohttp.ClientSession,
    cluster: str,
    slack: FakeSlackWebApi,
    exporter: Exporter,
    events: DeploymentEvents,
    name: str,
) -> Run:
    await create_deployment(http, cluster, DETECT_NAMESPACE, name, PODS)
    old_hash, _ = await replicaset_of(http, cluster, DETECT_NAMESPACE, name, "1.0.0")
    exporter.serve(old_hash, DETECT_NAMESPACE, name, BASELINE_ERRORS)
    await exporter.scraped(old_hash, OLD_SCRAPES)
    deployed = time.monotonic()
    await deploy(http, cluster, DETECT_NAMESPACE, name, "1.1.0")
    new_hash, created = await replicaset_of(http, cluster, DETECT_NAMESPACE, name, "1.1.0")
    seen = time.monotonic()
    exporter.serve(new_hash, DETECT_NAMESPACE, name, BAD_ERRORS)
    try:
        patched = await events.rolled_back(name, deployed, ROLLBACK_WITHIN)
        first = exporter.first_scraped(new_hash)
    finally:
        exporter.stop(new_hash)
        exporter.stop(old_hash)
    timeline = {
        "1.1.0 PATCH sent": wall_of(deployed),
        "its ReplicaSet seen": wall_of(seen),
    }
    if first is not None:
        timeline["first bad sample"] = wall_of(first)
    posted = watching_posted(slack, DETECT_CHANNEL, name, "1.1.0")
    if posted is not None:
        timeline["watch message posted"] = posted
    if patched is not None:
        timeline["rollback PATCH"] = wall_of(patched)
    detection = patched - first if patched is not None and first is not None else None
    await quiet(slack)
    story = watch_story(slack, DETECT_CHANNEL, name, "1.1.0") if patched is None else ""
    return Run(name, detection, parse_timestamp(created), timeline, story)


def show_run(number: int, run: Run) -> None:
    figure = f"{run.detection:5.2f} s" if run.detection is not None else "no rollback"
    steps = ", ".join(
        f"{what} {at - run.went_out:+.2f}"
        for what, at in sorted(run.timeline.items(), key=lambda item: item[1])
    )
    print(f"  run {number} {run.name}: {figure}   (s after went-out: {steps})")
    if run.story:
        print(f"    Slack: {run.story}")


async def detection(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    slack: FakeSlackWebApi,
    exporters: Sequence[Exporter],
    prometheus: str,
    workdir: Path,
    runs: int,
) -> None:
    names = [f"detect-{i}" for i in range(runs)]
    block = {**DETECT_BLOCK, "prometheus": {"url": prometheus}}
    path = workdir / "detect-catalog.yaml"
    path.write_text(
        catalog(
            {
                n: {
                    "namespace": DETECT_NAMESPACE,
                    "deployment": n,
                    "channel": DETECT_CHANNEL,
                    "auto_rollback": block,
                }
                for n in names
            }
        )
    )
    slack.add_channel("detect", channel_id=DETECT_CHANNEL)
    await create_namespace(http, cluster.url, DETECT_NAMESPACE)
    events = DeploymentEvents(http, cluster.url, DETECT_NAMESPACE)
    events.start()
    minimum = CONSECUTIVE * INTERVAL
    print(
        f"\n1. detection: first bad sample → rollback PATCH; interval {INTERVAL:g} s, "
        f"{CONSECUTIVE} consecutive, rate over {DETECT_BLOCK['query_window']}, scrapes every 1 s, "
        f"new pods at {BAD_ERRORS:.0%} errors against {BASELINE_ERRORS:.1%}"
    )
    print(
        "  (went-out: the new ReplicaSet's creationTimestamp, whole seconds; the bot judges "
        f"interval k at went-out + k × interval + {SCRAPE_LAG:g} s for the scrape)"
    )
    print(
        f"  after the first bad sample the bot waits for: rate()'s second sample ({SCRAPE:g} s), "
        f"that interval's end (0–{INTERVAL:g} s), {CONSECUTIVE - 1} more intervals, the scrape "
        f"lag ({SCRAPE_LAG:g} s): {SCRAPE + (CONSECUTIVE - 1) * INTERVAL + SCRAPE_LAG:g}–"
        f"{SCRAPE + CONSECUTIVE * INTERVAL + SCRAPE_LAG:g} s, then its queries and the PATCH"
    )
    try:
        async with logged_bot(cluster, path, slack, http, workdir / "detect-bot.log") as bot:
            done: list[Run] = []
            for i, (name, exporter) in enumerate(zip(names, exporters, strict=True), start=1):
                run = await one_run(http, cluster.url, slack, exporter, events, name)
                show_run(i, run)
                done.append(run)
            figures = await bot_metrics(http, bot.url)
    finally:
        await events.stop()
    times = [r.detection for r in done if r.detection is not None]
    if not times:
        print("  no rollback seen: no figures")
        return
    median = statistics.median(times)
    print(f"  detection times: {' '.join(f'{t:.2f}' for t in times)} s ({len(times)}/{runs} runs)")
    print(
        f"  median {median:.2f} s (min {min(times):.2f}, max {max(times):.2f}); configured "
        f"minimum {CONSECUTIVE} × {INTERVAL:g} s = {minimum:g} s; median − minimum "
        f"{median - minimum:+.2f} s (target ≤ 1 s)"
    )
    count = figures.get("rollbackbot_auto_rollback_detection_seconds_count", 0.0)
    total = figures.get("rollbackbot_auto_rollback_detection_seconds_sum", 0.0)
    rolled = sum(v for k, v in figures.items() if 'verdict="rolled_back"' in k)
    mean = f"mean {total / count:.2f} s" if count else "no observation"
    print(
        f"  the bot's rollbackbot_auto_rollback_detection_seconds: count {count:g}, sum "
        f"{total:.2f} s, {mean} (from the end of the first breaching interval); "
        f"rollbackbot_analyses_total rolled_back {rolled:g}"
    )


# -- 2. the watch's cost --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fleet(count: int) -> list[tuple[str, str]]:
    """(namespace, name) of `count` services spread over FLEET_NAMESPACES."""
    spaces = len(FLEET_NAMESPACES)
    return [(FLEET_NAMESPACES[i % spaces], f"svc-{i:03d}") for i in range(count)]


async def create_fleet(http: aiohttp.ClientSession, cluster: str, count: int) -> float:
    """The fleet's Deployments, one revision each; when they were created (time.monotonic)."""
    for namespace in FLEET_NAMESPACES:
        await create_namespace(http, cluster, namespace)
    start = time.perf_counter()
    services = fleet(count)
    for chunk in range(0, len(services), 50):
        await asyncio.gather(
            *(create_deployment(http, cluster, ns, n, 1) for ns, n in services[chunk : chunk + 50])
        )
    print(f"cluster: {count} Deployments in {len(FLEET_NAMESPACES)} namespaces in "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    return time.monotonic()


def fleet_catalog(count: int, block: JsonDict | None) -> str:
    services: dict[str, JsonDict] = {}
    for namespace, name in fleet(count):
        entry: JsonDict = {"namespace": namespace, "deployment": name, "channel": FLEET_CHANNEL}
        if block is not None:
            entry["auto_rollback"] = block
        services[name] = entry
    return catalog(services)


async def settled(pids: Sequence[int]) -> float:
    """Seconds until every process used under SETTLE_CPU CPU seconds a second for
    SETTLE_SECONDS seconds in a row (at most SETTLE_WITHIN)."""
    start = time.monotonic()
    calm = 0
    before = [cpu_seconds(p) for p in pids]
    while calm < SETTLE_SECONDS and time.monotonic() - start < SETTLE_WITHIN:
        await asyncio.sleep(1.0)
        now = [cpu_seconds(p) for p in pids]
        busy = any(b - a > SETTLE_CPU for a, b in zip(before, now, strict=True))
        calm = 0 if busy else calm + 1
        before = now
    return time.monotonic() - start


@dataclass
class Idle:
    name: str
    pid: int
    cpu: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    ready_kib: int = 0
    startup_cpu: float = 0.0

    def sample(self) -> None:
        self.rss_kib.append(memory_kib(self.pid)["VmRSS"])


def mib(kib: float) -> float:
    return kib / 1024


async def watch_cost(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    slack: FakeSlackWebApi,
    prometheus: str,
    workdir: Path,
    count: int,
    idle: float,
    created: float,
) -> None:
    slack.add_channel("fleet", channel_id=FLEET_CHANNEL)
    block: JsonDict = {
        "mode": "dry-run",
        "prometheus": {"url": prometheus},
        "window": f"{FLEET_WINDOW:g}s",
        "interval": f"{FLEET_INTERVAL:g}s",
        "query_window": f"{2 * FLEET_INTERVAL:g}s",
        "consecutive": FLEET_CONSECUTIVE,
    }
    watched, plain = workdir / "fleet-watched.yaml", workdir / "fleet-plain.yaml"
    watched.write_text(fleet_catalog(count, block))
    plain.write_text(fleet_catalog(count, None))
    # Whole-second creation times: wait a second more than the window needs.
    wait = created + FLEET_HORIZON + 2.0 - time.monotonic()
    if wait > 0:
        print(f"waiting {wait:.0f} s for the fleet's revisions to leave their window")
        await asyncio.sleep(wait)
    print(
        f"\n2. watch cost: {count} catalog services ({len(FLEET_NAMESPACES)} namespaces, one "
        f"revision each, out of their window), idle {idle:g} s"
    )
    async with (
        logged_bot(cluster, watched, slack, http, workdir / "bot-watching.log") as with_block,
        logged_bot(cluster, plain, slack, http, workdir / "bot-plain.log") as without,
    ):
        subjects = [
            Idle("auto_rollback (dry-run)", with_block.pid),
            Idle("no auto_rollback", without.pid),
        ]
        for s in subjects:
            s.ready_kib = memory_kib(s.pid)["VmRSS"]
        took = await settled([s.pid for s in subjects])
        for s in subjects:
            s.startup_cpu = cpu_seconds(s.pid)
        print(f"  settled {took:.0f} s after both were ready")
        start = time.monotonic()
        for s in subjects:
            s.cpu.append(cpu_seconds(s.pid))
            s.sample()
        while (left := start + idle - time.monotonic()) > 0:
            await asyncio.sleep(min(RSS_EVERY, left))
            for s in subjects:
                s.sample()
        elapsed = time.monotonic() - start
        for s in subjects:
            s.cpu.append(cpu_seconds(s.pid))

        # The watch was live all along: a deploy now is noticed.
        namespace, name = fleet(count)[0]
        posted_before = time.time()
        await deploy(http, cluster.url, namespace, name, "1.1.0")
        noticed: float | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while (at := watching_posted(slack, FLEET_CHANNEL, name, "1.1.0")) is None:
                    await asyncio.sleep(0.05)
                noticed = at - posted_before

    per_minute = [(s.cpu[-1] - s.cpu[0]) / elapsed * 60 for s in subjects]
    for s, cpu in zip(subjects, per_minute, strict=True):
        rss = [mib(k) for k in s.rss_kib]
        print(
            f"  {s.name:<24} RSS {statistics.median(rss):6.1f} MiB (min {min(rss):.1f}, max "
            f"{max(rss):.1f}; at ready {mib(s.ready_kib):.1f})  CPU {cpu:6.3f} s/min idle "
            f"({s.startup_cpu:.2f} s until settled)"
        )
    (a, b), (ca, cb) = [statistics.median(mib(k) for k in s.rss_kib) for s in subjects], per_minute
    ratio = f"{ca / cb:.2f}x" if cb > 0 else "n/a"
    tick = 1 / os.sysconf("SC_CLK_TCK")
    print(
        f"  difference: RSS {a - b:+.1f} MiB ({a / b:.2f}x), CPU {ca - cb:+.3f} s/min ({ratio}; "
        f"/proc counts CPU in {tick * 1000:g} ms ticks)"
    )
    print(
        f"  watch live: after the idle period, a deploy of {namespace}/{name} had its watch "
        "message posted " + (f"{noticed:.2f} s later" if noticed is not None else "not within 30 s")
    )


# -- the run --------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace, cluster: Cluster, workdir: Path) -> None:
    # One exporter (a scrape target) per detection run; the watch cost queries none.
    targets = args.runs if args.only in (None, "detect") else 1
    async with (
        FakeSlackWebApi() as slack,
        aiohttp.ClientSession() as http,
        exporting(targets) as exporters,
        running_prometheus(
            workdir / "prometheus", [e.url.removeprefix("http://") for e in exporters], http
        ) as prometheus,
    ):
        await first_scrapes(http, prometheus, targets)
        if args.only in (None, "detect"):
            # First, on a cluster holding only its own services: the fleet's 200 Deployments
            # slow the simulated API server down for everyone.
            await detection(http, cluster, slack, exporters, prometheus, workdir, args.runs)
        if args.only in (None, "cost"):
            created = await create_fleet(http, cluster.url, args.services)
            await watch_cost(
                http, cluster, slack, prometheus, workdir, args.services, args.idle, created
            )


def stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    # Unwinding through the `with` blocks is what stops the processes this run started.
    raise SystemExit(143)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="detection runs")
    parser.add_argument("--services", type=int, default=200, help="catalog services (cost)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds measured idle")
    parser.add_argument("--only", choices=("detect", "cost"), help="run one part only")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the logs, catalogs and TSDB in DIR"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    print(f"machine: {os.cpu_count()} cores; Prometheus: {PROMETHEUS_BINARY}")
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            workdir = args.keep.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cluster = stack.enter_context(running_cluster(workdir, speed=SPEED))
        asyncio.run(main_async(args, cluster, workdir))


if __name__ == "__main__":
    main()
