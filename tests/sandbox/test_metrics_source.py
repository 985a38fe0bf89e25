"""The simulated cluster's metrics source (`rollback_sandbox.metrics`) against the simulated
cluster: each Ready pod of a Deployment serves what its template's annotations say, read back
through the automatic rollback's own preset queries by the real Prometheus; values that are no
such number fall back to the defaults; pods that are not Ready serve nothing."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from bot.domain.analysis.presets import ERROR_RATIO_QUERY, P99_LATENCY_QUERY, REQUEST_RATE
from bot.domain.analysis.queries import render_query
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.metrics.exporter import (
    DEFAULT_ERROR_RATIO,
    DEFAULT_P99_SECONDS,
    DEFAULT_RPS,
    ERROR_RATIO_ANNOTATION,
    P99_ANNOTATION,
    Behaviour,
    MetricsSource,
    cluster_address,
)
from tests.integration.deploys import deploy, deployment, replicaset_of
from tests.integration.prometheus import Prometheus, requires_prometheus, running_prometheus

NAMESPACE = "default"
WINDOW = 5.0  # seconds: the rate() range of the queries, five scrapes

JsonDict = dict[str, Any]
Sample = tuple[str, dict[str, str], float]
T = TypeVar("T")


# -- a pod's behaviour, from its annotations ---------------------------------------------------


def test_annotations_set_the_error_ratio_and_the_p99() -> None:
    behaviour = Behaviour.of({ERROR_RATIO_ANNOTATION: "0.3", P99_ANNOTATION: " 0.8 "})
    assert behaviour == Behaviour(error_ratio=0.3, p99_seconds=0.8)
    assert Behaviour.of({ERROR_RATIO_ANNOTATION: "1", P99_ANNOTATION: "5"}) == Behaviour(1.0, 5.0)
    assert Behaviour.of({ERROR_RATIO_ANNOTATION: "0"}) == Behaviour(0.0, DEFAULT_P99_SECONDS)
    assert Behaviour.of(None) == Behaviour(DEFAULT_ERROR_RATIO, DEFAULT_P99_SECONDS)


@pytest.mark.parametrize(
    "value",
    [
        "NaN", "nan", "inf", "-inf", "Infinity", "1e999", "-0.1", "1.0000001", "30%", "0,3",
        "0x1p-2", "0_3", "+0.3", "", " ", "0.3; rm -rf /", "0." + "3" * 40, "\x00", "١", "१",
        "None", "true",
    ],
)  # fmt: skip
def test_a_hostile_error_ratio_is_ignored(value: str) -> None:
    assert Behaviour.of({ERROR_RATIO_ANNOTATION: value}).error_ratio == DEFAULT_ERROR_RATIO


@pytest.mark.parametrize(
    "value",
    ["NaN", "inf", "1e999", "0", "-1", "0.01", "5.0001", "120ms", "0.12s", "9" * 33, "\n"],
)
def test_a_hostile_p99_is_ignored(value: str) -> None:
    assert Behaviour.of({P99_ANNOTATION: value}).p99_seconds == DEFAULT_P99_SECONDS


def test_annotations_of_the_wrong_shape_are_ignored() -> None:
    odd: Any = {ERROR_RATIO_ANNOTATION: 0.3, P99_ANNOTATION: ["0.8"]}
    assert Behaviour.of(odd) == Behaviour()
    assert Behaviour.of("not a mapping") == Behaviour()


# -- what /metrics says ------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[Sample]:
    """The samples of a text exposition: (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, line
        labels = dict(_LABEL.findall(match.group(2)))
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' `histogram_quantile` over cumulative (upper bound, count) pairs."""
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    raise AssertionError("rank past the last bucket")


@contextlib.asynccontextmanager
async def metrics_source(kubeconfig: Path) -> AsyncIterator[MetricsSource]:
    """The source in this process, listing the cluster every 50 ms."""
    source = MetricsSource(cluster_address(kubeconfig), poll_seconds=0.05)
    await source.start()
    try:
        yield source
    finally:
        await source.stop()


async def scrape(http: aiohttp.ClientSession, source: MetricsSource) -> str:
    async with http.get(f"{source.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.text()


async def until(check: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """`check()`'s first truthy answer, polled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (found := await check()):
        assert loop.time() < deadline, "not within the time"
        await asyncio.sleep(0.05)
    return found


async def create(
    http: aiohttp.ClientSession, sandbox: SandboxThread, name: str, **template: JsonDict
) -> None:
    """A two-replica Deployment, its pod template's metadata and spec merged with `template`."""
    body = deployment(name, "1.0.0", NAMESPACE)
    for key, value in template.items():
        body["spec"]["template"][key].update(value)
    url = f"{sandbox.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    async with http.post(url, json=body) as answer:
        assert answer.status == 201, await answer.text()


async def test_hostile_annotations_serve_the_defaults(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    hostile = {ERROR_RATIO_ANNOTATION: "NaN", P99_ANNOTATION: "1e999"}
    async with aiohttp.ClientSession() as http, metrics_source(kubeconfig) as source:
        await create(http, sandbox, "hostile", metadata={"annotations": hostile})

        async def pods() -> dict[str, list[Sample]]:
            """Each pod's samples, once both pods have served."""
            by_pod: dict[str, list[Sample]] = {}
            for sample in parse(await scrape(http, source)):
                if sample[1]["deployment"] == "hostile":
                    by_pod.setdefault(sample[1]["pod"], []).append(sample)
            served = all(value > 0 for samples in by_pod.values() for *_, value in samples)
            return by_pod if len(by_pod) == 2 and served else {}

        for samples in (await until(pods)).values():
            requests = {
                labels["code"]: value
                for name, labels, value in samples
                if name == "http_requests_total"
            }
            assert requests["500"] / (requests["200"] + requests["500"]) == pytest.approx(
                DEFAULT_ERROR_RATIO
            )
            buckets = [
                (math.inf if labels["le"] == "+Inf" else float(labels["le"]), value)
                for name, labels, value in samples
                if name == "http_request_duration_seconds_bucket"
            ]
            assert histogram_quantile(0.99, buckets) == pytest.approx(DEFAULT_P99_SECONDS)
            count = next(v for n, _, v in samples if n == "http_request_duration_seconds_count")
            assert count == pytest.approx(requests["200"] + requests["500"])


async def test_only_ready_pods_of_deployments_serve(sandbox: SandboxThread, tmp_path: Path) -> None:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    broken = {"containers": [{"name": "app", "image": "example/broken:1.0.0-broken"}]}
    async with aiohttp.ClientSession() as http, metrics_source(kubeconfig) as source:
        await create(http, sandbox, "crashing", spec=broken)

        async def crashing_pods() -> bool:  # created, never Ready
            url = f"{sandbox.url}/api/v1/namespaces/{NAMESPACE}/pods"
            async with http.get(url) as answer:
                items = (await answer.json())["items"]
            return len([p for p in items if p["metadata"]["name"].startswith("crashing-")]) == 2

        await until(crashing_pods)
        await create(http, sandbox, "healthy")

        async def healthy_served() -> str:
            text = await scrape(http, source)
            return text if 'deployment="healthy"' in text else ""

        # One listing held both: the crashing pods (made first) and the Ready healthy ones.
        text = await until(healthy_served)
        deployments = {labels["deployment"] for _, labels, _ in parse(text)}
        assert deployments == {"healthy"}
        async with http.get(f"{source.url}/-/ready") as response:
            assert response.status == 200


# -- read back by the real Prometheus ----------------------------------------------------------


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)


@contextlib.asynccontextmanager
async def metrics_process(kubeconfig: Path, workdir: Path) -> AsyncIterator[str]:
    """`python -m rollback_sandbox.metrics` as the demo starts it; yields `host:port`."""
    port_file = workdir / "metrics.port"
    log = workdir / "metrics.log"
    argv = [
        sys.executable, "-m", "rollback_sandbox.metrics", "--kubeconfig", str(kubeconfig),
        "--port", "0", "--port-out", str(port_file),
    ]  # fmt: skip
    process = await asyncio.to_thread(spawn, argv, log)
    try:

        async def port() -> int:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(OSError, ValueError):
                return int(port_file.read_text())
            return 0

        yield f"127.0.0.1:{await until(port)}"
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 10)
    assert process.returncode == 0, log.read_text()


def preset(template: str, pod_template_hash: str) -> str:
    return render_query(
        template,
        namespace=NAMESPACE,
        deployment="web",
        pod_template_hash=pod_template_hash,
        window_seconds=WINDOW,
    )


async def reads(prometheus: Prometheus, query: str, expected: float, rel: float = 1e-6) -> None:
    def close(result: Any) -> bool:
        return len(result) == 1 and float(result[0]["value"][1]) == pytest.approx(expected, rel)

    await prometheus.wait_until(query, close, timeout=30)


@requires_prometheus
async def test_the_preset_queries_read_back_what_the_template_says(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig")
    async with (
        aiohttp.ClientSession() as http,
        metrics_process(kubeconfig, tmp_path) as target,
        running_prometheus(tmp_path / "prometheus", [target]) as prometheus,
    ):
        await deploy(http, sandbox, NAMESPACE, "web", "1.0.0")
        old, _ = await replicaset_of(http, sandbox, NAMESPACE, "web", "1.0.0")
        # The version as it was: the defaults, two pods at 20 requests a second each.
        await reads(prometheus, preset(ERROR_RATIO_QUERY, old), DEFAULT_ERROR_RATIO)
        await reads(prometheus, preset(P99_LATENCY_QUERY, old), DEFAULT_P99_SECONDS)
        await reads(prometheus, preset(REQUEST_RATE, old), 2 * DEFAULT_RPS, rel=0.1)

        # A bad version goes out: its template says 30 % errors and a p99 of 0.8 s.
        template = deployment("web", "1.1.0", NAMESPACE)["spec"]["template"]
        template["metadata"]["annotations"] = {ERROR_RATIO_ANNOTATION: "0.3", P99_ANNOTATION: "0.8"}
        url = f"{sandbox.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web"
        headers = {"Content-Type": "application/strategic-merge-patch+json"}
        async with http.patch(
            url, json={"spec": {"template": template}}, headers=headers
        ) as answer:
            assert answer.status == 200, await answer.text()
        new, _ = await replicaset_of(http, sandbox, NAMESPACE, "web", "1.1.0")
        assert new != old

        await reads(prometheus, preset(ERROR_RATIO_QUERY, new), 0.3)
        await reads(prometheus, preset(P99_LATENCY_QUERY, new), 0.8)
        # Every series carries the labels the presets and a Kubernetes discovery give.
        series = await prometheus.query(f'http_requests_total{{pod_template_hash="{new}"}}')
        assert {tuple(sorted(s["metric"])) for s in series} == {
            ("__name__", "code", "deployment", "instance", "job", "namespace", "pod",
             "pod_template_hash"),
        }  # fmt: skip
        assert {s["metric"]["code"] for s in series} == {"200", "500"}
