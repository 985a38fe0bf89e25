"""The groupKey → Slack message index in a ConfigMap, over real HTTP with the official client,
against the simulated cluster: claims, races between replicas, expiry, pruning, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.kube.client import KubeClient, load_api_client
from bot.adapters.kube.configmaps import DEFAULT_NAME, ConfigMapDocument
from bot.domain.alerts.index import POSTING_TTL, AlertMessageEntry, ClaimOutcome, entry_key
from bot.domain.errors import ClusterError, Conflict
from bot.domain.rollback.models import JsonDict
from bot.usecases.alerts.index import AlertIndex
from rollback_sandbox.cluster.threaded import SandboxThread

GROUP = '{}:{alertname="HighErrorRate", service="checkout"}'
NAMESPACE = "default"


class Clock:
    """A clock the test moves: expiry and pruning without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Observed:
    """The ConfigMap document as a replica uses it, counting the writes that lost a race."""

    def __init__(self, document: ConfigMapDocument) -> None:
        self._document = document
        self.conflicts = 0

    @property
    def where(self) -> str:
        return self._document.where

    async def read(self, what: str) -> JsonDict | None:
        return await self._document.read(what)

    async def write(self, what: str, version: str | None, data: dict[str, str]) -> str:
        try:
            return await self._document.write(what, version, data)
        except Conflict:
            self.conflicts += 1
            raise


@dataclass
class Replica:
    index: AlertIndex
    document: Observed


ReplicaFactory = Callable[..., Replica]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kubeconfig(sandbox: SandboxThread, tmp_path: Path) -> Path:
    return sandbox.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)


@pytest.fixture
async def replicas(kubeconfig: Path, clock: Clock) -> AsyncIterator[ReplicaFactory]:
    """Builds indexes as separate bot replicas would: each its own client layer and threads."""
    made: list[KubeClient] = []

    def make(
        *, request_timeout: float = 2.0, namespace: str = NAMESPACE, **options: Any
    ) -> Replica:
        options.setdefault("clock", clock)
        kube = KubeClient.from_kubeconfig(str(kubeconfig), None, request_timeout=request_timeout)
        made.append(kube)
        document = Observed(ConfigMapDocument(kube, namespace))
        return Replica(AlertIndex(document, **options), document)

    yield make
    for kube in made:
        await kube.close()


def configmap(kubeconfig: Path) -> dict[str, Any]:
    """The ConfigMap as the API serves it, read with a separate client."""
    from kubernetes import client

    api: Any = load_api_client(str(kubeconfig), None)
    try:
        core: Any = client.CoreV1Api(api)
        response = core.read_namespaced_config_map(
            DEFAULT_NAME, NAMESPACE, _preload_content=False, _request_timeout=2
        )
        data: dict[str, Any] = json.loads(response.data)
        return data
    finally:
        api.close()


def stored_entries(kubeconfig: Path) -> list[AlertMessageEntry]:
    """Every entry the ConfigMap holds, oldest first."""
    data = configmap(kubeconfig).get("data") or {}
    entries = [e for v in data.values() if (e := AlertMessageEntry.decode(v)) is not None]
    return sorted(entries, key=lambda e: e.first_seen)


async def test_claim_post_record_then_update(replicas: ReplicaFactory, kubeconfig: Path) -> None:
    store = replicas().index
    assert await store.lookup(GROUP) is None
    first = await store.claim(GROUP, "C0SHOP")
    assert first.outcome is ClaimOutcome.POST and first.token
    assert (await store.claim(GROUP, "C0SHOP")).outcome is ClaimOutcome.BUSY
    assert await store.record_posted(GROUP, "1764216000.000100", token=first.token)
    again = await store.claim(GROUP, "C0ELSEWHERE")
    assert again.outcome is ClaimOutcome.UPDATE
    assert (again.channel, again.ts) == ("C0SHOP", "1764216000.000100")

    stored = configmap(kubeconfig)
    assert stored["metadata"]["labels"]["app.kubernetes.io/component"] == "alert-messages"
    value = json.loads(stored["data"][entry_key(GROUP)])
    assert value == {
        "groupKey": GROUP,
        "channel": "C0SHOP",
        "ts": "1764216000.000100",
        "status": "firing",
        "firstSeen": "2026-11-27T04:00:00Z",
        "updated": "2026-11-27T04:00:00Z",
    }


async def test_two_replicas_racing_for_one_group_post_once(
    replicas: ReplicaFactory, kubeconfig: Path
) -> None:
    first, second = replicas(), replicas()
    one, two = first.index, second.index
    raced: list[str] = []
    # Each replica batches what arrives together into one write, so two replicas' writes may
    # happen not to overlap on a given run: rounds go on until one write lost a race (409).
    for round_ in range(6):
        groups = [f'{{}}:{{alertname="A{round_}-{i}"}}' for i in range(12)]
        raced.extend(groups)
        claims = await asyncio.gather(
            *(store.claim(g, "C0SHOP") for g in groups for store in (one, two, one, two))
        )
        for i, group in enumerate(groups):
            outcomes = [c.outcome for c in claims[i * 4 : i * 4 + 4]]
            assert outcomes.count(ClaimOutcome.POST) == 1, (group, outcomes)
            assert outcomes.count(ClaimOutcome.BUSY) == 3
        if first.document.conflicts + second.document.conflicts > 0:
            break
    # The races were real: some writes lost with 409 and were decided again.
    assert first.document.conflicts + second.document.conflicts > 0
    entries = stored_entries(kubeconfig)
    assert sorted(e.group_key for e in entries) == sorted(raced)


async def test_an_injected_conflict_is_retried(
    replicas: ReplicaFactory, sandbox: SandboxThread
) -> None:
    store = replicas().index
    await store.claim("warm-up", "C")  # the ConfigMap exists: the next write is a PUT
    sandbox.faults.fail_next(2, 409, method="PUT", path_contains="configmaps")
    claim = await store.claim(GROUP, "C0SHOP")
    assert claim.must_post
    assert sandbox.faults.injected == 2
    assert (await store.lookup(GROUP)) is not None


async def test_a_replica_that_died_after_claiming_does_not_block_forever(
    replicas: ReplicaFactory, clock: Clock
) -> None:
    dead, alive = replicas().index, replicas().index
    lost = await dead.claim(GROUP, "C0SHOP")
    assert lost.must_post
    clock.advance(POSTING_TTL)
    assert (await alive.claim(GROUP, "C0SHOP")).outcome is ClaimOutcome.BUSY
    clock.advance(timedelta(seconds=1))
    taken = await alive.claim(GROUP, "C0SHOP")
    assert taken.must_post and taken.token != lost.token
    # the first claimer came back late: its record is refused, the new one's kept
    assert not await dead.record_posted(GROUP, "1.1", token=lost.token)
    assert await alive.record_posted(GROUP, "2.2", token=taken.token)
    entry = await dead.lookup(GROUP)
    assert entry is not None and entry.ts == "2.2"


async def test_abandoning_a_claim_lets_the_next_delivery_post(replicas: ReplicaFactory) -> None:
    store = replicas().index
    claim = await store.claim(GROUP, "C0SHOP")
    assert claim.token is not None
    await store.abandon(GROUP, "someone else's token")
    assert (await store.claim(GROUP, "C0SHOP")).outcome is ClaimOutcome.BUSY
    await store.abandon(GROUP, claim.token)
    assert await store.lookup(GROUP) is None
    assert (await store.claim(GROUP, "C0SHOP")).must_post


async def test_a_busy_claimer_waits_for_the_post(replicas: ReplicaFactory) -> None:
    poster, waiter = replicas().index, replicas().index
    claim = await poster.claim(GROUP, "C0SHOP")
    assert (await waiter.claim(GROUP, "C0SHOP")).outcome is ClaimOutcome.BUSY

    async def post_later() -> None:
        await asyncio.sleep(0.3)
        await poster.record_posted(GROUP, "9.9", token=claim.token)

    task = asyncio.create_task(post_later())
    entry = await waiter.wait_posted(GROUP, within=5, poll=0.05)
    await task
    assert entry is not None and entry.ts == "9.9"
    assert await waiter.wait_posted("never claimed", within=0.2) is None


async def test_resolved_groups_are_pruned_after_a_while(
    replicas: ReplicaFactory, clock: Clock
) -> None:
    store = replicas(keep_resolved=timedelta(days=2)).index
    for group, ts in ((GROUP, "1.1"), ("still firing", "2.2")):
        claim = await store.claim(group, "C0SHOP")
        await store.record_posted(group, ts, token=claim.token)
    resolved = await store.set_status(GROUP, "resolved")
    assert resolved is not None and resolved.status == "resolved"
    # unchanged status within the touch interval: no write, same entry
    assert await store.set_status(GROUP, "resolved") == resolved
    assert await store.set_status("unknown group", "resolved") is None
    clock.advance(timedelta(days=2, seconds=1))
    assert await store.lookup(GROUP) is not None  # reading prunes nothing
    await store.claim("the next incident", "C0SHOP")  # every write prunes
    assert await store.lookup(GROUP) is None
    assert await store.lookup("still firing") is not None


async def test_a_new_incident_of_a_long_resolved_group_can_get_a_new_message(
    replicas: ReplicaFactory, clock: Clock
) -> None:
    store = replicas().index
    claim = await store.claim(GROUP, "C0SHOP")
    await store.record_posted(GROUP, "1.1", token=claim.token, status="resolved")
    clock.advance(timedelta(hours=2))
    assert (await store.claim(GROUP, "C0SHOP")).outcome is ClaimOutcome.UPDATE
    reopened = await store.claim(GROUP, "C0SHOP", reopen_after=timedelta(hours=1))
    assert reopened.must_post


async def test_the_size_limit_holds_on_every_write(
    replicas: ReplicaFactory, kubeconfig: Path
) -> None:
    store = replicas(max_bytes=4000).index
    for i in range(40):
        claim = await store.claim(f"group {i}", "C0SHOP")
        await store.record_posted(f"group {i}", f"{i}.0", token=claim.token)
    entries = stored_entries(kubeconfig)
    assert 0 < len(entries) < 40
    assert entries[-1].group_key == "group 39"


async def test_failures_are_one_sentence(replicas: ReplicaFactory, sandbox: SandboxThread) -> None:
    store = replicas().index
    sandbox.faults.fail_next(1, 403, method="GET", path_contains="configmaps")
    with pytest.raises(ClusterError) as denied:
        await store.claim(GROUP, "C0SHOP")
    assert "needs get, create and update on configmaps in namespace default" in str(denied.value)
    assert "\n" not in str(denied.value)
    sandbox.faults.set_latency(1.0)
    quick = replicas(request_timeout=0.2).index
    with pytest.raises(ClusterError, match=r"did not answer within 0\.2s"):
        await quick.lookup(GROUP)
    sandbox.faults.clear()


async def test_a_missing_namespace_is_reported(replicas: ReplicaFactory) -> None:
    store = replicas(namespace="no-such-namespace").index
    with pytest.raises(ClusterError, match="not found"):
        await store.claim(GROUP, "C0SHOP")
