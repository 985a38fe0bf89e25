"""Argo Rollouts end to end: signed Slack requests → the bot → the simulated cluster's Rollout
controller, and the CLI as a subprocess. An abort mid-canary (the fast path back to stable), and
an undo to an older revision, each as the `kubectl argo rollouts` plugin does them."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config.catalog import ServiceEntry
from bot.domain.rollback.models import Target, WorkloadKind
from bot.usecases.rollback.engine import RollbackEngine
from rollback_sandbox.cluster import resources
from rollback_sandbox.cluster.seed import payments_canary
from rollback_sandbox.cluster.threaded import SandboxThread
from rollback_sandbox.slack.requests import DEFAULT_CHANNEL_ID
from tests.bot_fixtures import BotUnderTest, StartBot, demo_catalog
from tests.integration.test_cli import cli
from tests.integration.test_slack_rollback import confirm, thread_text
from tests.integration.test_slack_workloads import versions_message

CHANNEL = DEFAULT_CHANNEL_ID
NAME = "payments-canary"
PAYMENTS = Target("shop", NAME, kind=WorkloadKind.ROLLOUT)


def deploy(sandbox: SandboxThread, version: str, *, hold: bool) -> None:
    """A new version of the Rollout, as `kubectl apply` would change it; `hold`: its canary
    stops at 20% on an indefinite pause, so it is still in progress when asked about."""
    sb = sandbox.sandbox
    wanted = payments_canary(version, "#9001")

    def apply() -> None:
        live = sb.registry.get(resources.ROLLOUTS, "shop", NAME)
        new = copy.deepcopy(live)
        new["spec"]["template"] = wanted["spec"]["template"]
        if hold:
            new["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 20}, {"pause": {}}]
        new["metadata"]["annotations"].update(wanted["metadata"]["annotations"])
        sb.registry.update(resources.ROLLOUTS, "shop", NAME, new)

    sandbox.call(apply)


def rollout(sandbox: SandboxThread) -> dict[str, Any]:
    sb = sandbox.sandbox
    found: dict[str, Any] = sandbox.call(
        lambda: copy.deepcopy(sb.registry.get(resources.ROLLOUTS, "shop", NAME))
    )
    return found


def replicasets(sandbox: SandboxThread) -> dict[str, dict[str, Any]]:
    sb = sandbox.sandbox
    listed = sandbox.call(lambda: copy.deepcopy(sb.registry.list(resources.REPLICASETS, "shop")))
    return {
        rs["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]: rs
        for rs in listed
        if rs["metadata"]["name"].startswith(f"{NAME}-")
    }


@pytest.fixture
async def bot(start_bot: StartBot) -> BotUnderTest:
    catalog = demo_catalog(
        payments=ServiceEntry.model_validate({"namespace": "shop", "kind": "Rollout", "name": NAME})
    )
    return await start_bot(catalog)


async def test_abort_mid_canary_from_slack_sends_the_traffic_back_to_stable(
    bot: BotUnderTest, demo_cluster: SandboxThread, demo_engine: RollbackEngine
) -> None:
    deploy(demo_cluster, "2.4.0", hold=True)

    def paused() -> bool:
        status = rollout(demo_cluster).get("status") or {}
        return status.get("phase") == "Paused"

    await bot.slack.wait_for(paused, timeout=20)
    message = await versions_message(bot, "payments")
    text = message.all_text()
    assert "Paused" in text and "stable *2.3.0*" in text and "canary *2.4.0*" in text
    abort = message.button("rollback:abort")
    assert abort["text"]["text"] == "Abort: back to 2.3.0"

    await confirm(bot, message, "rollback:abort", reason="checkout errors on the canary")
    await bot.slack.wait_for(
        lambda: "rolled back to *2.3.0*" in thread_text(bot, message), timeout=30
    )
    story = thread_text(bot, message)
    assert "aborted the update of *payments*" in story and "checkout errors" in story
    status = rollout(demo_cluster)["status"]
    assert status["abort"] is True and status["phase"] == "Degraded"
    by_version = replicasets(demo_cluster)
    assert by_version["2.4.0"]["spec"]["replicas"] == 0  # the canary is gone
    assert by_version["2.3.0"]["status"]["availableReplicas"] == 5  # the stable serves all
    # The plugin's abort touches the status only: the template still says 2.4.0.
    assert (await demo_engine.status(PAYMENTS)).version == "2.4.0"


async def test_undo_from_slack_brings_an_older_revision_back_through_its_steps(
    bot: BotUnderTest, demo_cluster: SandboxThread, demo_engine: RollbackEngine
) -> None:
    before = await demo_engine.history(PAYMENTS)
    assert before.deployment.version == "2.3.0"
    older = next(r for r in before.revisions if r.version == "2.2.0")
    message = await versions_message(bot, "payments")
    assert "Healthy" in message.all_text()
    assert all(b["action_id"] != "rollback:abort" for b in message.buttons())  # nothing to abort

    await confirm(bot, message, f"rollback:to:{older.number}", reason=None)
    await bot.slack.wait_for(
        lambda: "rolled back to *2.2.0*" in thread_text(bot, message), timeout=60
    )
    after = await demo_engine.history(PAYMENTS)
    assert after.deployment.version == "2.2.0"
    assert after.current is not None and after.current.replicaset == older.replicaset  # reused
    assert after.current.number > before.deployment.revision  # type: ignore[operator]
    assert rollout(demo_cluster)["status"]["phase"] == "Healthy"


@pytest.fixture
def demo_cli(tmp_path: Path) -> Iterator[tuple[SandboxThread, Path]]:
    with SandboxThread(seed="demo", speed=40) as sandbox:
        (tmp_path / "catalog.yaml").write_text(
            f"services:\n  payments: {{namespace: shop, kind: Rollout, name: {NAME}}}\n"
        )
        yield sandbox, sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def test_the_cli_aborts_a_canary_and_refuses_when_nothing_is_in_progress(
    demo_cli: tuple[SandboxThread, Path],
) -> None:
    sandbox, kubeconfig = demo_cli
    idle = cli(kubeconfig, "abort", "payments", "--yes")
    assert idle.returncode == 3, idle.stdout + idle.stderr
    assert "nothing to abort" in idle.stdout + idle.stderr

    deploy(sandbox, "2.4.0", hold=True)
    deadline = time.monotonic() + 20
    while (rollout(sandbox).get("status") or {}).get("phase") != "Paused":
        assert time.monotonic() < deadline, rollout(sandbox).get("status")
        time.sleep(0.05)
    result = cli(kubeconfig, "abort", "payments", "--yes", "--reason", "canary errors")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "aborted the update of payments: its traffic is back on 2.3.0" in result.stdout
    assert replicasets(sandbox)["2.4.0"]["spec"]["replicas"] == 0


def test_the_cli_undoes_a_rollout_to_a_revision(demo_cli: tuple[SandboxThread, Path]) -> None:
    _sandbox, kubeconfig = demo_cli
    history = json.loads(cli(kubeconfig, "history", "payments", "--output", "json").stdout)
    assert history["kind"] == "Rollout"
    older = next(r for r in history["revisions"] if r["version"] == "2.1.0")
    result = cli(
        kubeconfig, "rollback", "rollout/shop/payments-canary", "--to-revision",
        str(older["revision"]), "--yes", "--timeout", "60s",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rolled back payments to 2.1.0" in result.stdout
    status = json.loads(cli(kubeconfig, "status", "payments", "--output", "json").stdout)
    assert status["version"] == "2.1.0"
    missing = cli(kubeconfig, "rollback", "payments", "--to-revision", "77", "--yes")
    assert missing.returncode == 3
    assert "unable to find specified revision 77" in missing.stdout + missing.stderr
