"""The real Prometheus (Debian's prometheus) drives the harness: it scrapes the test exporter every
second, keeps its per-pod labels, and reads back through rate() and histogram_quantile() the
traffic each version was set to; a change shows within seconds, a restarted pod's counter reset
does not disturb rate(), stopped pods' series go, and a stopped Prometheus is a connection error.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.prometheus import (
    DEFAULT_PORT,
    Prometheus,
    exporting,
    quantile_bucket,
    requires_prometheus,
    running_prometheus,
)

pytestmark = requires_prometheus

NAMESPACE = "shop"
DEPLOYMENT = "checkout"
SETTLED = 60.0  # seconds a version has served before the test: its counters are well above 0
OK = ',code="200"'
ERRORS = ',code=~"5.."'


def requests(version: str, extra: str = "") -> str:
    return f'http_requests_total{{pod_template_hash="{version}"{extra}}}'


def rps(version: str) -> str:
    return f"sum(rate({requests(version)}[5s]))"


def error_ratio(version: str) -> str:
    return f"sum(rate({requests(version, ERRORS)}[5s])) / {rps(version)}"


def p99(version: str) -> str:
    buckets = f'http_request_duration_seconds_bucket{{pod_template_hash="{version}"}}'
    return f"histogram_quantile(0.99, sum by (le) (rate({buckets}[5s])))"


async def window_filled(prometheus: Prometheus, version: str) -> None:
    """Wait until every pod of `version` has samples across the whole 5 s window.

    Before that, rate() extrapolates from a partial window and reads low: not what is tested.
    """
    await prometheus.wait_for_samples(f"min(count_over_time({requests(version, OK)}[5s])) >= 5")


def close_to(expected: float, rel: float) -> Any:
    def check(result: Any) -> bool:
        return bool(result) and float(result[0]["value"][1]) == pytest.approx(expected, rel=rel)

    return check


async def test_rates_error_ratio_and_p99_read_back_as_set(tmp_path: Path) -> None:
    async with exporting() as exporter:
        aaa = exporter.set_version(
            "aaa",
            namespace=NAMESPACE,
            deployment=DEPLOYMENT,
            pods=2,
            rps=50,
            error_ratio=0.01,
            latency_p99=0.12,
            served_for=SETTLED,
        )
        exporter.set_version(
            "bbb",
            namespace=NAMESPACE,
            deployment=DEPLOYMENT,
            pods=1,
            rps=20,
            error_ratio=0.25,
            latency_p99=0.8,
            served_for=SETTLED,
        )
        async with running_prometheus(tmp_path, [exporter.target]) as prometheus:
            assert prometheus.port != DEFAULT_PORT
            first = await prometheus.wait_for_samples(requests("aaa", OK))
            # honor_labels kept the exporter's labels as they are
            assert {sample["metric"]["pod"] for sample in first} == set(aaa)
            assert {sample["metric"]["namespace"] for sample in first} == {NAMESPACE}
            assert {sample["metric"]["job"] for sample in first} == {"test-exporter"}

            await window_filled(prometheus, "aaa")
            await window_filled(prometheus, "bbb")
            assert await prometheus.value(rps("aaa")) == pytest.approx(50, rel=0.03)
            assert await prometheus.value(error_ratio("aaa")) == pytest.approx(0.01, rel=0.03)
            assert await prometheus.value(rps("bbb")) == pytest.approx(20, rel=0.03)
            assert await prometheus.value(error_ratio("bbb")) == pytest.approx(0.25, rel=0.03)
            for version, set_p99 in (("aaa", 0.12), ("bbb", 0.8)):
                read = await prometheus.value(p99(version))
                assert read is not None
                lower, upper = quantile_bucket(set_p99)
                assert lower < read <= upper
                assert read == pytest.approx(set_p99, rel=0.02)

            by_version = await prometheus.query(
                "sum by (pod_template_hash) (rate(http_requests_total[5s]))"
            )
            rates = {s["metric"]["pod_template_hash"]: float(s["value"][1]) for s in by_version}
            assert rates == {"aaa": pytest.approx(50, rel=0.03), "bbb": pytest.approx(20, rel=0.03)}


async def test_a_changed_error_ratio_shows_within_seconds(tmp_path: Path) -> None:
    async with exporting() as exporter:
        settings: dict[str, Any] = {
            "namespace": NAMESPACE,
            "deployment": DEPLOYMENT,
            "pods": 2,
            "rps": 40,
            "latency_p99": 0.12,
        }
        exporter.set_version("aaa", error_ratio=0.01, served_for=SETTLED, **settings)
        async with running_prometheus(tmp_path, [exporter.target]) as prometheus:
            await window_filled(prometheus, "aaa")
            assert await prometheus.value(error_ratio("aaa")) == pytest.approx(0.01, rel=0.03)

            loop = asyncio.get_running_loop()
            changed_at = loop.time()
            exporter.set_version("aaa", error_ratio=0.2, **settings)
            # The first scrape after the change already moves the 5 s rate well up...
            await prometheus.wait_until(f"{error_ratio('aaa')} > 0.05", bool, timeout=3.0)
            assert loop.time() - changed_at < 3.0
            # ...and once the window holds only the new traffic it reads the new ratio.
            await prometheus.wait_until(error_ratio("aaa"), close_to(0.2, 0.03), timeout=8.0)
            assert await prometheus.value(rps("aaa")) == pytest.approx(40, rel=0.03)


async def test_a_restart_is_a_counter_reset_and_stopped_pods_go(tmp_path: Path) -> None:
    async with exporting() as exporter:
        for version, pods in (("aaa", 2), ("bbb", 1)):
            exporter.set_version(
                version,
                namespace=NAMESPACE,
                deployment=DEPLOYMENT,
                pods=pods,
                rps=30,
                error_ratio=0.05,
                served_for=SETTLED,
            )
        async with running_prometheus(tmp_path, [exporter.target]) as prometheus:
            await window_filled(prometheus, "aaa")

            # Restarting just after a scrape: the requests the old counters held since are ~0,
            # so rate() across the reset must still read the whole traffic.
            await exporter.next_scrape()
            exporter.restart_pods("aaa")
            await prometheus.wait_for_samples(f"sum(resets({requests('aaa', OK)}[5s])) > 0")
            # The raw counters went down (a plain difference would be negative)...
            dropped = await prometheus.value(f"sum(delta({requests('aaa')}[5s]))")
            assert dropped is not None and dropped < 0
            # ...rate() adds back what was there before the reset.
            assert await prometheus.value(rps("aaa")) == pytest.approx(30, rel=0.05)
            assert await prometheus.value(error_ratio("aaa")) == pytest.approx(0.05, rel=0.05)

            assert await prometheus.query(requests("bbb"))
            exporter.stop_version("bbb")
            # The next scrape lacks them: Prometheus marks them stale and they go at once.
            await prometheus.wait_until(requests("bbb"), lambda result: result == [], timeout=5.0)
            assert len(await prometheus.query(requests("aaa"))) == 4  # 2 pods × 2 codes


async def test_a_stopped_prometheus_is_a_connection_error(tmp_path: Path) -> None:
    async with (
        exporting() as exporter,
        running_prometheus(tmp_path, [exporter.target]) as prometheus,
    ):
        assert await prometheus.value("vector(1)") == 1.0
        await prometheus.stop()
        assert prometheus.process.returncode is not None
        with pytest.raises(aiohttp.ClientConnectorError):
            await prometheus.query("vector(1)")
