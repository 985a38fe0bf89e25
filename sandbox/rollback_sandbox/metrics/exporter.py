"""What the simulated cluster's pods serve, made up from their annotations and the clock, served
in Prometheus' text exposition format (0.0.4) on `/metrics`.

How:
- Every second (`poll_seconds`) the pods are listed over the cluster's API (`GET /api/v1/pods`,
  the server and token of the kubeconfig's current context). A pod counts while it is Running
  and Ready, not being deleted, and controlled by a ReplicaSet whose name is
  `<deployment>-<pod-template-hash>` (a Deployment's): its series carry `namespace`,
  `deployment`, `pod` and `pod_template_hash` as the usual `kubernetes_sd_configs` relabelling
  gives them (`bot.domain.analysis.presets`).
- Each such pod serves `rps` requests a second (20 by default), whatever its version: its
  `http_requests_total{code="200"|"500"}` counters and `http_request_duration_seconds`
  histogram advance by what it served since the previous reading, computed from the clock
  at every scrape and every listing. So `rate()` reads back the rate, the 5xx share the pod's
  error ratio, and `histogram_quantile(0.99, …)` its p99, exactly (the latency distribution is
  piecewise uniform, linear across the bucket holding the 99th percentile, as
  `histogram_quantile` interpolates).
- A pod's behaviour is read once, from its own annotations (copied from the pod template when
  the ReplicaSet made it): `sandbox.rollback-bot.io/error-ratio` in [0, 1] (default 0.005) and
  `sandbox.rollback-bot.io/p99-seconds` in (0.01, 5] (default 0.12, the buckets' range). A
  value that is not such a number (text, NaN, infinity, out of range, longer than 32
  characters) is ignored: the default applies.

Limits: no real traffic and no randomness (the figures are the rates set, with no noise and no
spikes); one rate for every pod; counters start at 0 when this process first sees a pod Ready
(a restart of this process resets them all, as restarted containers would); a pod that stops
being Ready or is deleted loses its series at the next listing; the cluster is listed whole
every second (fine for the demo's handful of pods, not for thousands); the kubeconfig's server
is reached over plain HTTP(S) with its token only (the simulated cluster checks none), no
client certificates or exec plugins. When the cluster cannot be listed the last pods known
keep serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

JsonDict = dict[str, Any]

ERROR_RATIO_ANNOTATION = "sandbox.rollback-bot.io/error-ratio"
P99_ANNOTATION = "sandbox.rollback-bot.io/p99-seconds"
DEFAULT_ERROR_RATIO = 0.005
DEFAULT_P99_SECONDS = 0.12
DEFAULT_RPS = 20.0
MAX_RPS = 10_000.0
POLL_SECONDS = 1.0
LIST_TIMEOUT_SECONDS = 5.0
# An annotation longer than this is no number anyone meant: ignored before it is parsed.
MAX_ANNOTATION_CHARS = 32
# Latency buckets (seconds), 10 ms to 5 s: a p99 is accepted inside (first, last].
BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
)  # fmt: skip
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# -- a pod's behaviour -------------------------------------------------------------------------


# A plain decimal number, as people write one: no sign, no NaN or infinity, no `_` or digits of
# other scripts (which Python's float() would take).
_DECIMAL = re.compile(r"\s*(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*", re.ASCII)


def _number(value: object, low: float, high: float, *, above_low: bool) -> float | None:
    """`value` (an annotation: text) as a number in [low, high] (`above_low`: (low, high]);
    None when it is anything else."""
    if not isinstance(value, str) or len(value) > MAX_ANNOTATION_CHARS:
        return None
    if _DECIMAL.fullmatch(value) is None:
        return None
    number = float(value)
    if not math.isfinite(number) or number > high or number < low:
        return None
    if above_low and number == low:
        return None
    return number


@dataclass(frozen=True)
class Latency:
    """Request latencies as a piecewise-uniform distribution: its CDF is linear between `knots`
    (seconds, share of requests at most that long)."""

    knots: tuple[tuple[float, float], ...]

    @classmethod
    def with_p99(cls, p99: float) -> Latency:
        if not BUCKETS[0] < p99 <= BUCKETS[-1]:
            raise ValueError(f"p99 {p99}s is outside the buckets ({BUCKETS[0]}s, {BUCKETS[-1]}s]")
        lo = max(b for b in BUCKETS if b < p99)
        hi = min(b for b in BUCKETS if b >= p99)
        below, above = p99 - lo, hi - p99
        # Linear across (lo, hi], where the 99th percentile lies: at least 90 % of the requests
        # under `lo`, at least 0.5 % beyond `hi`.
        slope = 0.09 / below
        if above > 0:
            slope = min(slope, 0.005 / above)
        return cls(
            ((0.0, 0.0), (lo, 0.99 - slope * below), (hi, 0.99 + slope * above), (2 * hi, 1.0))
        )

    def cdf(self, seconds: float) -> float:
        for (x0, f0), (x1, f1) in zip(self.knots, self.knots[1:], strict=False):
            if seconds <= x1:
                return f0 + (f1 - f0) * (seconds - x0) / (x1 - x0) if seconds > x0 else f0
        return 1.0

    @property
    def mean(self) -> float:
        return sum(
            (f1 - f0) * (x0 + x1) / 2
            for (x0, f0), (x1, f1) in zip(self.knots, self.knots[1:], strict=False)
        )


@dataclass(frozen=True)
class Behaviour:
    """How a pod answers: the share of its requests that fail (500) and its p99 latency."""

    error_ratio: float = DEFAULT_ERROR_RATIO
    p99_seconds: float = DEFAULT_P99_SECONDS

    @classmethod
    def of(cls, annotations: object) -> Behaviour:
        """From a pod's annotations; each value that is not a number in range is ignored."""
        found = annotations if isinstance(annotations, Mapping) else {}
        error_ratio = _number(found.get(ERROR_RATIO_ANNOTATION), 0.0, 1.0, above_low=False)
        p99 = _number(found.get(P99_ANNOTATION), BUCKETS[0], BUCKETS[-1], above_low=True)
        return cls(
            DEFAULT_ERROR_RATIO if error_ratio is None else error_ratio,
            DEFAULT_P99_SECONDS if p99 is None else p99,
        )


# -- the pods that serve -----------------------------------------------------------------------


@dataclass(frozen=True)
class ServingPod:
    """A Ready pod of a Deployment, as listed."""

    uid: str
    namespace: str
    deployment: str
    name: str
    pod_template_hash: str
    behaviour: Behaviour


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status")
    if not isinstance(status, Mapping) or status.get("phase") != "Running":
        return False
    conditions = status.get("conditions")
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


def _deployment_of(meta: Mapping[str, Any], pod_template_hash: str) -> str | None:
    """The Deployment whose ReplicaSet controls the pod: the ReplicaSet's name without its
    `-<pod-template-hash>`."""
    owners = meta.get("ownerReferences")
    if not isinstance(owners, list):
        return None
    for owner in owners:
        if not isinstance(owner, Mapping) or not owner.get("controller"):
            continue
        name = owner.get("name")
        suffix = f"-{pod_template_hash}"
        if owner.get("kind") == "ReplicaSet" and isinstance(name, str) and name.endswith(suffix):
            return name.removesuffix(suffix) or None
    return None


def serving_pods(pod_list: object) -> list[ServingPod]:
    """The Ready pods of Deployments in a PodList; anything malformed is skipped."""
    items = pod_list.get("items") if isinstance(pod_list, Mapping) else None
    found: list[ServingPod] = []
    for pod in items if isinstance(items, list) else []:
        meta = pod.get("metadata") if isinstance(pod, Mapping) else None
        if not isinstance(meta, Mapping) or meta.get("deletionTimestamp") or not _ready(pod):
            continue
        labels = meta.get("labels")
        hash_ = labels.get("pod-template-hash") if isinstance(labels, Mapping) else None
        uid, namespace, name = meta.get("uid"), meta.get("namespace"), meta.get("name")
        if not all(isinstance(v, str) and v for v in (hash_, uid, namespace, name)):
            continue
        assert isinstance(hash_, str)  # for mypy: checked just above
        deployment = _deployment_of(meta, hash_)
        if deployment is None:
            continue
        found.append(
            ServingPod(
                str(uid),
                str(namespace),
                deployment,
                str(name),
                hash_,
                Behaviour.of(meta.get("annotations")),
            )
        )
    return found


# -- the counters ------------------------------------------------------------------------------


@dataclass
class _Series:
    pod: ServingPod
    latency: Latency
    ok: float = 0.0
    errors: float = 0.0
    # Cumulative counts per bound of BUCKETS, then +Inf (= every request).
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))
    latency_sum: float = 0.0

    def serve(self, requests: float) -> None:
        ratio = self.pod.behaviour.error_ratio
        self.errors += requests * ratio
        self.ok += requests * (1 - ratio)
        for i, bound in enumerate(BUCKETS):
            self.buckets[i] += requests * self.latency.cdf(bound)
        self.buckets[-1] += requests
        self.latency_sum += requests * self.latency.mean


class Traffic:
    """Every serving pod's counters, advanced by `rps` × the time since the previous reading."""

    def __init__(self, rps: float = DEFAULT_RPS, clock: Callable[[], float] = time.monotonic):
        if not 0 < rps <= MAX_RPS:
            raise ValueError(f"rps must be in (0, {MAX_RPS:g}], not {rps}")
        self.rps = rps
        self._clock = clock
        self._series: dict[str, _Series] = {}
        self._last = clock()

    def advance(self) -> None:
        now = self._clock()
        requests = self.rps * max(0.0, now - self._last)
        self._last = now
        for series in self._series.values():
            series.serve(requests)

    def update(self, pods: Iterable[ServingPod]) -> None:
        """The pods serving from now on: new ones start at 0, gone ones lose their series."""
        self.advance()
        listed = {pod.uid: pod for pod in pods}
        for uid in [uid for uid in self._series if uid not in listed]:
            del self._series[uid]
        for uid, pod in listed.items():
            if uid not in self._series:
                self._series[uid] = _Series(pod, Latency.with_p99(pod.behaviour.p99_seconds))

    @property
    def pods(self) -> list[ServingPod]:
        return [series.pod for series in self._series.values()]

    def exposition(self) -> str:
        """The counters as they stand now, in the text format."""
        self.advance()
        return _render(self._series.values())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _value(number: float) -> str:
    return repr(float(number))


def _render(all_series: Iterable[_Series]) -> str:
    requests = [
        "# HELP http_requests_total Requests served, by status code.",
        "# TYPE http_requests_total counter",
    ]
    durations = [
        "# HELP http_request_duration_seconds Time to answer a request.",
        "# TYPE http_request_duration_seconds histogram",
    ]
    bounds = [_value(bound) for bound in BUCKETS] + ["+Inf"]
    for series in sorted(all_series, key=lambda s: (s.pod.namespace, s.pod.name)):
        pod = series.pod
        labels = [
            ("namespace", pod.namespace),
            ("deployment", pod.deployment),
            ("pod", pod.name),
            ("pod_template_hash", pod.pod_template_hash),
        ]
        for code, count in (("200", series.ok), ("500", series.errors)):
            requests.append(
                f"http_requests_total{_labels([*labels, ('code', code)])} {_value(count)}"
            )
        for bound, count in zip(bounds, series.buckets, strict=True):
            bucket = _labels([*labels, ("le", bound)])
            durations.append(f"http_request_duration_seconds_bucket{bucket} {_value(count)}")
        durations.append(
            f"http_request_duration_seconds_sum{_labels(labels)} {_value(series.latency_sum)}"
        )
        durations.append(
            f"http_request_duration_seconds_count{_labels(labels)} {_value(series.buckets[-1])}"
        )
    return "\n".join([*requests, *durations]) + "\n"


# -- the cluster and the HTTP server -----------------------------------------------------------


@dataclass(frozen=True)
class ClusterAddress:
    server: str
    token: str | None = None


def cluster_address(kubeconfig: Path) -> ClusterAddress:
    """The server and token of the kubeconfig's current context; ValueError if it has none."""
    config = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    if not isinstance(config, Mapping):
        raise ValueError(f"{kubeconfig} is not a kubeconfig")

    def named(key: str, name: object) -> Mapping[str, Any]:
        for entry in config.get(key) or []:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                inner = entry.get(key.removesuffix("s"))
                if isinstance(inner, Mapping):
                    return inner
        return {}

    context = named("contexts", config.get("current-context"))
    server = named("clusters", context.get("cluster")).get("server")
    if not isinstance(server, str) or not server.startswith(("http://", "https://")):
        raise ValueError(f"{kubeconfig}: its current context names no cluster server")
    token = named("users", context.get("user")).get("token")
    return ClusterAddress(server.rstrip("/"), token if isinstance(token, str) else None)


class MetricsSource:
    """Lists the cluster's pods every `poll_seconds` and serves their traffic on `/metrics`;
    `/-/ready` answers 200 once a listing succeeded."""

    def __init__(
        self,
        cluster: ClusterAddress,
        *,
        rps: float = DEFAULT_RPS,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.traffic = Traffic(rps, clock)
        self.poll_seconds = poll_seconds
        self.listed = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        headers = {"Accept": "application/json"}
        if self.cluster.token:
            headers["Authorization"] = f"Bearer {self.cluster.token}"
        self._session = aiohttp.ClientSession(
            headers=headers, timeout=aiohttp.ClientTimeout(total=LIST_TIMEOUT_SECONDS)
        )
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/-/ready", self._ready)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except BaseException:
            await self.stop()
            raise
        server = site._server
        self.port = (
            int(server.sockets[0].getsockname()[1]) if isinstance(server, asyncio.Server) else port
        )
        self._poller = asyncio.create_task(self._poll(), name="list the cluster's pods")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def list_once(self) -> None:
        assert self._session is not None, "start() first"
        async with self._session.get(f"{self.cluster.server}/api/v1/pods") as response:
            response.raise_for_status()
            body = await response.json(content_type=None)
        self.traffic.update(serving_pods(body))
        self.listed.set()

    async def _poll(self) -> None:
        failing = False
        while True:
            try:
                await self.list_once()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                if not failing:  # once per run of failures, not every second
                    print(
                        f"rollback-sandbox metrics: cannot list the pods at "
                        f"{self.cluster.server} ({exc!r}); the last ones known keep serving",
                        file=sys.stderr,
                        flush=True,
                    )
                failing = True
            else:
                failing = False
            await asyncio.sleep(self.poll_seconds)

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(
            body=self.traffic.exposition().encode(), headers={"Content-Type": CONTENT_TYPE}
        )

    async def _ready(self, _request: web.Request) -> web.Response:
        if self.listed.is_set():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="the cluster's pods not listed yet\n")
