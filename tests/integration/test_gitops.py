"""GitOps that would revert a rollback, end to end: signed Slack requests → a real bot → the
simulated cluster, whose demo seeds shop/payments (Argo CD app argocd/shop-payments, auto-sync
with self-heal) and shop/search (Flux Kustomization flux-system/search). The catalog's `gitops:`
policy: warn, suspend (then "Resume auto-sync"), refuse (in Slack and the CLI); the reminders."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.kube.clusters import ClusterRegistry
from bot.adapters.kube.gitops import KubeGitOps
from bot.adapters.slack.payloads import RollbackButton
from bot.config.catalog import Catalog, ServiceEntry
from bot.domain.rollback.gitops import REMINDED_ANNOTATION, SUSPENDED_ANNOTATION, Managed
from bot.domain.rollback.models import Target, Thread
from bot.domain.times import utc_now
from bot.entry.serve.wiring import Bot, build_bot
from bot.observability.logs import FIELDS
from bot.usecases.rollback.engine import RollbackEngine
from bot.usecases.rollback.gitops import GitopsReminders
from rollback_sandbox.cluster import resources
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID, SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi, StoredMessage
from tests.bot_fixtures import BotUnderTest, bot_settings, demo_catalog
from tests.integration.test_cli import cli

CHANNEL = DEFAULT_CHANNEL_ID
PAYMENTS = Target("shop", "payments")
SEARCH = Target("shop", "search")
ARGO_SAYS = (
    "managed by Argo CD app `shop-payments`, auto-sync with self-heal on: a rollback alone "
    "would be reverted"
)

StartBot = Callable[..., Awaitable[BotUnderTest]]


@pytest.fixture
async def start_gitops_bot(
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slack_signing_secret: str,
    demo_kubeconfig: Path,
) -> AsyncIterator[StartBot]:
    """A bot with the given catalog and settings (`gitops_reminder_seconds=…`)."""
    started: list[Bot] = []

    async def start(catalog: Catalog, **settings: object) -> BotUnderTest:
        config = bot_settings(slack_api, demo_kubeconfig, slack_signing_secret, **settings)
        bot = build_bot(config, catalog)
        started.append(bot)
        await bot.start()
        slack_sender.events_url = f"http://127.0.0.1:{bot.port}/slack/events"
        return BotUnderTest(bot, slack_api, slack_sender)

    try:
        yield start
    finally:
        for bot in reversed(started):
            await bot.stop(grace=5)


def catalog_with(policy: str) -> Catalog:
    return demo_catalog(
        payments=ServiceEntry(namespace="shop", deployment="payments", gitops=policy),  # type: ignore[arg-type]
        search=ServiceEntry(namespace="shop", deployment="search", gitops=policy),  # type: ignore[arg-type]
    )


async def versions_message(t: BotUnderTest, service: str) -> StoredMessage:
    assert (await t.sender.slash_command("/rollback", service)).status == 200
    found = await t.slack.wait_for(
        lambda: next(
            (m for m in t.slack.messages(CHANNEL) if f"Roll back {service}?" in m.all_text()),
            None,
        )
    )
    assert found is not None
    return found


async def open_modal(t: BotUnderTest, message: StoredMessage, action_id: str) -> Any:
    before = len(t.slack.views())
    assert (await t.sender.click(CHANNEL, message.ts, action_id)).status == 200
    return await t.slack.wait_for(
        lambda: t.slack.views()[-1] if len(t.slack.views()) > before else None
    )


async def roll_back(t: BotUnderTest, message: StoredMessage, action_id: str) -> Any:
    view = await open_modal(t, message, action_id)
    assert (await t.sender.submit_view(view["id"], {"reason": "bad release"})).status == 200
    return view


def thread_text(t: BotUnderTest, message: StoredMessage) -> str:
    return "\n".join(m.all_text() for m in t.slack.thread(CHANNEL, message.ts))


def in_thread(t: BotUnderTest, message: StoredMessage, text: str) -> StoredMessage | None:
    return next((m for m in t.slack.thread(CHANNEL, message.ts) if text in m.all_text()), None)


async def warned(t: BotUnderTest) -> StoredMessage:
    """The private "Not resumed yet" answer to a "Resume auto-sync" click."""
    found = await t.slack.wait_for(
        lambda: next(
            (m for m in t.slack.ephemerals(CHANNEL, DEFAULT_USER_ID) if "Not resumed" in m.text),
            None,
        )
    )
    assert found is not None
    return found


async def told(
    t: BotUnderTest, message: StoredMessage, text: str, timeout: float = 5.0
) -> StoredMessage:
    """The first message of the thread saying `text`, once there is one."""
    found = await t.slack.wait_for(lambda: in_thread(t, message, text), timeout=timeout)
    assert found is not None
    return found


def audit_steps(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, FIELDS)["step"] for r in caplog.records if r.name == "rollback_bot.audit"]


def gitops_object(cluster: SandboxThread, kind: str) -> dict[str, Any]:
    rt, namespace, name = {
        "Application": (resources.APPLICATIONS, "argocd", "shop-payments"),
        "Kustomization": (resources.KUSTOMIZATIONS, "flux-system", "search"),
    }[kind]
    found: dict[str, Any] = cluster.call(lambda: cluster.sandbox.registry.get(rt, namespace, name))
    return found


def argo_cd_refreshes(cluster: SandboxThread, revision: str, status: str) -> None:
    """What Argo CD writes after a commit to Git, auto-sync off: the new revision compared."""

    def write() -> None:
        registry = cluster.sandbox.registry
        app = registry.get(resources.APPLICATIONS, "argocd", "shop-payments")
        app["status"]["sync"] = {"status": status, "revision": revision}
        app["status"]["resources"][0]["status"] = status
        registry.update(resources.APPLICATIONS, "argocd", "shop-payments", app)

    cluster.call(write)


async def test_warn_says_it_will_be_reverted_and_asks_to_confirm_anyway(
    start_gitops_bot: StartBot, demo_cluster: SandboxThread, demo_engine: RollbackEngine
) -> None:
    t = await start_gitops_bot(catalog_with("warn"))
    message = await versions_message(t, "payments")
    assert ARGO_SAYS in message.all_text()
    assert "The confirmation asks you to roll back anyway" in message.all_text()
    view = await roll_back(t, message, "rollback:to:1")
    modal = json.dumps(view["blocks"])
    assert "This rollback will be reverted" in modal and "shop-payments" in modal
    assert view["submit"]["text"] == "Roll back anyway"
    await told(t, message, "rolled back to *1.4.0*", 20)
    assert (await demo_engine.status(PAYMENTS)).version == "1.4.0"
    app = gitops_object(demo_cluster, "Application")  # warned, not touched
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert SUSPENDED_ANNOTATION not in app["metadata"].get("annotations", {})


async def test_suspend_turns_argo_cd_auto_sync_off_and_resume_restores_it_after_a_warning(
    start_gitops_bot: StartBot,
    demo_cluster: SandboxThread,
    demo_engine: RollbackEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    t = await start_gitops_bot(catalog_with("suspend"))
    message = await versions_message(t, "payments")
    assert "A rollback turns its auto-sync off just before the patch" in message.all_text()
    view = await roll_back(t, message, "rollback:to:1")
    assert "Auto-sync is turned off just before the patch" in json.dumps(view["blocks"])
    await told(t, message, "rolled back to *1.4.0*", 20)
    assert (await demo_engine.status(PAYMENTS)).version == "1.4.0"

    app = gitops_object(demo_cluster, "Application")
    assert "automated" not in app["spec"]["syncPolicy"]  # as Argo CD's own rollback does
    mark = json.loads(app["metadata"]["annotations"][SUSPENDED_ANNOTATION])
    assert mark["previous"] == {"prune": True, "selfHeal": True}
    assert (mark["channel"], mark["thread_ts"], mark["bad_version"]) == (
        CHANNEL,
        message.ts,
        "1.5.0",
    )
    steps = audit_steps(caplog)
    assert steps.index("gitops_suspended") < steps.index("started")
    suspended = await told(t, message, "Auto-sync of Argo CD app `shop-payments` is suspended")
    # Told before the rollback's own story.
    assert t.slack.thread(CHANNEL, message.ts).index(suspended) == 0

    # Git still names 1.5.0 (Argo CD is still at the revision that deployed it): a warning first.
    assert (await t.sender.click(CHANNEL, suspended.ts, "gitops:resume")).status == 200
    warning = await warned(t)
    assert "Git has not moved since auto-sync was suspended" in warning.all_text()
    assert "automated" not in gitops_object(demo_cluster, "Application")["spec"]["syncPolicy"]

    assert (await t.sender.click(CHANNEL, warning.ts, "gitops:resume-anyway")).status == 200
    resumed = await told(t, message, "resumed auto-sync")
    assert f"<@{DEFAULT_USER_ID}> resumed auto-sync of Argo CD app `shop-payments`" in (
        resumed.all_text()
    )
    app = gitops_object(demo_cluster, "Application")
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert SUSPENDED_ANNOTATION not in app["metadata"].get("annotations", {})
    assert "gitops_resumed" in audit_steps(caplog)


async def test_once_git_is_fixed_resume_needs_no_warning_and_is_reauthorized(
    start_gitops_bot: StartBot, demo_cluster: SandboxThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    catalog = demo_catalog(
        payments=ServiceEntry(
            namespace="shop",
            deployment="payments",
            gitops="suspend",
            allowed_users=(DEFAULT_USER_ID,),
        )
    )
    t = await start_gitops_bot(catalog)
    message = await versions_message(t, "payments")
    await roll_back(t, message, "rollback:to:1")
    suspended = await told(t, message, "is suspended", 20)
    await told(t, message, "rolled back to *1.4.0*", 20)

    # Someone not allowed to roll payments back may not resume its auto-sync either.
    other = t.slack.add_user("bystander")
    assert (
        await t.sender.click(CHANNEL, suspended.ts, "gitops:resume", user_id=other)
    ).status == 200
    denied = await t.slack.wait_for(lambda: t.slack.ephemerals(CHANNEL, other))
    assert "You may not roll back *payments*" in denied[0].all_text()
    assert "denied" in audit_steps(caplog)

    # A commit reverting 1.5.0 in Git: Argo CD compares it with what runs now, Synced.
    argo_cd_refreshes(demo_cluster, "c0ffee12", "Synced")
    assert (await t.sender.click(CHANNEL, suspended.ts, "gitops:resume")).status == 200
    resumed = await told(t, message, "resumed auto-sync")
    assert "They were told" not in resumed.all_text()
    assert not [m for m in t.slack.ephemerals(CHANNEL, DEFAULT_USER_ID) if "Not resumed" in m.text]
    app = gitops_object(demo_cluster, "Application")
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    # A second click finds nothing of the bot's to resume.
    assert (await t.sender.click(CHANNEL, suspended.ts, "gitops:resume")).status == 200
    again = await t.slack.wait_for(
        lambda: [
            m for m in t.slack.ephemerals(CHANNEL, DEFAULT_USER_ID) if "not suspended" in m.text
        ]
    )
    assert "resumed already" in again[0].all_text()


class RecordedNotices:
    def __init__(self) -> None:
        self.reminders: list[Thread] = []

    async def suspended(self, *_: object) -> None: ...

    async def resumed(self, *_: object) -> None: ...

    async def reminder(self, thread: Thread, managed: Managed, now: datetime) -> None:
        self.reminders.append(thread)


async def test_flux_suspended_reminded_every_interval_by_one_replica_and_resumed(
    start_gitops_bot: StartBot, demo_cluster: SandboxThread, demo_kubeconfig: Path
) -> None:
    t = await start_gitops_bot(catalog_with("suspend"), gitops_reminder_seconds=1.0)
    message = await versions_message(t, "search")
    await roll_back(t, message, "rollback:to:1")
    await told(t, message, "rolled back to *3.1.0*", 20)
    kustomization = gitops_object(demo_cluster, "Kustomization")
    assert kustomization["spec"]["suspend"] is True
    assert "A reminder comes every" in thread_text(t, message)

    # The bot's own loop, from the mark in the cluster: a reminder in the thread.
    reminder = await told(t, message, "is still suspended", 10)
    assert "Flux does not compare while suspended" in reminder.all_text()
    assert reminder.button("gitops:resume")

    # Two more replicas an interval later: exactly one of them reminds (a precondition on the
    # Kustomization's resourceVersion decides), as the bot's own state is only in the cluster.
    registry = ClusterRegistry(str(demo_kubeconfig), None, request_timeout=5)
    later = utc_now() + timedelta(hours=2)
    notices = RecordedNotices()
    replicas = [
        GitopsReminders(
            KubeGitOps(lambda c: registry.cluster(c).kube, ["argocd", "flux-system"]),
            notices,
            {SEARCH: "search"},
            interval=timedelta(hours=1),
            now=lambda: later,
        )
        for _ in range(2)
    ]
    try:
        assert sum(await asyncio.gather(*(r.scan() for r in replicas))) == 1
        assert notices.reminders == [Thread(CHANNEL, message.ts)]
        mark = gitops_object(demo_cluster, "Kustomization")["metadata"]["annotations"]
        assert REMINDED_ANNOTATION in mark

        suspended = await told(t, message, "is suspended")
        assert (await t.sender.click(CHANNEL, suspended.ts, "gitops:resume")).status == 200
        warning = await warned(t)
        assert (await t.sender.click(CHANNEL, warning.ts, "gitops:resume-anyway")).status == 200
        await told(t, message, "resumed auto-sync")
        assert "suspend" not in gitops_object(demo_cluster, "Kustomization")["spec"]
        # Due again for both (two hours on), yet nothing is reminded: it was resumed.
        later += timedelta(hours=2)
        assert [await r.scan() for r in replicas] == [0, 0]
        assert len(notices.reminders) == 1
    finally:
        await registry.close()


async def test_refuse_offers_no_button_and_says_what_to_do_in_git(
    start_gitops_bot: StartBot, demo_engine: RollbackEngine
) -> None:
    t = await start_gitops_bot(catalog_with("refuse"))
    message = await versions_message(t, "payments")
    text = message.all_text()
    assert "The catalog does not let the bot roll payments back" in text
    assert "revert the bad change in the Git repository of Argo CD app `shop-payments`" in text
    assert message.buttons() == []
    checkout = await versions_message(t, "checkout")
    assert checkout.buttons()  # a service no GitOps manages keeps its buttons
    # A button for payments all the same (one from before the catalog said so): refused at the
    # click, no confirmation opened.
    history = await demo_engine.history(PAYMENTS)
    previous = history.revisions[1]
    forged = RollbackButton(
        service="payments",
        target_revision=previous.number,
        target_replicaset=previous.replicaset,
        target_version=previous.version,
        from_version=history.deployment.version,
        revision=history.deployment.revision,
        generation=history.deployment.generation,
    ).encode()
    views = len(t.slack.views())
    click = await t.sender.click(CHANNEL, checkout.ts, "rollback:to:2", value=forged)
    assert click.status == 200
    refused = await t.slack.wait_for(lambda: t.slack.ephemerals(CHANNEL, DEFAULT_USER_ID))
    assert "The catalog does not let the bot roll payments back" in refused[0].all_text()
    assert "Nothing was changed" in refused[0].all_text()
    assert len(t.slack.views()) == views
    assert (await demo_engine.status(PAYMENTS)).version == "1.5.0"


def test_the_cli_refuses_a_refused_service_with_exit_3(tmp_path: Path) -> None:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        (tmp_path / "catalog.yaml").write_text(
            "services:\n  payments: {namespace: shop, deployment: payments, gitops: refuse}\n"
        )
        result = cli(kubeconfig, "rollback", "payments", "--yes", "--reason", "bad")
        assert result.returncode == 3, result.stderr
        assert "Argo CD app `shop-payments`" in result.stderr
        assert "revert the bad change in the Git repository" in result.stderr
        status = cli(kubeconfig, "status", "payments", "-o", "json")
        assert json.loads(status.stdout)["version"] == "1.5.0"


def test_the_cli_suspends_flux_before_rolling_back(tmp_path: Path) -> None:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        (tmp_path / "catalog.yaml").write_text(
            "services:\n  search: {namespace: shop, deployment: search, gitops: suspend}\n"
        )
        result = cli(kubeconfig, "rollback", "search", "--yes", "--reason", "bad")
        assert result.returncode == 0, result.stderr
        kustomization = gitops_object(sandbox, "Kustomization")
        assert kustomization["spec"]["suspend"] is True
        mark = json.loads(kustomization["metadata"]["annotations"][SUSPENDED_ANNOTATION])
        assert mark["bad_version"] == "3.2.0" and "channel" not in mark
        audit = (tmp_path / "audit.jsonl").read_text()
        assert '"step": "gitops_suspended"' in audit or '"step":"gitops_suspended"' in audit
