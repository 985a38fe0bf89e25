"""The composition root: Settings in, a running bot out. No globals: everything is built here
and handed down (handlers get a `Deps`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.usecases.alerts.offers import AlertOffers
from bot.domain.alerts.mapping import BadPattern, compile_patterns
from bot.usecases.audit import AuditTrail, JsonLogSink, KubernetesEventSink
from bot.config.catalog import Catalog, ServiceRef
from bot.usecases.rollback.engine import RollbackEngine
from bot.adapters.kube.configmaps import (
    AlertMessageIndex,
    AlertMessageStore,
    service_account_namespace,
)
from bot.usecases.rollback.ports import Cluster
from bot.adapters.kube.clusters import ClusterRegistry
from bot.adapters.kube.deployments import KubernetesCluster
from bot.observability.metrics import CONTENT_TYPE as metrics_content_type
from bot.observability.metrics import Metrics
from bot.domain.errors import RollbackBotError
from bot.usecases.rollback.runner import RolloutRunner, replica_id
from bot.config.settings import Settings
from bot.adapters.slack.blocks import ServiceView
from bot.adapters.slack.directory import UserDirectory
from handlers import actions, alertmanager, commands, dedupe, events, views
from handlers.deps import Deps
from bot.usecases.rollback.views import service_view

log = logging.getLogger(__name__)

READY_CACHE_SECONDS = 10.0
SHUTDOWN_GRACE_SECONDS = 90.0


def settings_problems(settings: Settings) -> list[str]:
    """Everything missing or wrong for `serve`, at once, so one restart fixes them all."""
    problems = []
    if settings.slack_bot_token is None:
        problems.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        problems.append(
            "neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode) is set"
        )
    if (
        settings.slack_app_token is not None
        and not settings.slack_app_token.get_secret_value().startswith("xapp-")
    ):
        problems.append("SLACK_APP_TOKEN must be an app-level token (xapp-…)")
    try:
        compile_patterns(settings.alert_patterns)
    except BadPattern as exc:
        problems.append(f"ROLLBACK_BOT_ALERT_PATTERNS: {exc}")
    return problems


@dataclass
class Readiness:
    """`/readyz`: Slack auth works and every cluster in the catalog answers, cached briefly."""

    checks: dict[str, Callable[[], Awaitable[None]]]
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, dict[str, str]] | None = field(default=None, init=False)

    async def report(self) -> dict[str, str]:
        if self._cached is not None and self.clock() - self._cached[0] < READY_CACHE_SECONDS:
            return self._cached[1]
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                await asyncio.wait_for(check(), 5.0)
                results[name] = "ok"
            except Exception as exc:  # each failure is reported, none is fatal to the probe
                results[name] = str(exc) or type(exc).__name__
        self._cached = (self.clock(), results)
        return results


@dataclass
class Bot:
    settings: Settings
    http: web.Application
    bolt: AsyncApp
    runner: RolloutRunner
    registry: ClusterRegistry
    socket_mode: AsyncSocketModeHandler | None = None
    alert_index: AlertMessageIndex | None = None
    contexts: tuple[str | None, ...] = (None,)
    _site_runner: web.AppRunner | None = None
    _cluster_check: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._site_runner is not None
        address: Any = self._site_runner.addresses[0]
        return int(address[1])

    async def start(self) -> None:
        # Loading a kubeconfig and the client's API classes takes a noticeable fraction of a
        # second: done now, in a thread, rather than on the loop at the first click.
        for context in self.contexts:
            await asyncio.to_thread(self.registry.get, context)
        self._cluster_check = asyncio.create_task(self._check_clusters())
        self._site_runner = web.AppRunner(self.http, access_log=None)
        await self._site_runner.setup()
        await web.TCPSite(self._site_runner, self.settings.host, self.settings.port).start()
        if self.socket_mode is not None:
            await self.socket_mode.connect_async()  # type: ignore[no-untyped-call]
        log.info("rollback-bot listening on %s:%s", self.settings.host, self.port)

    async def _check_clusters(self) -> None:
        """At start, say loudly which clusters do not answer yet, retrying with backoff (until
        then /readyz says not ready); the bot keeps serving rather than crash-looping."""
        pending = list(self.contexts)
        delay = 1.0
        while pending:
            for context in list(pending):
                name = context or "default"
                try:
                    version = await self.registry.get(context).ping()
                except RollbackBotError as exc:
                    log.warning(
                        "cluster %s not reachable yet (retrying in %gs): %s", name, delay, exc
                    )
                    continue
                log.info("cluster %s reachable (Kubernetes %s)", name, version)
                pending.remove(context)
            if pending:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        if self._cluster_check is not None:
            self._cluster_check.cancel()
        if self.socket_mode is not None:
            await self.socket_mode.close_async()  # type: ignore[no-untyped-call]
        await self.runner.shutdown(grace)
        if self._site_runner is not None:
            await self._site_runner.cleanup()
        await self.registry.close()
        if self.alert_index is not None:
            await self.alert_index.close()


def build_bot(
    settings: Settings,
    catalog: Catalog,
    *,
    cluster_factory: Callable[[str | None, str | None, float], Cluster] | None = None,
    alert_index: AlertMessageIndex | None = None,
) -> Bot:
    """Wire the bot. Raises RollbackBotError naming what is wrong in the settings."""
    problems = settings_problems(settings)
    if problems:
        raise RollbackBotError("cannot start: " + "; ".join(problems))
    assert settings.slack_bot_token is not None
    metrics = Metrics()

    def count_error(kind: str) -> None:
        metrics.kube_errors.labels(kind).inc()

    def official_client(kubeconfig: str | None, context: str | None, timeout: float) -> Cluster:
        return KubernetesCluster.from_kubeconfig(
            kubeconfig, context, request_timeout=timeout, on_error=count_error
        )

    registry = ClusterRegistry(
        settings.kubeconfig,
        settings.kube_context,
        request_timeout=settings.kube_request_timeout,
        factory=cluster_factory or official_client,
    )
    engine = RollbackEngine(registry.get)
    me = replica_id()
    audit = AuditTrail([JsonLogSink(), KubernetesEventSink(registry.get, me)])
    runner = RolloutRunner(engine, audit, replica_id=me, metrics=metrics)
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )
    socket_mode = settings.slack_app_token is not None
    bolt = AsyncApp(
        client=client,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        request_verification_enabled=not socket_mode,
    )
    deps = Deps(
        catalog=catalog,
        engine=engine,
        runner=runner,
        audit=audit,
        directory=UserDirectory(client),
        command=settings.slash_command,
    )
    dedupe.register(bolt, dedupe.SeenKeys())
    commands.register(bolt, deps)
    actions.register(bolt, deps)
    views.register(bolt, deps)

    async def view_of(ref: ServiceRef, asked_by: str) -> ServiceView:
        return await service_view(deps, ref, asked_by)

    index = alert_index or AlertMessageStore.from_kubeconfig(
        settings.kubeconfig,
        settings.kube_context,
        settings.namespace or service_account_namespace() or "default",
        request_timeout=settings.kube_request_timeout,
    )
    offers = AlertOffers(
        catalog,
        index,
        client,
        view_of,
        default_channel=settings.default_channel,
        window=timedelta(minutes=settings.deploy_window_minutes),
        patterns=compile_patterns(settings.alert_patterns),
        metrics=metrics,
    )
    events.register(bolt, offers)

    async def slack_auth() -> None:
        await client.auth_test()

    checks: dict[str, Callable[[], Awaitable[None]]] = {"slack": slack_auth}
    contexts = {ref.context for ref in catalog.refs()} or {None}
    for context in sorted(contexts, key=str):

        async def cluster_check(context: str | None = context) -> None:
            await registry.get(context).ping()

        checks[f"cluster:{context or 'default'}"] = cluster_check
    readiness = Readiness(checks)

    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        bolt_request = await to_bolt_request(request)
        response = await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        kind = _payload_type(bolt_request.body)
        metrics.slack_ack_seconds.labels(kind).observe(time.perf_counter() - started)
        return response

    async def metrics_endpoint(_request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": metrics_content_type}
        )

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        results = await readiness.report()
        ready = all(v == "ok" for v in results.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": results},
            status=200 if ready else 503,
        )

    app = web.Application(client_max_size=alertmanager.MAX_BODY_BYTES + 1024)
    alertmanager.register(app, offers, settings.alertmanager_token)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    if not socket_mode:
        app.router.add_post("/slack/events", slack_events)
    handler = (
        AsyncSocketModeHandler(bolt, app_token=settings.slack_app_token.get_secret_value())
        if settings.slack_app_token is not None
        else None
    )
    return Bot(
        settings,
        app,
        bolt,
        runner,
        registry,
        socket_mode=handler,
        alert_index=index,
        contexts=tuple(sorted(contexts, key=str)),
    )


def _payload_type(body: dict[str, Any]) -> str:
    """slash_command, block_actions, view_submission, event_callback, … for the ack metric."""
    if "command" in body:
        return "slash_command"
    return str(body.get("type") or "unknown")[:32]


async def serve(settings: Settings, catalog: Catalog) -> int:
    """Run until SIGINT/SIGTERM; running rollouts get time to finish reporting."""
    try:
        bot = build_bot(settings, catalog)
    except RollbackBotError as exc:
        log.error("%s", exc)
        return 1
    try:
        await bot.start()
    except (RollbackBotError, OSError) as exc:
        log.error("cannot start: %s", exc)
        await bot.stop(grace=0)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: letting running rollouts finish")
    await bot.stop()
    return 0
