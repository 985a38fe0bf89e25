"""Two bot replicas of the rollback lock against the simulated cluster: each its own client
layer and its own monotonic clock, driven by the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.kube.client import KubeClient
from bot.adapters.kube.leases import Leases
from bot.domain.rollback.models import RunInfo
from rollback_sandbox.cluster.threaded import SandboxThread

NAMESPACE = "default"
DEPLOYMENT = "checkout"
SECONDS = 30


def run_of(actor: str) -> RunInfo:
    return RunInfo(
        service="checkout",
        actor=actor,
        from_version="1.2",
        to_version="1.1",
        to_revision=2,
        started_at=datetime.now(UTC).replace(microsecond=0),
    )


class Clock:
    """A replica's monotonic clock, moved on by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Replica:
    me: str
    kube: KubeClient
    clock: Clock
    leases: Leases

    async def acquire(self, seconds: int = SECONDS) -> RunInfo | None:
        return await self.leases.acquire_lock(
            NAMESPACE, DEPLOYMENT, self.me, run_of(self.me), seconds
        )

    async def renew(self) -> None:
        await self.leases.renew_lock(NAMESPACE, DEPLOYMENT, self.me)

    async def release(self) -> None:
        await self.leases.release_lock(NAMESPACE, DEPLOYMENT, self.me)


@pytest.fixture
async def replicas(
    sandbox: SandboxThread, tmp_path: Path
) -> AsyncIterator[tuple[Replica, Replica]]:
    kubeconfig = str(sandbox.write_kubeconfig(tmp_path / "leases.kubeconfig"))
    built: list[Replica] = []
    for me in ("bot-a", "bot-b"):
        kube = KubeClient.from_kubeconfig(kubeconfig, None, request_timeout=2)
        clock = Clock()
        built.append(Replica(me, kube, clock, Leases(kube, clock=clock)))
    yield built[0], built[1]
    for replica in built:
        await replica.kube.close()
