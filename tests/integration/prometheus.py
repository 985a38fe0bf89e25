"""The real Prometheus (Debian's `prometheus`) and a test exporter for integration tests.

`exporting()` serves a `TestExporter` on 127.0.0.1 (a free port): `/metrics` in the text
exposition format, per pod, labelled as the pods of a Deployment are (`namespace`, `pod`,
`pod_template_hash`): `http_requests_total{code="200"|"500"}` counters and
`http_request_duration_seconds` histograms. The test sets each version's traffic
(`set_version(hash, namespace=, deployment=, pods=, rps=, error_ratio=, latency_p99=)`); on each
scrape the counters advance by what that traffic served since the previous one, computed from
the clock, so `rate()` reads back the rps set, the 5xx share the error ratio set, and
`histogram_quantile(0.99, …)` the p99 set. `stop_version` takes a version's series away,
`restart_pods` puts its counters back to 0 as a restarted container does.

`running_prometheus(workdir, targets)` starts the binary on 127.0.0.1 with a free port (never
9090), its own TSDB under `workdir` and a generated configuration (one scrape job over `targets`
with `honor_labels: true`, a 1 s scrape interval), waits for `/-/ready`, and stops it cleanly.
Prometheus hands its targets to the scrapers 5 s after it starts (its discovery manager's fixed
update tick), so the first samples arrive about 6 s after `running_prometheus` returns: wait for
them with `wait_for_samples` rather than sleeping.

Installed by the test setup (`scripts/install-prometheus.sh`: `apt-get install -y
--no-install-recommends prometheus`); tests using it fail (saying how to install it) when the
binary is absent. The package's own service is never used: it would listen on 9090, this harness
never does. `local_servers` runs its process (port, start, readiness, stop), as it runs
Alertmanager's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

from rollback_sandbox.metrics.exporter import BUCKETS, Latency
from tests.integration import local_servers

JsonDict = dict[str, Any]

PROMETHEUS_BINARY = Path(os.environ.get("ROLLBACK_BOT_PROMETHEUS_BINARY", "/usr/bin/prometheus"))
APT_INSTALL = "apt-get install -y --no-install-recommends prometheus"
DEFAULT_PORT = 9090  # the packaged service's port: never ours

requires_prometheus = pytest.mark.prometheus

POD_LABELS = ("namespace", "pod", "pod_template_hash")
# The characters Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def require_binary() -> None:
    local_servers.require_binary(PROMETHEUS_BINARY, "Prometheus", APT_INSTALL)


def free_port() -> int:
    return local_servers.free_port(avoid=DEFAULT_PORT)


# --- the test exporter ----------------------------------------------------------------------


def quantile_bucket(seconds: float) -> tuple[float, float]:
    """The bucket (lower, upper] that holds `seconds`: how close a histogram can tell it."""
    upper = min((b for b in BUCKETS if b >= seconds), default=math.inf)
    lower = max((b for b in BUCKETS if b < seconds), default=0.0)
    return lower, upper


@dataclass(frozen=True)
class Traffic:
    """What a version's pods serve together: `rps` is the version's total, split evenly."""

    rps: float
    error_ratio: float
    latency: Latency

    def __post_init__(self) -> None:
        if self.rps < 0 or not 0 <= self.error_ratio <= 1:
            raise ValueError(
                f"rps {self.rps} must be ≥ 0, error ratio {self.error_ratio} in [0, 1]"
            )


@dataclass
class _Pod:
    name: str
    ok: float = 0.0
    errors: float = 0.0
    # Cumulative counts per bound of BUCKETS, then +Inf (= all requests).
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))
    latency_sum: float = 0.0

    def serve(self, requests: float, traffic: Traffic) -> None:
        self.errors += requests * traffic.error_ratio
        self.ok += requests * (1 - traffic.error_ratio)
        for i, bound in enumerate(BUCKETS):
            self.buckets[i] += requests * traffic.latency.cdf(bound)
        self.buckets[-1] += requests
        self.latency_sum += requests * traffic.latency.mean


@dataclass
class _Version:
    pod_template_hash: str
    namespace: str
    deployment: str
    traffic: Traffic
    pods: list[_Pod]

    def serve(self, seconds: float) -> None:
        if self.pods:
            per_pod = self.traffic.rps * seconds / len(self.pods)
            for pod in self.pods:
                pod.serve(per_pod, self.traffic)


@dataclass(eq=False)  # compared and hashed by identity: the registry keys its collectors
class TestExporter:
    """Per-pod request counters and latency histograms whose traffic the test sets per version.

    Counters advance when read (each scrape, and before any change), by rps × the time since the
    previous read on `clock`: deterministic, so what Prometheus computes is what the test set.
    """

    __test__: ClassVar[bool] = False  # a harness, not a test class for pytest to collect

    clock: Callable[[], float] = time.monotonic
    url: str = ""
    scrapes: int = 0
    _versions: dict[str, _Version] = field(default_factory=dict)
    _last: float | None = None
    _waiting: list[asyncio.Future[int]] = field(default_factory=list)
    _registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # Pods ever created per version, kept across stop_version: a version started again gets new
    # pod names (new series), as a ReplicaSet scaled up again does, not a reset of the old ones.
    _created: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._registry.register(self)

    @property
    def target(self) -> str:
        """`host:port` for a scrape configuration."""
        return self.url.removeprefix("http://")

    def set_version(
        self,
        pod_template_hash: str,
        *,
        namespace: str,
        deployment: str,
        pods: int = 2,
        rps: float = 50.0,
        error_ratio: float = 0.0,
        latency_p99: float = 0.1,
        served_for: float = 0.0,
    ) -> tuple[str, ...]:
        """Start serving a version, or change its traffic from now on; returns its pods' names.

        `rps` is the version's total over its pods. The pods this call creates start from 0 unless
        `served_for` says how many seconds they have already served at this traffic. Changing
        `pods` keeps the existing pods' counters, adds fresh pods or drops the last ones.
        """
        if pods < 1:
            raise ValueError(f"a version serves from at least one pod, not {pods}: stop_version")
        traffic = Traffic(rps, error_ratio, Latency.with_p99(latency_p99))
        self._advance()
        version = self._versions.get(pod_template_hash)
        if version is None:
            version = _Version(pod_template_hash, namespace, deployment, traffic, [])
            self._versions[pod_template_hash] = version
        elif (version.namespace, version.deployment) != (namespace, deployment):
            raise ValueError(
                f"version {pod_template_hash} belongs to {version.namespace}/{version.deployment}"
            )
        version.traffic = traffic
        del version.pods[pods:]
        fresh = [self._new_pod(version) for _ in range(pods - len(version.pods))]
        version.pods.extend(fresh)
        for pod in fresh:
            pod.serve(rps / pods * served_for, traffic)
        return self.pods(pod_template_hash)

    def pods(self, pod_template_hash: str) -> tuple[str, ...]:
        return tuple(pod.name for pod in self._versions[pod_template_hash].pods)

    def stop_version(self, pod_template_hash: str) -> None:
        """Its pods are gone: their series are absent from the next scrape on."""
        self._advance()
        del self._versions[pod_template_hash]

    def restart_pods(self, pod_template_hash: str) -> None:
        """Each pod's container restarts: same pod names, every counter back to 0."""
        self._advance()
        version = self._versions[pod_template_hash]
        version.pods = [_Pod(pod.name) for pod in version.pods]

    async def next_scrape(self, within: float = 5.0) -> int:
        """Wait for the next scrape (one that reads every change made before this call)."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            raise AssertionError(f"{self.url}/metrics not scraped within {within:g}s") from None

    def _new_pod(self, version: _Version) -> _Pod:
        index = self._created.get(version.pod_template_hash, 0)
        self._created[version.pod_template_hash] = index + 1
        seed = f"{version.pod_template_hash}/{index}".encode()
        suffix = "".join(
            _SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in hashlib.sha256(seed).digest()[:5]
        )
        return _Pod(f"{version.deployment}-{version.pod_template_hash}-{suffix}")

    def _advance(self) -> None:
        now = self.clock()
        if self._last is not None:
            for version in self._versions.values():
                version.serve(now - self._last)
        self._last = now

    def collect(self) -> Iterator[Metric]:
        """The `prometheus_client` collector protocol: the current values, as they stand."""
        requests = CounterMetricFamily(
            "http_requests", "Requests served, by status code.", labels=[*POD_LABELS, "code"]
        )
        durations = HistogramMetricFamily(
            "http_request_duration_seconds", "Time to answer a request.", labels=POD_LABELS
        )
        for version in self._versions.values():
            for pod in version.pods:
                labels = [version.namespace, pod.name, version.pod_template_hash]
                requests.add_metric([*labels, "200"], pod.ok)
                requests.add_metric([*labels, "500"], pod.errors)
                bounds = [repr(bound) for bound in BUCKETS] + ["+Inf"]
                durations.add_metric(
                    labels, list(zip(bounds, pod.buckets, strict=True)), pod.latency_sum
                )
        yield requests
        yield durations

    async def _handle(self, _request: web.Request) -> web.Response:
        self._advance()
        body = generate_latest(self._registry)
        self.scrapes += 1
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(self.scrapes)
        # The classic text format: the one every Prometheus 2.x reads.
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


@contextlib.asynccontextmanager
async def exporting(exporter: TestExporter | None = None) -> AsyncIterator[TestExporter]:
    """Serve a `TestExporter` on 127.0.0.1 (a free port) for the duration of the block."""
    exporter = exporter or TestExporter()
    app = web.Application()
    app.router.add_get("/metrics", exporter._handle)
    async with local_servers.serve_app(app) as url:
        exporter.url = url
        yield exporter


# --- the real Prometheus --------------------------------------------------------------------


def render_config(targets: Sequence[str], scrape_interval: str, evaluation_interval: str) -> str:
    config: JsonDict = {
        "global": {
            "scrape_interval": scrape_interval,
            # The default (10 s) is longer than a 1 s interval, which Prometheus refuses.
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "scrape_configs": [
            {
                "job_name": "test-exporter",
                # The exporter's namespace/pod/pod_template_hash stand for the pods' own labels, as
                # a Kubernetes service discovery would have set them: keep them as they are.
                "honor_labels": True,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


class PrometheusFailed(local_servers.ServerFailed):
    """Prometheus did not start or did not become ready; the message has its log's tail."""


class PrometheusQueryError(RuntimeError):
    """Prometheus answered a query with an error (bad PromQL, a failed evaluation)."""


@dataclass
class Prometheus(local_servers.LocalServer):
    """A running Prometheus: its base URL, and its HTTP API for the test."""

    name: ClassVar[str] = "Prometheus"
    failure: ClassVar[type[local_servers.ServerFailed]] = PrometheusFailed

    async def query(self, promql: str) -> Any:
        """An instant query's `data.result`: a list of samples for a vector, a pair for a scalar.

        An unreachable Prometheus raises aiohttp's `ClientConnectionError`, as it would for the
        bot's own client; an error answer raises `PrometheusQueryError`.
        """
        async with self.session.get(
            f"{self.url}/api/v1/query", params={"query": promql}
        ) as response:
            body: JsonDict = await response.json(content_type=None)
        if body.get("status") != "success":
            raise PrometheusQueryError(
                f"{promql}: {response.status} {body.get('errorType')}: {body.get('error')}"
            )
        return body["data"]["result"]

    async def value(self, promql: str) -> float | None:
        """The one value a query gives (a scalar, or a vector of one sample); None for no sample."""
        result = await self.query(promql)
        if not result:
            return None
        if isinstance(result[0], dict):
            if len(result) > 1:
                raise PrometheusQueryError(f"{promql}: {len(result)} samples, expected one")
            return float(result[0]["value"][1])
        return float(result[1])

    async def targets(self) -> list[JsonDict]:
        async with self.session.get(f"{self.url}/api/v1/targets") as response:
            response.raise_for_status()
            body: JsonDict = await response.json()
        active: list[JsonDict] = body["data"]["activeTargets"]
        return active

    async def wait_until(
        self, promql: str, check: Callable[[Any], bool], timeout: float = 15.0
    ) -> Any:
        """Poll `promql` until `check(result)` holds, and return that result."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = await self.query(promql)
            if check(result):
                return result
            if loop.time() > deadline:
                raise AssertionError(
                    f"{promql} not as expected within {timeout:g}s; last result: {result}\n"
                    f"targets: {await self._target_health()}\n{self.log(10)}"
                )
            await asyncio.sleep(0.1)

    async def wait_for_samples(self, promql: str, timeout: float = 15.0) -> list[JsonDict]:
        """Poll `promql` until it gives a non-empty vector, and return it (tests only)."""
        result: list[JsonDict] = await self.wait_until(promql, bool, timeout)
        return result

    async def _target_health(self) -> str:
        try:
            targets = await self.targets()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"(unavailable: {exc!r})"
        return (
            "; ".join(
                f"{t['scrapeUrl']} {t['health']} {t.get('lastError') or ''}".strip()
                for t in targets
            )
            or "none yet (targets reach the scrapers 5 s after start)"
        )


@contextlib.asynccontextmanager
async def running_prometheus(
    workdir: Path,
    targets: Sequence[str],
    *,
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    attempts: int = 3,
) -> AsyncIterator[Prometheus]:
    """Start the real Prometheus scraping `targets` (`host:port`) for one test, then stop it."""
    require_binary()
    config = render_config(targets, scrape_interval, evaluation_interval)
    config_path, storage = await asyncio.to_thread(
        local_servers.prepare_workdir, workdir, "prometheus.yml", config, "tsdb"
    )
    argv = [
        str(PROMETHEUS_BINARY),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={storage}",
        "--log.level=debug",  # failed scrapes are logged only at debug
    ]
    async with local_servers.start_on_free_port(
        Prometheus, argv, workdir=workdir, avoid=DEFAULT_PORT, attempts=attempts
    ) as prometheus:
        yield prometheus
