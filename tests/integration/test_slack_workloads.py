"""StatefulSets and DaemonSets end to end over real HTTP: signed Slack requests → the bot → the
simulated cluster (its StatefulSet and DaemonSet controllers, their ControllerRevisions), and
the story in the Slack stand-in. The same flow as a Deployment's: command, click, confirm,
progress in the thread, outcome."""

from __future__ import annotations

import copy

import pytest

from bot.config.catalog import Catalog, ServiceEntry, UncatalogedPolicy
from bot.domain.rollback.models import CHANGE_CAUSE_ANNOTATION, Target, WorkloadKind
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster import resources
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from rollback_sandbox.slack.web_api import StoredMessage
from tests.bot_fixtures import BotUnderTest, StartBot, demo_catalog
from tests.integration.test_slack_rollback import confirm, thread_text

CHANNEL = DEFAULT_CHANNEL_ID
ORDERS_DB = Target("shop", "orders-db", kind=WorkloadKind.STATEFULSET)
LOG_AGENT = Target("shop", "log-agent", kind=WorkloadKind.DAEMONSET)


def catalog_with_workloads() -> Catalog:
    return demo_catalog(
        **{
            "orders-db": ServiceEntry.model_validate(
                {"namespace": "shop", "kind": "StatefulSet", "name": "orders-db"}
            ),
            "log-agent": ServiceEntry.model_validate(
                {"namespace": "shop", "kind": "DaemonSet", "name": "log-agent"}
            ),
        }
    )


async def versions_message(t: BotUnderTest, service: str) -> StoredMessage:
    before = len([m for m in t.slack.messages(CHANNEL) if m.buttons()])
    reply = await t.sender.slash_command("/rollback", service)
    assert reply.status == 200

    def posted() -> StoredMessage | None:
        offers = [m for m in t.slack.messages(CHANNEL) if m.buttons()]
        return offers[-1] if len(offers) > before else None

    message = await t.slack.wait_for(posted)
    assert isinstance(message, StoredMessage)
    return message


@pytest.fixture
async def bot(start_bot: StartBot) -> BotUnderTest:
    return await start_bot(catalog_with_workloads())


async def test_a_statefulset_is_rolled_back_from_slack_as_kubectl_would(
    bot: BotUnderTest, demo_engine: RollbackEngine, demo_cluster: SandboxThread
) -> None:
    before = await demo_engine.history(ORDERS_DB)
    assert before.deployment.version == "15.6"
    previous = next(r for r in before.revisions if not r.current)

    message = await versions_message(bot, "orders-db")
    text = message.all_text()
    assert "StatefulSet `shop/orders-db`" in text
    assert "15.6" in text and f"revision {before.deployment.revision}" in text
    # What its update strategy does to a rollback is said before anyone clicks.
    assert "pods are replaced one at a time from the highest ordinal" in text
    action = f"rollback:to:{previous.number}"
    assert message.button(action)["text"]["text"] == "Roll back to 15.4"

    await confirm(bot, message, action, reason="replication lag after 15.6")
    await bot.slack.wait_for(
        lambda: "rolled back to *15.4*" in thread_text(bot, message), timeout=30
    )
    story = thread_text(bot, message)
    assert "started rolling *orders-db*" in story
    assert f"to *15.4* (revision {previous.number})" in story
    # kubectl's StatefulSet status words, to the end.
    assert "statefulset rolling update complete" in story or "roll out complete" in story

    after = await demo_engine.history(ORDERS_DB)
    assert after.deployment.version == "15.4"
    # kubectl's undo: the revision's template back, the ControllerRevision reused and
    # renumbered to the newest number (not a new revision).
    assert after.current is not None
    assert after.current.replicaset == previous.replicaset
    assert after.current.number > before.deployment.revision  # type: ignore[operator]
    assert {r.replicaset for r in after.revisions} == {r.replicaset for r in before.revisions}
    assert after.deployment.annotations[CHANGE_CAUSE_ANNOTATION].startswith(
        f"rolled back to revision {previous.number} (15.4) by @oncall via Slack"
    )
    sb = demo_cluster.sandbox
    sts = demo_cluster.call(
        lambda: copy.deepcopy(sb.registry.get(resources.STATEFULSETS, "shop", "orders-db"))
    )
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    assert sts["status"]["updatedReplicas"] == 3


async def test_a_daemonset_is_rolled_back_from_slack(
    bot: BotUnderTest, demo_engine: RollbackEngine
) -> None:
    before = await demo_engine.history(LOG_AGENT)
    assert before.deployment.version == "3.2.0"
    previous = next(r for r in before.revisions if not r.current)
    message = await versions_message(bot, "log-agent")
    assert "DaemonSet `shop/log-agent`" in message.all_text()

    await confirm(bot, message, f"rollback:to:{previous.number}", reason=None)
    await bot.slack.wait_for(
        lambda: "rolled back to *3.1.0*" in thread_text(bot, message), timeout=30
    )
    story = thread_text(bot, message)
    assert "daemon set" in story and "successfully rolled out" in story
    after = await demo_engine.history(LOG_AGENT)
    assert after.deployment.version == "3.1.0"
    assert after.current is not None and after.current.replicaset == previous.replicaset


async def test_an_on_delete_statefulset_says_the_pods_must_be_deleted(
    bot: BotUnderTest, demo_engine: RollbackEngine, demo_cluster: SandboxThread
) -> None:
    sb = demo_cluster.sandbox

    def on_delete() -> None:
        sts = copy.deepcopy(sb.registry.get(resources.STATEFULSETS, "shop", "orders-db"))
        sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
        sb.registry.update(resources.STATEFULSETS, "shop", "orders-db", sts)

    demo_cluster.call(on_delete)
    before = await demo_engine.history(ORDERS_DB)
    previous = next(r for r in before.revisions if not r.current)
    message = await versions_message(bot, "orders-db")
    assert "update strategy OnDelete" in message.all_text()

    await confirm(bot, message, f"rollback:to:{previous.number}", reason=None)
    await bot.slack.wait_for(
        lambda: "update strategy is *OnDelete*" in thread_text(bot, message), timeout=30
    )
    story = thread_text(bot, message)
    assert "Kubernetes replaces no pod" in story and "Delete them to bring 15.4 up" in story
    assert ":x:" not in story  # not told as a failure
    after = await demo_engine.history(ORDERS_DB)
    assert after.deployment.version == "15.4"  # the template is back

    def pod_versions() -> set[str]:
        pods = sb.registry.list(resources.PODS, "shop")
        return {
            p["metadata"]["labels"].get("app.kubernetes.io/version", "")
            for p in pods
            if p["metadata"]["name"].startswith("orders-db-")
        }

    assert demo_cluster.call(pod_versions) == {"15.6"}  # no pod was replaced


async def test_an_uncataloged_statefulset_is_named_by_kind(
    start_bot: StartBot,
) -> None:
    catalog = catalog_with_workloads()
    open_catalog = Catalog(
        services=catalog.services,
        uncataloged=UncatalogedPolicy(allowed_users=(DEFAULT_USER_ID,)),
    )
    t = await start_bot(open_catalog)
    message = await versions_message(t, "statefulset/shop/orders-db")
    assert "StatefulSet `shop/orders-db`" in message.all_text()
    reply = await t.sender.slash_command("/rollback", "pod/shop/orders-db-0")
    assert reply.status == 200
    refusal = await t.slack.wait_for(
        lambda: next(
            (
                m
                for m in t.slack.ephemerals(CHANNEL)
                if "is not a kind the bot rolls back" in m.all_text()
            ),
            None,
        )
    )
    assert refusal
