"""A record that outlives Events and the bot's processes: a rollback asked in Slack of one
`rollback-bot serve` process, that process stopped, the cluster's Events deleted, and the story
read back from another process (`/rollback audit`, for the asker only) and from the CLI
(`rollback-bot audit`), which writes to the same store when it rolls back; the audit channel
gets one line with a link to the thread."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID, SlackRequestSender
from rollback_sandbox.slack.web_api import GENERAL_CHANNEL_ID, FakeSlackWebApi, StoredMessage
from tests.cluster_fixtures import Kubectl, find_kubectl
from tests.serve_fixtures import ServeProcess, StartServe

CHANNEL = DEFAULT_CHANNEL_ID
AUDIT_CHANNEL = GENERAL_CHANNEL_ID
BOT_NAMESPACE = "rollback-bot"
OUTCOME = "rolled back to *2.13.0* in"


@dataclass
class World:
    sandbox: SandboxThread
    kubeconfig: Path
    catalog: Path
    kubectl: Kubectl


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The demo cluster (checkout 2.14.0 on top of 2.13.0), the bot's own namespace, and a
    catalog naming who may roll checkout back and the audit channel."""
    with SandboxThread(seed="demo", speed=40) as sandbox:
        kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")
        kubectl = Kubectl(find_kubectl(), kubeconfig, tmp_path / "kube-cache")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BOT_NAMESPACE}}
        kubectl("create", "--validate=false", "-f", "-", stdin=json.dumps(namespace))
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(
            "services:\n"
            "  checkout: {namespace: shop, deployment: checkout, "
            f"allowed_users: [{DEFAULT_USER_ID}]}}\n"
            f"audit_channel: {AUDIT_CHANNEL}\n"
        )
        yield World(sandbox, kubeconfig, catalog, kubectl)


def cli(
    world: World, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        "KUBECONFIG": str(world.kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(world.catalog),
        "ROLLBACK_BOT_NAMESPACE": BOT_NAMESPACE,
        "ROLLBACK_BOT_AUDIT_FILE": str(world.kubeconfig.parent / "cli-audit.jsonl"),
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "250",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


StartBot = Callable[[str], Awaitable[ServeProcess]]


@pytest.fixture
def serve(world: World, serve_processes: StartServe) -> StartBot:
    """`rollback-bot serve` processes of this world's bot, by replica name."""
    settings = {
        "KUBECONFIG": str(world.kubeconfig),
        "ROLLBACK_BOT_CONFIG": str(world.catalog),
        "ROLLBACK_BOT_NAMESPACE": BOT_NAMESPACE,
    }
    return lambda name: serve_processes(name, settings)


def thread(slack: FakeSlackWebApi, message: StoredMessage) -> str:
    return "\n".join(m.all_text() for m in slack.thread(CHANNEL, message.ts))


async def roll_back_in_slack(slack: FakeSlackWebApi, sender: SlackRequestSender) -> StoredMessage:
    assert (await sender.slash_command("/rollback", "checkout")).status == 200
    message = await slack.wait_for(
        lambda: next((m for m in slack.messages(CHANNEL) if m.buttons()), None), timeout=20
    )
    assert isinstance(message, StoredMessage)
    assert (await sender.click(CHANNEL, message.ts, "rollback:to:2")).status == 200
    view: Any = await slack.wait_for(lambda: next(reversed(slack.views()), None), timeout=20)
    assert (await sender.submit_view(view["id"], {"reason": "5xx after 2.14.0"})).status == 200
    await slack.wait_for(lambda: OUTCOME in thread(slack, message), timeout=30)
    return message


async def ask_audit(
    slack: FakeSlackWebApi, sender: SlackRequestSender, text: str, user: str
) -> str:
    """`/rollback audit …` as `user`; what they alone were answered."""
    before = len(slack.ephemerals(CHANNEL, user))
    assert (await sender.slash_command("/rollback", text, user_id=user)).status == 200
    answers = await slack.wait_for(lambda: slack.ephemerals(CHANNEL, user)[before:], timeout=20)
    return "\n".join(m.all_text() for m in answers)


async def test_the_story_is_read_back_after_a_restart_and_with_the_events_gone(
    world: World,
    serve: StartBot,
    slack_api: FakeSlackWebApi,
    slack_sender: SlackRequestSender,
) -> None:
    # Left from long ago: the bot deletes it at start (retention, 90 days by default).
    old_day = datetime.now(UTC).date() - timedelta(days=120)
    old = f"rollback-bot-audit-{old_day:%Y%m%d}-0.shop.checkout"
    old_labels = {
        "app.kubernetes.io/name": "rollback-bot",
        "app.kubernetes.io/component": "audit",
        "rollback-bot.io/audit-day": f"{old_day:%Y-%m-%d}",
    }
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": old, "namespace": BOT_NAMESPACE, "labels": old_labels},
        "data": {},
    }
    world.kubectl("create", "--validate=false", "-f", "-", stdin=json.dumps(manifest))

    first = await serve("replica-a")

    def names() -> list[str]:
        found = world.kubectl("get", "configmaps", "-n", BOT_NAMESPACE, "-o", "json").stdout
        return [item["metadata"]["name"] for item in json.loads(found)["items"]]

    await slack_api.wait_for(lambda: old not in names(), timeout=20, interval=0.2)

    slack_sender.events_url = first.events_url
    message = await roll_back_in_slack(slack_api, slack_sender)

    # The audit channel: one line, linking to the thread the story is in.
    line = await slack_api.wait_for(
        lambda: [m.all_text() for m in slack_api.messages(AUDIT_CHANNEL)], timeout=20
    )
    assert len(line) == 1
    assert f"<@{DEFAULT_USER_ID}> rolled back *checkout* (`shop/checkout`)" in line[0]
    assert "2.14.0 → 2.13.0 via Slack · reason: 5xx after 2.14.0" in line[0]
    link = f"/archives/{CHANNEL}/p{message.ts.replace('.', '')}|thread>"
    assert link in line[0]

    first.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.process.wait, 30) == 0
    world.kubectl("delete", "events", "--all", "-n", "shop")
    events = world.kubectl("get", "events", "-n", "shop", "-o", "json").stdout
    assert json.loads(events)["items"] == []

    second = await serve("replica-b")
    slack_sender.events_url = second.events_url
    answer = await ask_audit(slack_api, slack_sender, "audit checkout --since 1d", DEFAULT_USER_ID)
    assert "Audit trail of *checkout* (`shop/checkout`), last 1d" in answer
    steps = [s for s in ("succeeded", "started", "confirmed", "asked") if f"`{s}`" in answer]
    assert steps == ["succeeded", "started", "confirmed", "asked"]
    # Newest first.
    assert answer.index("`succeeded`") < answer.index("`started`") < answer.index("`asked`")
    assert "reason: 5xx after 2.14.0" in answer
    # Only to the asker: nothing new in the channel.
    assert not any("Audit trail" in m.all_text() for m in slack_api.messages(CHANNEL))

    # Someone who may not roll checkout back may not read its record either (and is recorded).
    eve = slack_api.add_user("eve")
    refused = await ask_audit(slack_api, slack_sender, "audit checkout", eve)
    assert "Not shown" in refused and "`succeeded`" not in refused
    bad = await ask_audit(slack_api, slack_sender, "audit checkout --since forever", eve)
    assert "not a time back" in bad and "/rollback audit SERVICE [--since 7d]" in bad

    # The CLI reads the same store; its own rollback lands there too.
    result = cli(world, "audit", "checkout", "-o", "json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert records[0]["step"] == "denied" and records[0]["actor"] == eve
    slack_steps = [r["step"] for r in records if r["via"] == "Slack" and r["actor"] != eve]
    assert slack_steps[0] == "succeeded" and slack_steps[-1] == "asked"
    assert {"confirmed", "started"} <= set(slack_steps)

    rolled = cli(world, "rollback", "checkout", "--yes", "--reason", "2.13.0 is worse")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "warning" not in rolled.stderr
    table = cli(world, "audit", "checkout", "--since", "2h")
    assert table.returncode == 0, table.stderr
    rows = [r for r in table.stdout.splitlines() if " CLI " in r or "Slack" in r]
    assert "succeeded" in rows[0] and "CLI" in rows[0] and "2.13.0 → 2.14.0" in rows[0]
    assert any("succeeded" in r and "Slack" in r for r in rows[1:])


async def test_a_cli_user_without_rights_on_the_bots_namespace_keeps_the_local_file(
    world: World,
) -> None:
    world.sandbox.faults.fail_next(1000, 403, path_contains=f"/namespaces/{BOT_NAMESPACE}/")
    result = cli(world, "rollback", "checkout", "--yes", "--reason", "5xx")
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    local = world.kubeconfig.parent / "cli-audit.jsonl"
    assert f"the audit trail is kept in {local} only" in warnings[0]
    steps = [json.loads(line)["step"] for line in local.read_text().splitlines()]
    assert steps[0] == "confirmed" and steps[-1] == "succeeded"
    # Nothing was written to the bot's namespace, and only one attempt was made.
    assert len(world.sandbox.faults.requests(path_contains=f"/namespaces/{BOT_NAMESPACE}/")) == 1

    read = cli(world, "audit", "checkout")
    assert read.returncode == 1
    assert read.stderr.startswith("error: reading the audit trail of shop/checkout")
    assert f"list, create, update and delete on configmaps in namespace {BOT_NAMESPACE}" in (
        read.stderr
    )
