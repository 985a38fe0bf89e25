"""The watch of a namespace's Deployments (automatic rollback's one watch per namespace)
against the simulated cluster over real HTTP with the official client: every Deployment first,
then each change, a deletion as a change to nothing; it never gives up: a dropped watch
resumes, an expired one lists again, a cluster that cannot be read is tried again.

And the watch of one Deployment (a rollback's progress), which shares its events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from bot.adapters.kube.client import KubeClient
from bot.adapters.kube.deployments import Deployments
from bot.domain.errors import NotFound
from bot.domain.rollback.models import Deployment, DeploymentChange
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.integration.deploys import FIRST_VERSION, deploy

NAMESPACE = "default"
WAIT = 10.0


class Seen:
    """The changes a watch yields, read in the background as they come."""

    def __init__(self, changes: AsyncGenerator[DeploymentChange, None]) -> None:
        self.changes = changes
        self.all: list[DeploymentChange] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for change in self.changes:
                self.all.append(change)
                self._arrived.set()
        finally:
            self._arrived.set()  # a watch that gave up wakes the waiter, which raises its error

    async def until(self, wanted: Callable[[DeploymentChange], bool], *, after: int = 0) -> int:
        """The index of the first change from `after` on that is `wanted`, once it came."""
        async with asyncio.timeout(WAIT):
            while True:
                for index in range(after, len(self.all)):
                    if wanted(self.all[index]):
                        return index
                if self._task.done():
                    self._task.result()  # the watch gave up: its error, not a timeout
                    raise AssertionError("the watch ended")
                self._arrived.clear()
                await self._arrived.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task  # an error of the watch was the test's to report
        await self.changes.aclose()


@pytest.fixture
async def kube(sandbox: SandboxThread, tmp_path: Path) -> AsyncIterator[KubeClient]:
    kubeconfig = str(sandbox.write_kubeconfig(tmp_path / "watch.kubeconfig"))
    client = KubeClient.from_kubeconfig(kubeconfig, None, request_timeout=2)
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def watching(kube: KubeClient) -> AsyncIterator[Callable[[], Seen]]:
    started: list[Seen] = []

    def start() -> Seen:
        seen = Seen(Deployments(kube).watch_namespace(NAMESPACE))
        started.append(seen)
        return seen

    yield start
    for seen in started:
        await seen.close()


def at(name: str, version: str) -> Callable[[DeploymentChange], bool]:
    def wanted(change: DeploymentChange) -> bool:
        return (
            change.name == name
            and change.deployment is not None
            and change.deployment.version == version
            and change.deployment.revision is not None
        )

    return wanted


def deleted(name: str) -> Callable[[DeploymentChange], bool]:
    return lambda change: change.name == name and change.deployment is None


def listings(sandbox: SandboxThread) -> list[str]:
    return [p for p in sandbox.faults.requests("GET", "/deployments") if "watch=true" not in p]


async def until(found: Callable[[], object], what: str) -> None:
    """Wait for `found()` to be truthy: the sandbox's state, read from its own thread."""
    deadline = time.monotonic() + WAIT
    while not found():
        assert time.monotonic() < deadline, f"not within {WAIT:g} s: {what}"
        await asyncio.sleep(0.01)


async def watch_open(sandbox: SandboxThread) -> None:
    """Once the watch after the list was asked for (the list was yielded before)."""
    await until(lambda: sandbox.faults.requests("GET", "watch=true"), "the watch asked for")


async def drop_watch(sandbox: SandboxThread) -> None:
    """End the open watch as a restarting API server would (once it is open)."""
    await until(lambda: sandbox.faults.drop_watches(), "an open watch dropped")


async def delete(http: aiohttp.ClientSession, sandbox: SandboxThread, name: str) -> None:
    url = f"{sandbox.url}/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"
    async with http.delete(url) as answer:
        assert answer.status == 200, await answer.text()


async def test_every_deployment_is_listed_then_each_change_and_deletion_follows(
    sandbox: SandboxThread, http: aiohttp.ClientSession, watching: Callable[[], Seen]
) -> None:
    await deploy(http, sandbox, NAMESPACE, "checkout", FIRST_VERSION)
    await deploy(http, sandbox, NAMESPACE, "cart", FIRST_VERSION)
    seen = watching()
    await seen.until(at("checkout", FIRST_VERSION))
    await seen.until(at("cart", FIRST_VERSION))
    # The list came first: both, before any change of theirs.
    assert {change.name for change in seen.all[:2]} == {"checkout", "cart"}
    assert all(isinstance(change.deployment, Deployment) for change in seen.all[:2])

    listed = len(seen.all)
    await deploy(http, sandbox, NAMESPACE, "checkout", "1.1.0")
    found = await seen.until(at("checkout", "1.1.0"), after=listed)
    change = seen.all[found].deployment
    assert change is not None and change.namespace == NAMESPACE
    # The controller gives the new template the next revision.
    last = await seen.until(
        lambda c: (
            at("checkout", "1.1.0")(c) and c.deployment is not None and c.deployment.revision == 2
        ),
        after=found,
    )

    await delete(http, sandbox, "cart")
    gone = await seen.until(deleted("cart"), after=last)
    assert seen.all[gone] == DeploymentChange("cart", None)
    # A Deployment created after the list arrives too.
    await deploy(http, sandbox, NAMESPACE, "payments", FIRST_VERSION)
    await seen.until(at("payments", FIRST_VERSION), after=gone)


async def test_an_empty_namespace_yields_nothing_until_a_deployment_comes(
    sandbox: SandboxThread, http: aiohttp.ClientSession, watching: Callable[[], Seen]
) -> None:
    seen = watching()
    # The watch is asked for once the list was yielded: nothing was.
    await watch_open(sandbox)
    assert seen.all == []
    await deploy(http, sandbox, NAMESPACE, "checkout", FIRST_VERSION)
    first = await seen.until(lambda change: change.name == "checkout")
    assert first == 0


async def test_a_dropped_watch_resumes_where_it_was(
    sandbox: SandboxThread, http: aiohttp.ClientSession, watching: Callable[[], Seen]
) -> None:
    await deploy(http, sandbox, NAMESPACE, "checkout", FIRST_VERSION)
    seen = watching()
    listed = await seen.until(at("checkout", FIRST_VERSION))
    await drop_watch(sandbox)
    await deploy(http, sandbox, NAMESPACE, "checkout", "1.1.0")
    await seen.until(at("checkout", "1.1.0"), after=listed + 1)
    # Resumed from its resourceVersion: watched again, not listed again.
    assert len(sandbox.faults.requests("GET", "watch=true")) >= 2
    assert len(listings(sandbox)) == 1


async def test_an_expired_watch_lists_every_deployment_again(
    sandbox: SandboxThread, http: aiohttp.ClientSession, watching: Callable[[], Seen]
) -> None:
    await deploy(http, sandbox, NAMESPACE, "checkout", FIRST_VERSION)
    await deploy(http, sandbox, NAMESPACE, "cart", FIRST_VERSION)
    seen = watching()
    await seen.until(at("cart", FIRST_VERSION))
    # The watch drops and cannot come back for a while; meanwhile checkout changes and the
    # server forgets its history: resuming is answered 410 Gone, and the watch lists again.
    await watch_open(sandbox)  # asked for before the failures below
    sandbox.faults.fail_next(1000, status=503, method="GET", path_contains="watch=true")
    await drop_watch(sandbox)
    await until(lambda: sandbox.faults.injected, "the watch asked again, and refused")
    before = len(seen.all)
    await deploy(http, sandbox, NAMESPACE, "checkout", "1.1.0")
    sandbox.faults.compact_history()
    sandbox.faults.clear()
    await seen.until(at("checkout", "1.1.0"), after=before)
    # Listed again: cart once more, though it did not change.
    await seen.until(at("cart", FIRST_VERSION), after=before)
    assert len(listings(sandbox)) == 2


async def test_a_cluster_that_cannot_be_read_is_listed_again_without_giving_up(
    sandbox: SandboxThread, http: aiohttp.ClientSession, watching: Callable[[], Seen]
) -> None:
    await deploy(http, sandbox, NAMESPACE, "checkout", FIRST_VERSION)
    sandbox.faults.fail_next(2, status=503, method="GET", path_contains="/deployments")
    sandbox.faults.fail_next(1, status=403, method="GET", path_contains="/deployments")
    seen = watching()
    await seen.until(at("checkout", FIRST_VERSION))
    assert sandbox.faults.injected == 3
    assert len(listings(sandbox)) == 4


async def test_a_watch_refused_by_the_cluster_is_asked_again_without_giving_up(
    sandbox: SandboxThread, http: aiohttp.ClientSession, watching: Callable[[], Seen]
) -> None:
    await deploy(http, sandbox, NAMESPACE, "checkout", FIRST_VERSION)
    seen = watching()
    listed = await seen.until(at("checkout", FIRST_VERSION))
    await watch_open(sandbox)  # asked for before the failures below
    sandbox.faults.fail_next(2, status=500, method="GET", path_contains="watch=true")
    await drop_watch(sandbox)
    await deploy(http, sandbox, NAMESPACE, "checkout", "1.1.0")
    await seen.until(at("checkout", "1.1.0"), after=listed + 1)
    assert sandbox.faults.injected == 2


# -- the watch of one Deployment ---------------------------------------------------------------


async def test_the_watch_of_one_deployment_follows_it_alone_and_ends_when_it_is_deleted(
    sandbox: SandboxThread, http: aiohttp.ClientSession, kube: KubeClient
) -> None:
    await deploy(http, sandbox, NAMESPACE, "checkout", FIRST_VERSION)
    await deploy(http, sandbox, NAMESPACE, "cart", FIRST_VERSION)
    seen: list[Deployment] = []
    arrived = asyncio.Event()

    async def follow() -> None:
        async for deployment in Deployments(kube).watch(NAMESPACE, "checkout"):
            seen.append(deployment)
            arrived.set()

    task = asyncio.create_task(follow())
    try:
        async with asyncio.timeout(WAIT):
            while not any(d.version == FIRST_VERSION for d in seen):
                arrived.clear()
                await arrived.wait()
        await deploy(http, sandbox, NAMESPACE, "cart", "1.1.0")
        await deploy(http, sandbox, NAMESPACE, "checkout", "1.1.0")
        async with asyncio.timeout(WAIT):
            while not any(d.version == "1.1.0" for d in seen):
                arrived.clear()
                await arrived.wait()
        assert {d.name for d in seen} == {"checkout"}
        await delete(http, sandbox, "checkout")
        with pytest.raises(NotFound, match="was deleted"):
            async with asyncio.timeout(WAIT):
                await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, NotFound):
            await task


async def test_the_watch_of_a_deployment_that_does_not_exist_says_so(kube: KubeClient) -> None:
    changes = Deployments(kube).watch(NAMESPACE, "nowhere")
    with pytest.raises(NotFound, match="deployment not found"):
        async with asyncio.timeout(WAIT):
            await anext(changes)
    await changes.aclose()
