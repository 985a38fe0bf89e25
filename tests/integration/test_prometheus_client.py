"""The bot's Prometheus client against the real Prometheus (Debian's `prometheus`, scraping the
harness' test exporter), and against small aiohttp servers of the test's own for what a real
Prometheus does not do: check a bearer token, serve TLS with a CA of ours, answer too much, answer
something else than its JSON, echo the token back, redirect.

Whatever goes wrong, the client raises one `PrometheusError` with one plain sentence, and the
bearer token appears in no exception and no log record.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import ssl
import subprocess
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.adapters.prometheus import PrometheusClient, PrometheusError
from bot.domain.analysis.config import PrometheusConfig
from bot.domain.retry import NO_WAIT
from bot.domain.times import utc_now
from tests.integration.prometheus import (
    Prometheus,
    exporting,
    requires_prometheus,
    running_prometheus,
)

NAMESPACE = "shop"
DEPLOYMENT = "checkout"
SETTLED = 60.0  # seconds a version has served before the test
TOKEN = "prom-token-7c1e0b"
HOST = "127.0.0.1"
OK = ',code="200"'
ERRORS = ',code=~"5.."'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def requests(version: str, extra: str = "") -> str:
    return f'http_requests_total{{pod_template_hash="{version}"{extra}}}'


def rps(version: str) -> str:
    return f"sum by (pod_template_hash) (rate({requests(version)}[5s]))"


def error_ratio(version: str) -> str:
    return f"sum(rate({requests(version, ERRORS)}[5s])) / sum(rate({requests(version)}[5s]))"


async def samples_span(prometheus: Prometheus, version: str, seconds: int) -> None:
    """Wait until every pod of `version` has a sample each second over the last `seconds`, so a
    rate() at any instant in there reads a full window, not an extrapolated partial one."""
    await prometheus.wait_for_samples(
        f"min(count_over_time({requests(version, OK)}[{seconds}s])) >= {seconds}",
        timeout=30.0,
    )


def assert_no_token(caplog: pytest.LogCaptureFixture, *errors: BaseException) -> None:
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in caplog.text
    for error in errors:
        assert TOKEN not in "".join(traceback.format_exception(error))
        assert TOKEN not in repr(error.args)
        # Raised outside any except block: no aiohttp error (with its request) hangs off it.
        assert error.__cause__ is None
        assert error.__context__ is None


# --- against the real Prometheus ------------------------------------------------------------


@requires_prometheus
async def test_an_instant_query_reads_back_the_rate_the_exporter_serves(tmp_path: Path) -> None:
    async with exporting() as exporter:
        pods = exporter.set_version(
            "aaa", namespace=NAMESPACE, deployment=DEPLOYMENT, pods=2, rps=50, served_for=SETTLED
        )
        async with (
            running_prometheus(tmp_path, [exporter.target]) as prometheus,
            PrometheusClient(prometheus.url) as client,
        ):
            await samples_span(prometheus, "aaa", 5)
            samples = await client.query(rps("aaa"))
            assert [dict(sample.labels) for sample in samples] == [{"pod_template_hash": "aaa"}]
            assert samples[0].value == pytest.approx(50, rel=0.03)
            assert abs(samples[0].at - utc_now()) < timedelta(seconds=5)

            # Each pod's series with its labels kept as they are: 2 pods × 2 codes.
            series = await client.query(requests("aaa"))
            assert len(series) == 4
            assert {sample.labels["pod"] for sample in series} == set(pods)
            assert {sample.labels["namespace"] for sample in series} == {NAMESPACE}

            # `at` asks about another instant: before Prometheus started, nothing was there.
            assert await client.query(requests("aaa"), at=utc_now() - timedelta(hours=1)) == []
            # A scalar is one sample without labels.
            (scalar,) = await client.query("scalar(vector(2.5))")
            assert (dict(scalar.labels), scalar.value) == ({}, 2.5)


@requires_prometheus
async def test_a_range_query_gives_a_point_every_step_across_the_window(tmp_path: Path) -> None:
    async with exporting() as exporter:
        exporter.set_version(
            "aaa", namespace=NAMESPACE, deployment=DEPLOYMENT, pods=2, rps=50, served_for=SETTLED
        )
        exporter.set_version(
            "bbb", namespace=NAMESPACE, deployment=DEPLOYMENT, pods=1, rps=20, served_for=SETTLED
        )
        async with (
            running_prometheus(tmp_path, [exporter.target]) as prometheus,
            PrometheusClient(prometheus.url) as client,
        ):
            # Samples over the last 9 s: each instant of the last 4 s has its full 5 s window.
            await samples_span(prometheus, "aaa", 9)
            await samples_span(prometheus, "bbb", 9)
            end = utc_now()
            start = end - timedelta(seconds=4)
            series = await client.query_range(
                'sum by (pod_template_hash) (rate(http_requests_total{code="200"}[5s]))',
                start,
                end,
                1.0,
            )
            by_version = {s.labels["pod_template_hash"]: s.points for s in series}
            assert set(by_version) == {"aaa", "bbb"}
            for version, expected in (("aaa", 50), ("bbb", 20)):
                points = by_version[version]
                assert len(points) == 5  # start, start + 1 s, …, end
                assert abs((points[0].at - start).total_seconds()) < 0.002
                steps = {
                    round((b.at - a.at).total_seconds(), 3) for a, b in itertools.pairwise(points)
                }
                assert steps == {1.0}
                assert [p.value for p in points] == [pytest.approx(expected, rel=0.05)] * 5


@requires_prometheus
async def test_nan_and_infinities_come_back_as_floats(tmp_path: Path) -> None:
    async with exporting() as exporter:
        # A version serving nothing: its error ratio is 0 errors / 0 requests.
        exporter.set_version(
            "idle", namespace=NAMESPACE, deployment=DEPLOYMENT, pods=1, rps=0, served_for=SETTLED
        )
        async with (
            running_prometheus(tmp_path, [exporter.target]) as prometheus,
            PrometheusClient(prometheus.url) as client,
        ):
            await samples_span(prometheus, "idle", 3)
            (ratio,) = await client.query(error_ratio("idle"))
            assert math.isnan(ratio.value)
            (series,) = await client.query_range(
                error_ratio("idle"), utc_now() - timedelta(seconds=1), utc_now(), 1.0
            )
            assert series.points and all(math.isnan(p.value) for p in series.points)

            for promql, check in (
                ("0/0", math.isnan),
                ("1/0", lambda v: v == math.inf),
                ("-1/0", lambda v: v == -math.inf),
            ):
                (sample,) = await client.query(promql)
                assert check(sample.value), (promql, sample.value)


@requires_prometheus
async def test_bad_promql_gives_prometheus_own_message(tmp_path: Path) -> None:
    async with (
        exporting() as exporter,
        running_prometheus(tmp_path, [exporter.target]) as prometheus,
        PrometheusClient(prometheus.url) as client,
    ):
        with pytest.raises(PrometheusError) as caught:
            await client.query("sum(rate(http_requests_total[5s])")
        message = str(caught.value)
        assert message.startswith(f"Prometheus at {prometheus.url} answered 400 Bad Request")
        assert "(bad_data)" in message and "parse error" in message
        assert "\n" not in message
        assert not caught.value.transient

        with pytest.raises(PrometheusError, match=r"400 Bad Request \(bad_data\)"):
            await client.query_range("rate(", utc_now() - timedelta(minutes=1), utc_now(), 15)

        # Valid PromQL, but a range vector is no value to compare: said as such.
        with pytest.raises(PrometheusError, match="range vector"):
            await client.query("http_requests_total[5s]")

        # A timeout of a fraction of a second is one Prometheus accepts too.
        async with PrometheusClient(prometheus.url, timeout=2.5) as fractional:
            assert [s.value for s in await fractional.query("vector(1)")] == [1.0]


@requires_prometheus
async def test_a_stopped_prometheus_is_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        exporting() as exporter,
        running_prometheus(tmp_path, [exporter.target]) as prometheus,
        PrometheusClient(prometheus.url) as client,
    ):
        assert [s.value for s in await client.query("vector(1)")] == [1.0]
        await prometheus.stop()
        with pytest.raises(PrometheusError) as caught:
            await client.query("vector(1)")
    assert str(caught.value) == (
        f"Prometheus at {prometheus.url} is unreachable: connection refused"
    )
    assert caught.value.transient
    # Tried twice: the first failure was retried, and said so.
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retried) == 1 and retried[0].levelno == logging.WARNING


# --- against a server of the test's own -------------------------------------------------------


@dataclass
class Seen:
    """What the test server received: each request's method, path, headers and form."""

    requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str | None]:
        return [headers.get("Authorization") for _, _, headers, _ in self.requests]


@contextlib.asynccontextmanager
async def serving(
    handler: Handler, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Seen]]:
    """Serve `handler` for every path on 127.0.0.1 (a free port), over TLS with `tls`."""
    seen = Seen()

    async def recording(request: web.Request) -> web.StreamResponse:
        form = {key: str(value) for key, value in (await request.post()).items()}
        seen.requests.append((request.method, request.path, dict(request.headers), form))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0, ssl_context=tls)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"{'https' if tls else 'http'}://{host}:{port}", seen
    finally:
        await runner.cleanup()


def vector(*values: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {**(labels or {}), "i": str(i)}, "value": [1_700_000_000.5, value]}
                for i, value in enumerate(values)
            ],
        },
    }


def canned(body: Any, status: int = 200) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status)

    return handler


def token_checking(expected: Callable[[], str]) -> Handler:
    """Prometheus behind a proxy that wants the bearer token (Prometheus itself checks none)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {expected()}":
            return web.json_response(
                {"status": "error", "errorType": "unauthorized", "error": "bad token"}, status=401
            )
        return web.json_response(vector("42"))

    return handler


async def test_the_bearer_token_is_sent_and_read_again_when_it_rotates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(f"{TOKEN}\n")  # files often end with a newline: not part of the token
    current = {"token": TOKEN}
    async with (
        serving(token_checking(lambda: current["token"])) as (url, seen),
        PrometheusClient(url, bearer_token_file=token_file) as client,
    ):
        (sample,) = await client.query('up{job="x"}')
        assert sample.value == 42.0 and sample.labels["i"] == "0"
        method, path, _headers, form = seen.requests[0]
        # POSTed as a form, with Prometheus told the client's timeout.
        assert (method, path) == ("POST", "/api/v1/query")
        assert form == {"query": 'up{job="x"}', "timeout": "10"}

        # Rotated on disk (as the kubelet swaps a Secret's files): used at the next query.
        rotated = "prom-token-rotated-99"
        replacement = tmp_path / "token.new"
        replacement.write_text(rotated)
        replacement.replace(token_file)
        current["token"] = rotated
        await client.query("vector(1)")
        assert seen.authorizations == [f"Bearer {TOKEN}", f"Bearer {rotated}"]

        # The server now wants another token than the file's.
        current["token"] = "something-else"
        with pytest.raises(PrometheusError) as refused:
            await client.query("vector(1)")
    assert str(refused.value) == (
        f"Prometheus at {url} refused the bearer token from {token_file} (401 Unauthorized)"
    )
    assert rotated not in str(refused.value)
    assert_no_token(caplog, refused.value)


async def test_without_a_token_file_no_authorization_is_sent(tmp_path: Path) -> None:
    async with (
        serving(token_checking(lambda: TOKEN)) as (url, seen),
        PrometheusClient(url) as client,
    ):
        with pytest.raises(PrometheusError, match=r"asks for credentials \(401 Unauthorized\)"):
            await client.query("vector(1)")
    assert seen.authorizations == [None]


async def test_a_server_echoing_the_token_has_it_redacted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)

    async def echoing(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        return web.json_response(
            {
                "status": "error",
                "errorType": "bad_data",
                "error": f"cannot parse query\nsent with {header}\u202e and more",
                "warnings": [f"also {header}"],
            },
            status=400,
        )

    async with (
        serving(echoing) as (url, _seen),
        PrometheusClient(url, bearer_token_file=token_file) as client,
    ):
        with pytest.raises(PrometheusError) as caught:
            await client.query("vector(1)")
    assert str(caught.value) == (
        f"Prometheus at {url} answered 400 Bad Request (bad_data): cannot parse query sent with "
        "Bearer [redacted] and more"
    )
    assert_no_token(caplog, caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read the bearer token file {path}: No such file or directory"),
        ("\n", "the bearer token file {path} is empty"),
        (f"{TOKEN}\nX-Injected: 1", "the bearer token file {path} holds characters"),
    ],
)
async def test_an_unusable_token_file_is_said_without_its_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str | None, expected: str
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    async with (
        serving(canned(vector("1"))) as (url, seen),
        PrometheusClient(url, bearer_token_file=token_file) as client,
    ):
        with pytest.raises(PrometheusError) as caught:
            await client.query("vector(1)")
    assert str(caught.value).startswith(expected.format(path=token_file))
    assert seen.requests == []  # nothing was sent without a usable token
    assert_no_token(caplog, caught.value)


async def test_an_oversized_body_is_refused_while_reading(tmp_path: Path) -> None:
    async def streaming(request: web.Request) -> web.StreamResponse:
        # Chunked, no Content-Length: only counting what arrives can stop it.
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b" " * (1024 * 1024)
        for _ in range(9):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def declared(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * (9 * 1024 * 1024), content_type="application/json")

    for handler in (streaming, declared):
        async with serving(handler) as (url, _seen), PrometheusClient(url) as client:
            with pytest.raises(PrometheusError) as caught:
                await client.query("vector(1)")
        assert str(caught.value) == (
            f"Prometheus at {url} answered more than 8 MiB: narrow the query"
        )


async def test_too_many_series_or_points_are_refused(tmp_path: Path) -> None:
    async with (
        serving(canned(vector("1", "2", "3", "4"))) as (url, _seen),
        PrometheusClient(url, max_series=3) as client,
    ):
        with pytest.raises(PrometheusError, match=r"answered too much: .* more than 3 series"):
            await client.query("up")

    matrix = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": {"i": str(i)}, "values": [[1_700_000_000 + t, "1"] for t in range(4)]}
                for i in range(3)
            ],
        },
    }
    async with (
        serving(canned(matrix)) as (url, _seen),
        PrometheusClient(url, max_points=10) as client,
    ):
        end = utc_now()
        with pytest.raises(PrometheusError, match="more than 10 points"):
            await client.query_range("up", end - timedelta(seconds=3), end, 1)
    async with serving(canned(matrix)) as (url, _seen), PrometheusClient(url) as client:
        series = await client.query_range("up", end - timedelta(seconds=3), end, 1)
    assert [len(s.points) for s in series] == [4, 4, 4]

    # Large but within bounds (decoded and parsed in a worker thread): all of it.
    big = vector(*["0.5"] * 3_000, labels={"pad": "x" * 100})
    async with serving(canned(big)) as (url, _seen), PrometheusClient(url) as client:
        samples = await client.query("up")
    assert len(samples) == 3_000 and {s.value for s in samples} == {0.5}


async def test_an_answer_that_is_not_prometheus_json(tmp_path: Path) -> None:
    async def html(_request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>Sign in</html>", content_type="text/html")

    async def bad_gateway(_request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>502</html>", status=502, content_type="text/html")

    nested = canned(json.loads("[" * 50 + "]" * 50))
    wrong_shape = canned({"status": "success", "data": {"resultType": "vector", "result": "x"}})
    bad_value = canned(vector("1_000"))
    cases: list[tuple[Handler, str, int]] = [
        (html, "answered 200 OK with something that is not Prometheus' JSON", 1),
        (nested, "answered 200 OK with something that is not Prometheus' JSON", 1),
        (wrong_shape, "answered its result is not a list", 1),
        (bad_value, "answered a sample's value is not a number", 1),
        # A proxy's 502 may pass: tried twice before saying so.
        (bad_gateway, "answered 502 Bad Gateway with something that is not Prometheus' JSON", 2),
    ]
    for handler, expected, tries in cases:
        async with (
            serving(handler) as (url, seen),
            PrometheusClient(url, backoff=NO_WAIT) as client,
        ):
            with pytest.raises(PrometheusError) as caught:
                await client.query("vector(1)")
        assert str(caught.value) == f"Prometheus at {url} {expected}"
        assert len(seen.requests) == tries


async def test_a_503_is_tried_once_more(tmp_path: Path) -> None:
    answers = [
        web.json_response(
            {"status": "error", "errorType": "unavailable", "error": "starting"}, status=503
        ),
        web.json_response(vector("7")),
    ]

    async def flaky(_request: web.Request) -> web.StreamResponse:
        return answers.pop(0)

    async with serving(flaky) as (url, seen), PrometheusClient(url) as client:
        assert [s.value for s in await client.query("vector(7)")] == [7.0]
    assert len(seen.requests) == 2


async def test_a_slow_answer_times_out(tmp_path: Path) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.json_response(vector("1"))

    async with serving(slow) as (url, seen), PrometheusClient(url, timeout=0.5) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(PrometheusError) as caught:
            await client.query("vector(1)")
        assert loop.time() - started < 2.0
    assert str(caught.value) == f"Prometheus at {url} did not answer within 0.5s"
    assert caught.value.transient
    assert len(seen.requests) == 1  # a timeout has used the time up: not tried again


async def test_a_redirect_is_not_followed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)

    async def moved(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://elsewhere.invalid/api/v1/query")

    async with (
        serving(moved) as (url, seen),
        PrometheusClient(url, bearer_token_file=token_file) as client,
    ):
        with pytest.raises(PrometheusError) as caught:
            await client.query("vector(1)")
    assert str(caught.value) == (
        f"Prometheus at {url} answered 302 Found, a redirect to "
        "http://elsewhere.invalid/api/v1/query: give the URL it redirects to"
    )
    assert len(seen.requests) == 1


async def test_an_unresolvable_host_is_unreachable() -> None:
    async with PrometheusClient("http://prometheus.invalid:9", backoff=NO_WAIT) as client:
        with pytest.raises(PrometheusError) as caught:
            await client.query("vector(1)")
    assert str(caught.value) == (
        "Prometheus at http://prometheus.invalid:9 is unreachable: its host name does not resolve"
    )


async def test_a_shared_session_is_used_and_left_open(tmp_path: Path) -> None:
    async with serving(canned(vector("3"))) as (url, seen), aiohttp.ClientSession() as session:
        client = PrometheusClient.from_config(PrometheusConfig(), url, session=session)
        assert [s.value for s in await client.query("vector(3)")] == [3.0]
        await client.close()
        assert not session.closed

        own = PrometheusClient(url)
        await own.query("vector(3)")
        await own.close()
        # Closed, it opens a new session at the next query rather than failing.
        await own.query("vector(3)")
        await own.close()
    assert len(seen.requests) == 3


# --- TLS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    cert: Path  # self-signed for 127.0.0.1: its own CA
    server: ssl.SSLContext


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    """A self-signed certificate for 127.0.0.1 made by the openssl CLI (the venv has no
    `cryptography`), and the server's TLS context with it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=rollback-bot test Prometheus",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return Tls(cert, server)


async def test_tls_is_verified_against_the_ca_file(tls: Tls, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    async with serving(token_checking(lambda: TOKEN), tls=tls.server) as (url, seen):
        assert url.startswith("https://")
        async with PrometheusClient(
            url, bearer_token_file=token_file, ca_file=tls.cert
        ) as verified:
            assert [s.value for s in await verified.query("vector(1)")] == [42.0]

        # The system's CAs do not know ours: refused before any request is sent.
        async with PrometheusClient(url, bearer_token_file=token_file) as default:
            with pytest.raises(PrometheusError) as caught:
                await default.query("vector(1)")
        assert str(caught.value).startswith(
            f"Prometheus at {url} is unreachable: its TLS certificate is not trusted ("
        )
        assert str(caught.value).endswith("): give its CA as ca_file")
        assert not caught.value.transient

        async with PrometheusClient(
            url, bearer_token_file=token_file, insecure_skip_verify=True
        ) as insecure:
            assert [s.value for s in await insecure.query("vector(1)")] == [42.0]
    assert seen.authorizations == [f"Bearer {TOKEN}", f"Bearer {TOKEN}"]


async def test_an_unusable_ca_file_is_said(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("not a certificate")
    for ca_file, reason in (
        (tmp_path / "absent.crt", "No such file or directory"),
        (not_pem, "no usable PEM certificate in it"),
    ):
        async with PrometheusClient("https://127.0.0.1:9", ca_file=ca_file) as client:
            with pytest.raises(PrometheusError) as caught:
                await client.query("vector(1)")
        assert str(caught.value) == f"cannot read the CA file {ca_file}: {reason}"
