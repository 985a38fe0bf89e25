"""The audit trail kept in the cluster, over real HTTP with the official client against the
simulated cluster: appends from two replicas at once, the size cap rolling to the day's next
object, retention deleting old objects and nothing else, and reading back by days."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from bot.adapters.audit import ClusterStoreSink
from bot.adapters.kube.audit_store import ClusterAuditStore
from bot.adapters.kube.client import KubeClient, load_api_client
from bot.config.catalog import ServiceRef
from bot.domain import audit_store as layout
from bot.domain.audit import AuditRecord, Step
from bot.domain.audit_store import AuditKey
from bot.domain.rollback.models import JsonDict
from bot.usecases.audit import AuditReader
from rollback_sandbox.cluster.threaded import SandboxThread

NAMESPACE = "default"
NOW = datetime.now(UTC).replace(microsecond=0)
CHECKOUT = ServiceRef("checkout", "shop", "checkout", None)

Clients = Callable[[], KubeClient]


@pytest.fixture
async def clients(sandbox: SandboxThread, tmp_path: object) -> AsyncIterator[Clients]:
    """A new client layer (its own connection pool and threads) per call: one per replica."""
    kubeconfig = sandbox.write_kubeconfig(f"{tmp_path}/kubeconfig")
    made: list[KubeClient] = []

    def make() -> KubeClient:
        made.append(KubeClient(load_api_client(str(kubeconfig), None), request_timeout=5))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def record(n: int, at: datetime = NOW, step: Step = Step.PROGRESS, **fields: str) -> AuditRecord:
    values: dict[str, str] = {
        "service": "checkout",
        "namespace": "shop",
        "deployment": "checkout",
        "actor": "U0ONCALL01",
        "via": "Slack",
        "detail": f"record {n}",
        **fields,
    }
    return AuditRecord(step=step, at=at, **values)  # type: ignore[arg-type]


async def audit_objects(kube: KubeClient) -> list[JsonDict]:
    found = await kube.request(
        "test",
        "GET",
        f"/api/v1/namespaces/{NAMESPACE}/configmaps",
        query=[("labelSelector", "app.kubernetes.io/component=audit")],
    )
    return sorted(found["items"], key=lambda item: item["metadata"]["name"])


async def test_two_replicas_appending_at_once_lose_no_record(
    clients: Clients, sandbox: SandboxThread
) -> None:
    # Every request takes a little while, so the two writers' reads and writes interleave.
    sandbox.faults.set_latency(0.01)
    sinks = [ClusterStoreSink(ClusterAuditStore(clients(), NAMESPACE)) for _ in range(2)]
    for n in range(30):
        await asyncio.gather(*(sink.write(record(n * 2 + i), None) for i, sink in enumerate(sinks)))
    await asyncio.gather(*(sink.close(grace=60) for sink in sinks))
    sandbox.faults.set_latency(0)

    assert [sink.stored for sink in sinks] == [30, 30]
    reader = AuditReader(ClusterAuditStore(clients(), NAMESPACE))
    records = await reader.read(CHECKOUT, timedelta(hours=1))
    assert sorted(r.detail or "" for r in records) == sorted(f"record {n}" for n in range(60))
    writes = sandbox.faults.requests("PUT", "/configmaps/") + sandbox.faults.requests(
        "POST", "/configmaps"
    )
    assert len(writes) > 60, "no append lost a race: the test did not test the race"


async def test_a_full_object_rolls_to_the_days_next_one(clients: Clients) -> None:
    kube = clients()
    store = ClusterAuditStore(kube, NAMESPACE, cap_bytes=4096)
    records = [record(n, at=NOW + timedelta(seconds=n), reason="r" * 200) for n in range(30)]
    for n, each in enumerate(records):
        await store.append(each, layout.entry_key(each, f"{n:04d}"))

    objects = await audit_objects(kube)
    day = layout.day_of(NOW)
    names = [o["metadata"]["name"] for o in objects]
    assert len(names) >= 3
    assert names == [
        layout.object_name(AuditKey("shop", "checkout"), day, part) for part in range(len(names))
    ]
    for item in objects:
        assert layout.used_bytes(item["data"]) <= 4096
        part = item["metadata"]["name"].split(".")[0].rsplit("-", 1)[1]
        assert item["metadata"]["labels"][layout.PART_LABEL] == part
    assert sum(len(o["data"]) for o in objects) == 30

    # A second writer (a restarted replica) starts at part 0 and finds its way to the last one.
    again = ClusterAuditStore(clients(), NAMESPACE, cap_bytes=4096)
    extra = record(99, at=NOW + timedelta(minutes=5), reason="r" * 200)
    written = await again.append(extra, layout.entry_key(extra, "beef"))
    following = layout.object_name(AuditKey("shop", "checkout"), day, len(names))
    assert written in (names[-1], following)
    back = await AuditReader(again).read(CHECKOUT, timedelta(days=1))
    assert [r.detail for r in back][:2] == ["record 99", "record 29"]
    assert len(back) == 31


async def test_an_append_retried_after_its_answer_was_lost_is_not_stored_twice(
    clients: Clients,
) -> None:
    store = ClusterAuditStore(clients(), NAMESPACE)
    once = record(1)
    entry = layout.entry_key(once, "abcd")
    await store.append(once, entry)
    await store.append(once, entry)  # the retry of a write that did arrive
    assert len(await AuditReader(store).read(CHECKOUT, timedelta(hours=1))) == 1


async def test_retention_deletes_old_objects_and_nothing_else(
    clients: Clients, sandbox: SandboxThread
) -> None:
    kube = clients()
    store = ClusterAuditStore(kube, NAMESPACE, retention_days=90)
    for n, days_ago in enumerate((120, 91, 89, 0)):
        at = NOW - timedelta(days=days_ago)
        await store.append(record(n, at=at), layout.entry_key(record(n, at=at), "0000"))
    cart = record(9, at=NOW - timedelta(days=200), deployment="cart", service="cart")
    await store.append(cart, layout.entry_key(cart, "0000"))
    # Not the bot's audit objects: another ConfigMap, and one whose day cannot be read.
    for name, labels in (
        ("unrelated", {"app": "shop"}),
        ("odd", {"app.kubernetes.io/name": "rollback-bot", "app.kubernetes.io/component": "audit",
                 layout.DAY_LABEL: "yesterday"}),
    ):  # fmt: skip
        await kube.request(
            "test",
            "POST",
            f"/api/v1/namespaces/{NAMESPACE}/configmaps",
            {"metadata": {"name": name, "labels": labels}, "data": {"a": "b"}},
        )

    deleted = await store.prune()

    def day(days_ago: int) -> str:
        return f"{layout.day_of(NOW - timedelta(days=days_ago)):%Y%m%d}"

    assert sorted(deleted) == sorted(
        [
            f"rollback-bot-audit-{day(120)}-0.shop.checkout",
            f"rollback-bot-audit-{day(91)}-0.shop.checkout",
            f"rollback-bot-audit-{day(200)}-0.shop.cart",
        ]
    )
    left = await kube.request("test", "GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps")
    names = {item["metadata"]["name"] for item in left["items"]}
    assert {"unrelated", "odd"} <= names
    assert f"rollback-bot-audit-{day(89)}-0.shop.checkout" in names
    assert not set(deleted) & names
    assert len(sandbox.faults.requests("DELETE")) == 3
    # A second replica pruning at once (or just after) finds nothing left to do.
    assert await ClusterAuditStore(clients(), NAMESPACE, retention_days=90).prune() == []


async def test_a_read_fetches_only_the_days_asked_for(
    clients: Clients, sandbox: SandboxThread
) -> None:
    store = ClusterAuditStore(clients(), NAMESPACE)
    for n, days_ago in enumerate((0, 1, 5, 30)):
        at = NOW - timedelta(days=days_ago, minutes=1)
        await store.append(record(n, at=at), layout.entry_key(record(n, at=at), "0000"))
    reader = AuditReader(store)
    assert [r.detail for r in await reader.read(CHECKOUT, timedelta(days=2))] == [
        "record 0",
        "record 1",
    ]
    assert len(await reader.read(CHECKOUT, timedelta(days=60))) == 4
    # Another service's records stay its own.
    other = ServiceRef("cart", "shop", "cart", None)
    assert await reader.read(other, timedelta(days=60)) == []
    first = unquote(sandbox.faults.requests("GET", "labelSelector")[0])
    days = ",".join(f"{layout.day_of(NOW) - timedelta(days=n):%Y-%m-%d}" for n in range(3))
    assert f"audit-day in ({days})" in first


async def test_an_api_server_failing_a_while_delays_the_record_but_does_not_lose_it(
    clients: Clients, sandbox: SandboxThread, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.faults.fail_next(3, 503, path_contains="/configmaps")
    sink = ClusterStoreSink(ClusterAuditStore(clients(), NAMESPACE))
    await sink.write(record(1), None)
    await sink.close(grace=30)
    assert sink.stored == 1 and sandbox.faults.injected == 3
    reader = AuditReader(ClusterAuditStore(clients(), NAMESPACE))
    assert [r.detail for r in await reader.read(CHECKOUT, timedelta(hours=1))] == ["record 1"]
    assert not [r for r in caplog.records if "NOT STORED" in r.getMessage()]


async def test_a_record_the_api_server_keeps_refusing_is_logged_whole(
    clients: Clients, sandbox: SandboxThread, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.faults.fail_next(100, 500, path_contains="/configmaps")
    sink = ClusterStoreSink(ClusterAuditStore(clients(), NAMESPACE), attempts=3)
    await sink.write(record(1, reason="5xx spike"), None)
    await sink.close(grace=30)
    assert sink.stored == 0 and sandbox.faults.injected == 3
    lost = [r.getMessage() for r in caplog.records if "AUDIT RECORD NOT STORED" in r.getMessage()]
    assert len(lost) == 1
    assert '"reason": "5xx spike"' in lost[0] and "configmaps of namespace default" in lost[0]
