"""The client layer under load: watches (one per running rollout) never starve the other calls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.kube.client import WORKER_THREADS, KubeClient
from bot.domain.errors import NotFound
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.cluster_fixtures import Kubectl
from tests.integration.kube_history import build_history


@pytest.fixture
async def kube(sandbox: SandboxThread, tmp_path: Path) -> AsyncIterator[KubeClient]:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "client.kubeconfig", namespace="apps")
    client = KubeClient.from_kubeconfig(str(kubeconfig), None, request_timeout=5)
    yield client
    await client.close()


async def test_more_watches_than_workers_leave_room_for_every_other_call(
    kube: KubeClient, kubectl: Kubectl
) -> None:
    build_history(kubectl, "apps")
    watching = asyncio.Event()
    open_watches = 0
    query = [("fieldSelector", "metadata.name=web"), ("watch", "true"), ("timeoutSeconds", "60")]

    async def follow() -> None:
        nonlocal open_watches
        stream = kube.lines(
            "watching", "/apis/apps/v1/namespaces/apps/deployments", query, seconds=60
        )
        async with contextlib.aclosing(stream) as events:
            async for _event in events:  # the first event: this watch holds its thread now
                open_watches += 1
                if open_watches == WORKER_THREADS + 4:
                    watching.set()
                await asyncio.Event().wait()  # and keeps it, as a long rollout does

    followers = [asyncio.create_task(follow()) for _ in range(WORKER_THREADS + 4)]
    try:
        await asyncio.wait_for(watching.wait(), timeout=30)
        # A Lease renewal or a /readyz ping while all those rollouts are followed.
        version = await asyncio.wait_for(kube.request("ping", "GET", "/version"), timeout=10)
        assert version.get("gitVersion")
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)


async def test_an_object_of_the_bots_own_not_made_yet_is_not_counted_as_an_api_error(
    sandbox: SandboxThread, tmp_path: Path
) -> None:
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "count.kubeconfig", namespace="apps")
    errors: list[str] = []
    client = KubeClient.from_kubeconfig(
        str(kubeconfig), None, request_timeout=5, on_error=errors.append
    )
    path = "/api/v1/namespaces/default/configmaps/rollback-bot-approvals"
    try:
        with pytest.raises(NotFound):
            await client.request("reading", "GET", path, missing_ok=True)
        assert errors == []
        with pytest.raises(NotFound):
            await client.request("reading", "GET", path)
        assert errors == ["404"]
    finally:
        await client.close()
