"""Every story finished when a replica dies: two `rollback-bot serve` processes against one
simulated cluster and one Slack stand-in. A rollback asked of replica A is finished by replica
B when A is killed (-9) or stopped (SIGTERM): the rollout is patched once, its outcome is told
once in the thread it was asked in, and the versions message gets its buttons back."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, SlackRequestSender
from rollback_sandbox.slack.web_api import FakeSlackWebApi, StoredMessage
from tests.serve_fixtures import ServeProcess, StartServe

CHANNEL = DEFAULT_CHANNEL_ID
LEASE_SECONDS = 3
CATALOG = """services:
  checkout:
    namespace: shop
    deployment: checkout
"""
OUTCOME = "rolled back to *2.13.0* in"


@pytest.fixture
def slow_cluster() -> Iterator[SandboxThread]:
    """The demo, with pods taking four seconds to become ready: a rollout lasts long enough
    to stop its replica in the middle of it."""
    with SandboxThread(seed="demo", speed=1.0, ready_after=4.0) as sandbox:
        yield sandbox


@pytest.fixture
def replicas(
    slow_cluster: SandboxThread, serve_processes: StartServe, tmp_path: Path
) -> Callable[[str], Awaitable[ServeProcess]]:
    """Start `rollback-bot serve` replicas of one bot by name (POD_NAME)."""
    kubeconfig = slow_cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    settings = {
        "KUBECONFIG": str(kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(catalog),
        "ROLLBACK_BOT_NAMESPACE": "shop",
        "ROLLBACK_BOT_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    return lambda name: serve_processes(name, settings)


def thread(slack: FakeSlackWebApi, message: StoredMessage) -> list[str]:
    return [m.all_text() for m in slack.thread(CHANNEL, message.ts)]


async def ask_and_confirm(
    slack: FakeSlackWebApi, sender: SlackRequestSender, replica: ServeProcess
) -> StoredMessage:
    """`/rollback checkout` and a confirmed click on "Roll back to 2.13.0", all sent to
    `replica`; returns the versions message once the rollout has started in its thread."""
    sender.events_url = replica.events_url
    assert (await sender.slash_command("/rollback", "checkout")).status == 200
    message = await slack.wait_for(
        lambda: next((m for m in slack.messages(CHANNEL) if m.buttons()), None), timeout=20
    )
    assert isinstance(message, StoredMessage)
    views_before = len(slack.views())
    assert (await sender.click(CHANNEL, message.ts, "rollback:to:2")).status == 200
    view: Any = await slack.wait_for(
        lambda: slack.views()[-1] if len(slack.views()) > views_before else None, timeout=20
    )
    assert (await sender.submit_view(view["id"], {"reason": "5xx after 2.14.0"})).status == 200
    await slack.wait_for(
        lambda: any("Rolling out" in text for text in thread(slack, message)), timeout=30
    )
    return message


async def the_story_ends_once(
    slack: FakeSlackWebApi, sandbox: SandboxThread, message: StoredMessage
) -> list[str]:
    """Waits for the outcome and for the versions message refreshed after it; checks the
    rollback was patched once and told once."""
    await slack.wait_for(
        lambda: any(OUTCOME in text for text in thread(slack, message)), timeout=60
    )
    outcome_at = next(
        m.posted_at for m in slack.thread(CHANNEL, message.ts) if OUTCOME in m.all_text()
    )

    def refreshed() -> StoredMessage | None:
        now = slack.message(CHANNEL, message.ts)
        return now if now is not None and now.versions[-1].at >= outcome_at else None

    final = await slack.wait_for(refreshed, timeout=30)
    assert isinstance(final, StoredMessage)
    assert final.buttons(), "the versions message is still locked"
    assert "is rolling back" not in final.all_text()
    assert "*Deployed now*\n2.13.0" in final.all_text()

    story = thread(slack, message)
    assert sum(OUTCOME in text for text in story) == 1
    assert not [t for t in story if "failed" in t or "Lost sight" in t], story
    patches = sandbox.faults.requests("PATCH", "/deployments/checkout")
    assert len(patches) == 1, patches
    return story


async def test_a_killed_replicas_rollback_is_finished_by_the_other(
    replicas: Callable[[str], Awaitable[ServeProcess]],
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slow_cluster: SandboxThread,
) -> None:
    a, b = await asyncio.gather(replicas("replica-a"), replicas("replica-b"))
    message = await ask_and_confirm(slack_api, slack_sender, a)

    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=10)

    story = await the_story_ends_once(slack_api, slow_cluster, message)
    picked = [t for t in story if "Picked up after replica" in t]
    assert len(picked) == 1 and "`replica-a` stopped" in picked[0]
    assert '"step": "taken_over"' in b.output() or '"step":"taken_over"' in b.output()


async def test_a_stopping_replica_hands_its_rollback_over_at_once(
    replicas: Callable[[str], Awaitable[ServeProcess]],
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slow_cluster: SandboxThread,
) -> None:
    a, _b = await asyncio.gather(replicas("replica-a"), replicas("replica-b"))
    message = await ask_and_confirm(slack_api, slack_sender, a)

    a.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(a.process.wait, 30) == 0

    story = await the_story_ends_once(slack_api, slow_cluster, message)
    handed = [t for t in story if "is stopping" in t]
    assert len(handed) == 1 and "`replica-a`" in handed[0]
    picked = [t for t in story if "Picked up after replica" in t]
    assert len(picked) == 1
    # Handed over, the pick-up comes before the rollout ends rather than after a Lease expires.
    assert story.index(picked[0]) < story.index(next(t for t in story if OUTCOME in t))


async def test_a_replica_restarted_under_its_name_finishes_its_own_rollback(
    replicas: Callable[[str], Awaitable[ServeProcess]],
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
    slow_cluster: SandboxThread,
) -> None:
    # One replica, killed (an OOM kill restarts the container in the same pod, same name).
    a = await replicas("replica-a")
    message = await ask_and_confirm(slack_api, slack_sender, a)
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=10)

    await replicas("replica-a")
    story = await the_story_ends_once(slack_api, slow_cluster, message)
    assert len([t for t in story if "Picked up after replica `replica-a`" in t]) == 1
