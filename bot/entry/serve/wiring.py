"""The composition root of `serve`: settings in, a running bot out. Every adapter is built here
and passed down to the use cases and the listeners; nothing is global."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler

from bot.adapters.audit import ClusterStoreSink, JsonLogSink, KubernetesEventSink
from bot.adapters.charts import ReportCharts
from bot.adapters.kube.audit_store import ClusterAuditStore
from bot.adapters.kube.client import service_account_namespace
from bot.adapters.kube.clusters import ClusterRegistry
from bot.adapters.kube.configmaps import DEFAULT_NAME as ALERT_INDEX_NAME
from bot.adapters.kube.gitops import KubeGitOps
from bot.adapters.kube.services import BlueGreenClusterRegistry
from bot.adapters.prometheus import PrometheusClients
from bot.adapters.slack.analysis_messages import SlackAnalysisMessages
from bot.adapters.slack.audit_channel import AuditChannelSink
from bot.adapters.slack.directory import UserDirectory
from bot.adapters.slack.gitops_notices import SlackGitopsNotices
from bot.adapters.slack.messages import SlackMessages
from bot.adapters.slack.reporter import ThreadReporters
from bot.adapters.slack.scheduled_client import ScheduledWebClient
from bot.adapters.slack.scheduler import SlackScheduler
from bot.adapters.slack.switch_reporter import SlackSwitchMessages, SlackSwitchReporters
from bot.config.catalog import Catalog
from bot.config.settings import Settings
from bot.domain.alerts.mapping import BadPattern, compile_patterns
from bot.domain.alerts.storms import StormPolicy
from bot.domain.errors import RollbackBotError
from bot.domain.retry import Backoff, retry
from bot.entry.serve.routes import Check, Readiness, build_routes
from bot.observability.metrics import Metrics
from bot.usecases.alerts.digests import Digests
from bot.usecases.alerts.index import AlertIndex
from bot.usecases.alerts.offers import AlertOffers
from bot.usecases.analysis.analyze import Analyzer
from bot.usecases.analysis.watch import RolloutWatch
from bot.usecases.audit import AuditReader, AuditRetention, AuditSink, AuditTrail
from bot.usecases.documents import Document
from bot.usecases.rollback.access import Access
from bot.usecases.rollback.approvals import Approvals
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.gitops import GitopsGuard, GitopsReminders
from bot.usecases.rollback.preview import Previews
from bot.usecases.rollback.runner import RolloutRunner, replica_id
from bot.usecases.rollback.switch import BlueGreenSwitches
from bot.usecases.rollback.takeover import Takeover
from bot.usecases.rollback.views import ServiceViews
from handlers import actions, alertmanager, commands, dedupe, errors, events, views
from handlers import analysis as analysis_handlers
from handlers import approvals as approvals_handlers
from handlers import digest as digest_handlers
from handlers import gitops as gitops_handlers
from handlers import overrides as overrides_handlers
from handlers import switch as switch_handlers
from handlers.after_ack import AfterAck

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 90.0
# How long a stopping replica waits for patches on their way before handing its rollouts over.
HAND_OVER_GRACE_SECONDS = 10.0
# How long a stopping replica waits for audit records still on their way to the cluster.
AUDIT_FLUSH_SECONDS = 10.0
APPROVALS_NAME = "rollback-bot-approvals"
LOOP_RESTART = 5.0  # seconds before a replica's loop that failed starts again
APPROVAL_EXPIRY_SECONDS = 15.0  # how late an expired request may be said to have expired
# A cluster that does not answer at start is asked again, less often each time.
CLUSTER_CHECK_BACKOFF = Backoff(first=1.0, factor=2.0, cap=60.0, jitter=0.2)


def settings_problems(settings: Settings) -> list[str]:
    """Everything missing or wrong for `serve`, at once, so one restart fixes them all."""
    problems = []
    if settings.slack_bot_token is None:
        problems.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        problems.append(
            "neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode) is set"
        )
    for name, value in (
        ("SLACK_BOT_TOKEN", settings.slack_bot_token),
        ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        ("SLACK_APP_TOKEN", settings.slack_app_token),
    ):
        # An empty value passes "is set", and then every request fails.
        if value is not None and not value.get_secret_value().strip():
            problems.append(f"{name} is empty")
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
class Bot:
    settings: Settings
    http: web.Application
    bolt: AsyncApp
    runner: RolloutRunner
    registry: ClusterRegistry
    readiness: Readiness
    # What every replica keeps doing while it serves (picking up stopped replicas' rollouts,
    # expiring requests for approval, …), each a loop run as a task until the bot stops.
    loops: dict[str, Callable[[], Coroutine[Any, Any, None]]]
    socket_mode: AsyncSocketModeHandler | None = None
    contexts: tuple[str | None, ...] = (None,)
    # Every Slack call goes through it (the listeners' too): its figures tell what went out.
    scheduler: SlackScheduler | None = None
    # What is still being written when the bot stops (the audit store's queue, …): each given
    # up to AUDIT_FLUSH_SECONDS, before the clusters' connections close.
    flushes: list[Callable[[float], Coroutine[Any, Any, None]]] = field(default_factory=list)
    _site_runner: web.AppRunner | None = None
    _cluster_check: asyncio.Task[None] | None = None
    _loops: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self._site_runner is not None
        address: Any = self._site_runner.addresses[0]
        return int(address[1])

    async def start(self) -> None:
        # Loading a kubeconfig and the client's API classes takes a noticeable fraction of a
        # second: done now, in a thread, rather than on the loop at the first click.
        for context in self.contexts:
            await asyncio.to_thread(self.registry.cluster, context)
        self._cluster_check = asyncio.create_task(self._check_clusters())
        self._loops = [
            asyncio.create_task(_kept_going(name, loop), name=name)
            for name, loop in self.loops.items()
        ]
        self._site_runner = web.AppRunner(self.http, access_log=None)
        await self._site_runner.setup()
        await web.TCPSite(self._site_runner, self.settings.host, self.settings.port).start()
        if self.socket_mode is not None:
            await self.socket_mode.connect_async()  # type: ignore[no-untyped-call]
        log.info("rollback-bot listening on %s:%s", self.settings.host, self.port)

    async def _check_clusters(self) -> None:
        """At start, say loudly which clusters do not answer yet, retrying with backoff (until
        then /readyz says not ready); the bot keeps serving rather than crash-looping."""
        for context in self.contexts:
            name = context or "default"

            async def ping(_number: int, context: str | None = context) -> str:
                return await self.registry.cluster(context).ping()

            def warn(_number: int, exc: BaseException, delay: float, name: str = name) -> None:
                log.warning(
                    "cluster %s not reachable yet (retrying in %.0fs): %s", name, delay, exc
                )

            version = await retry(
                ping,
                retry_on=RollbackBotError,
                attempts=None,
                backoff=CLUSTER_CHECK_BACKOFF,
                on_retry=warn,
            )
            log.info("cluster %s reachable (Kubernetes %s)", name, version)

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Unready at once and taking no new rollbacks; the running ones are handed over
        (their Leases released keeping the run) for another replica to finish telling."""
        self.readiness.stopping = True
        self.runner.stop_accepting()
        for task in (self._cluster_check, *self._loops):
            if task is not None:
                task.cancel()
        if self.socket_mode is not None:
            await self.socket_mode.close_async()  # type: ignore[no-untyped-call]
        await self.runner.hand_over(min(grace, HAND_OVER_GRACE_SECONDS))
        await self.runner.shutdown(grace)  # what was still deciding when the hand-over began
        if self._site_runner is not None:
            await self._site_runner.cleanup()
        for flush in self.flushes:
            await flush(min(grace, AUDIT_FLUSH_SECONDS))
        await self.registry.close()


async def _kept_going(name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a replica's loop until the bot stops: an unexpected error is logged with its trace
    and the loop starts again a little later, never dies silently."""
    while True:
        try:
            await loop()
            return
        except Exception:
            log.exception("the %s loop failed; starting it again in %.0fs", name, LOOP_RESTART)
            await asyncio.sleep(LOOP_RESTART)


def build_bot(
    settings: Settings,
    catalog: Catalog,
    *,
    alert_index: Document | None = None,
    approval_store: Document | None = None,
    approval_expiry_seconds: float = APPROVAL_EXPIRY_SECONDS,
) -> Bot:
    """Wire the bot. Raises RollbackBotError naming what is wrong in the settings.

    `alert_index`: where the alert message index is kept (default: the bot's ConfigMap)."""
    problems = settings_problems(settings)
    if problems:
        raise RollbackBotError("cannot start: " + "; ".join(problems))
    assert settings.slack_bot_token is not None
    if catalog.unrestricted:
        log.warning(
            "anyone in the Slack workspace may roll back %s: their catalog entries name no "
            "allowed_users or allowed_groups",
            ", ".join(catalog.unrestricted),
        )
    metrics = Metrics()
    registry = ClusterRegistry(
        settings.kubeconfig,
        settings.kube_context,
        request_timeout=settings.kube_request_timeout,
        on_error=metrics.count_kube_error,
    )
    me = replica_id()
    # The record that outlives Events and replicas (README "The record"), in the bot's namespace.
    audit_store = ClusterAuditStore(
        registry.cluster(None).kube,
        settings.namespace or service_account_namespace() or "default",
        retention_days=settings.audit_retention_days,
    )
    audit_sinks: list[AuditSink] = [
        JsonLogSink(),
        KubernetesEventSink(registry, me),
        ClusterStoreSink(audit_store),
    ]
    # Every Web API call goes through one scheduler: Slack's budget shared and prioritized,
    # rollbacks before progress before alerts, Retry-After honoured in one place.
    scheduler = SlackScheduler()
    client = ScheduledWebClient(
        scheduler,
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2)],
    )
    if catalog.audit_channel:
        audit_sinks.append(AuditChannelSink(client, catalog.audit_channel))
    audit = AuditTrail(audit_sinks)
    messages = SlackMessages(client)
    engine = RollbackEngine(registry)
    # GitOps that would revert a rollback (the catalog's `gitops:`): checked, suspended, resumed.
    gitops_notices = SlackGitopsNotices(
        client, reminder_every=timedelta(seconds=settings.gitops_reminder_seconds)
    )
    kube_gitops = KubeGitOps(
        lambda context: registry.cluster(context).kube, settings.gitops_namespaces
    )
    gitops = GitopsGuard(kube_gitops, registry, audit, gitops_notices)
    runner = RolloutRunner(
        engine,
        audit,
        ThreadReporters(client),
        replica_id=me,
        messages=messages,
        metrics=metrics,
        lease_seconds=settings.lease_seconds,
        gitops=gitops,
    )
    takeover = Takeover(
        registry,
        runner,
        {r.target: r.name for r in catalog.refs()},
        me=me,
        interval=settings.lease_seconds / 3,
    )
    service_views = ServiceViews(registry, runner, audit, gitops=gitops)
    # Blue-green services (catalog kind BlueGreen): their rollback switches the Service back.
    switches = BlueGreenSwitches(
        BlueGreenClusterRegistry(registry),
        audit,
        SlackSwitchReporters(client),
        replica_id=me,
        messages=SlackSwitchMessages(client),
        lease_seconds=settings.lease_seconds,
    )
    access = Access(catalog, UserDirectory(client), registry, audit)
    own_namespace = settings.namespace or service_account_namespace() or "default"
    index = AlertIndex(
        alert_index or registry.document(own_namespace, ALERT_INDEX_NAME),
        storms=StormPolicy(
            messages=settings.alert_storm_messages,
            window=timedelta(seconds=settings.alert_storm_window_seconds),
        ),
    )
    approvals = Approvals(
        approval_store
        or registry.document(own_namespace, APPROVALS_NAME, component="approval-requests"),
        runner,
        messages,
        registry,
        audit,
        catalog,
    )
    deploy_window = timedelta(minutes=settings.deploy_window_minutes)
    digests = Digests(catalog, index, messages, service_views, window=deploy_window)
    offers = AlertOffers(
        catalog,
        index,
        messages,
        service_views,
        digests,
        default_channel=settings.default_channel,
        window=deploy_window,
        patterns=compile_patterns(settings.alert_patterns),
        metrics=metrics,
    )

    # Automatic rollback: the catalog's services with an `auto_rollback:` block, watched.
    prometheus = PrometheusClients()
    rollout_watch = RolloutWatch(
        catalog.refs(),
        registry,
        Analyzer(registry, prometheus, default_prometheus_url=settings.prometheus_url),
        SlackAnalysisMessages(client),
        runner,
        service_views,
        audit,
        replica=me,
        charts=ReportCharts(),
        metrics=metrics,
        lease_seconds=settings.lease_seconds,
    )

    socket_mode = settings.slack_app_token is not None
    # Signatures are checked once, by the route, before anything reads the body.
    bolt = AsyncApp(client=client, request_verification_enabled=False)

    async def scheduled_client(context: AsyncBoltContext, next: Callable[[], Any]) -> None:
        # Bolt gives each request a plain client of its own: listeners get the scheduled one
        # instead (and `say`, which Bolt may have built on the plain one, is built again).
        context["client"] = client
        context.pop("say", None)
        await next()

    bolt.middleware(scheduled_client)
    errors.register(bolt)
    dedupe.register(bolt, dedupe.SeenKeys())
    # Offers and answers to alert posts wait their turn after their acks; a click (its modal
    # must open within the trigger's 3 s) and a confirmation (the rollback) never do.
    after_ack = AfterAck()
    commands.register(
        bolt,
        settings.slash_command,
        catalog,
        service_views,
        access,
        after_ack,
        audit=AuditReader(audit_store, retention_days=settings.audit_retention_days),
        switches=switches,
    )
    switch_handlers.register(bolt, catalog, access, switches)
    previews = Previews(registry, audit)
    actions.register(bolt, catalog, access, runner, previews=previews, gitops=gitops)
    gitops_handlers.register(bolt, catalog, access, gitops)
    overrides_handlers.register(
        bolt,
        catalog,
        access,
        runner,
        previews,
        runner,
        approvals,
    )
    views.register(bolt, catalog, access, runner, approvals)
    approvals_handlers.register(bolt, catalog, access, approvals)
    events.register(bolt, offers, after_ack)
    digest_handlers.register(bolt, catalog, service_views, after_ack=after_ack)
    analysis_handlers.register(bolt, catalog, access, rollout_watch)

    contexts = tuple(sorted({ref.context for ref in catalog.refs()} or {None}, key=str))
    checks: dict[str, Check] = {"slack": client.auth_test}
    for context in contexts:
        checks[f"cluster:{context or 'default'}"] = registry.cluster_ping(context)
    readiness = Readiness(checks)
    http = build_routes(
        bolt=None if socket_mode else bolt,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else None
        ),
        alertmanager_webhook=alertmanager.webhook(offers, settings.alertmanager_token),
        readiness=readiness,
        metrics=metrics,
    )
    handler = (
        AsyncSocketModeHandler(bolt, app_token=settings.slack_app_token.get_secret_value())
        if settings.slack_app_token is not None
        else None
    )
    loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "takeover": takeover.run,
        "gitops reminders": GitopsReminders(
            kube_gitops,
            gitops_notices,
            {r.target: r.name for r in catalog.refs()},
            interval=timedelta(seconds=settings.gitops_reminder_seconds),
        ).run,
        "audit retention": AuditRetention(audit_store).run,
        "rollout watch": rollout_watch.run,
    }
    if any(entry.approvals for entry in catalog.services.values()):
        loops["approval expiry"] = lambda: approvals.run(approval_expiry_seconds)
    return Bot(
        settings,
        http,
        bolt,
        runner,
        registry,
        readiness,
        loops,
        socket_mode=handler,
        contexts=contexts,
        scheduler=scheduler,
        flushes=[
            switches.shutdown,  # running switches end (or say they were stopped) first
            rollout_watch.close,  # its watches handed over while the cluster still answers
            prometheus.close,
            digests.close,
            *(s.close for s in audit_sinks if isinstance(s, ClusterStoreSink | AuditChannelSink)),
            scheduler.close,  # last: the flushes above may still post (the audit channel)
        ],
    )


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
    log.info("stopping: handing running rollouts over to another replica")
    await bot.stop()
    return 0
