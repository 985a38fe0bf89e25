"""The rollback lock against the simulated cluster over real HTTP with the official client: two
bot replicas, each its own client layer and its own monotonic clock (driven by the test), share
one Lease. A renewal or release never writes over another replica's Lease, and a Lease held by
someone else is judged expired only by what this replica itself observed, never by comparing
the holder's renewTime with the local wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.adapters.kube.leases import LEASES
from bot.domain.errors import Conflict
from bot.domain.rollback.locks import LockLost, lease_name, run_annotations
from bot.domain.rollback.models import JsonDict
from bot.domain.times import micro_time
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.lease_fixtures import DEPLOYMENT, NAMESPACE, SECONDS, Replica, run_of

NAME = lease_name(DEPLOYMENT)
PATH = f"{LEASES}/namespaces/{NAMESPACE}/leases"


async def read_lease(replica: Replica) -> JsonDict:
    return await replica.kube.request("reading the lease", "GET", f"{PATH}/{NAME}")


async def write_foreign_lease(
    replica: Replica, holder: str, renewed: datetime, duration: int
) -> None:
    """A Lease another replica (on another node, with another clock) holds."""
    body: JsonDict = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "annotations": run_annotations(run_of("U0CAROL")),
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "acquireTime": micro_time(renewed),
            "renewTime": micro_time(renewed),
        },
    }
    await replica.kube.request("creating a lease", "POST", PATH, body)


# -- a renewal after losing the lock ---------------------------------------------------------


async def test_a_late_renewal_does_not_overwrite_the_new_holder_and_raises_lock_lost(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert await a.acquire() is None
    # B first sees A's Lease: held, whatever its times say.
    held = await b.acquire()
    assert held is not None and held.actor == "bot-a"
    # A stops renewing (a long GC pause, a partition); B sees no change for the whole duration.
    b.clock.advance(SECONDS + 1)
    assert await b.acquire() is None
    taken = await read_lease(b)
    assert taken["spec"]["holderIdentity"] == "bot-b"

    # A wakes up and renews: it must notice it lost the lock, and write nothing.
    with pytest.raises(LockLost, match=r"bot-b holds it since \d{4}-\d\d-\d\dT") as lost:
        await a.renew()
    assert isinstance(lost.value, Conflict)
    after = await read_lease(a)
    assert after["spec"]["holderIdentity"] == "bot-b"
    assert after["metadata"]["resourceVersion"] == taken["metadata"]["resourceVersion"]

    # A's release at the end of its run leaves B's Lease alone too.
    await a.release()
    assert (await read_lease(a))["metadata"]["resourceVersion"] == taken["metadata"][
        "resourceVersion"
    ]

    # B's own release clears it, and A may take it at once.
    await b.release()
    released = await read_lease(b)
    assert not released["spec"].get("holderIdentity")
    assert await a.acquire() is None
    assert (await read_lease(a))["spec"]["holderIdentity"] == "bot-a"


async def test_a_renewal_by_the_holder_moves_the_renew_time_and_keeps_the_holder(
    replicas: tuple[Replica, Replica],
) -> None:
    a, _b = replicas
    assert await a.acquire() is None
    before = await read_lease(a)
    await a.renew()
    after = await read_lease(a)
    assert after["spec"]["holderIdentity"] == "bot-a"
    assert after["spec"]["renewTime"] > before["spec"]["renewTime"]
    assert after["spec"]["acquireTime"] == before["spec"]["acquireTime"]
    assert after["spec"]["leaseDurationSeconds"] == SECONDS


async def test_a_renewal_that_loses_a_race_reads_again_and_renews(
    replicas: tuple[Replica, Replica], sandbox: SandboxThread
) -> None:
    a, _b = replicas
    assert await a.acquire() is None
    sandbox.faults.fail_next(1, status=409, method="PUT", path_contains="/leases/")
    await a.renew()
    assert sandbox.faults.injected == 1
    assert (await read_lease(a))["spec"]["holderIdentity"] == "bot-a"


async def test_a_renewal_of_a_lease_released_by_someone_else_raises_lock_lost(
    replicas: tuple[Replica, Replica],
) -> None:
    a, _b = replicas
    assert await a.acquire() is None
    lease = await read_lease(a)
    del lease["spec"]["holderIdentity"]
    await a.kube.request("clearing the lease", "PUT", f"{PATH}/{NAME}", lease)
    with pytest.raises(LockLost, match="nobody holds it"):
        await a.renew()
    assert not (await read_lease(a))["spec"].get("holderIdentity")


async def test_a_renewal_of_a_deleted_lease_raises_lock_lost(
    replicas: tuple[Replica, Replica],
) -> None:
    a, _b = replicas
    assert await a.acquire() is None
    await a.kube.request("deleting the lease", "DELETE", f"{PATH}/{NAME}")
    with pytest.raises(LockLost, match="deleted"):
        await a.renew()


async def test_a_release_that_loses_a_race_reads_again_and_releases(
    replicas: tuple[Replica, Replica], sandbox: SandboxThread
) -> None:
    a, _b = replicas
    assert await a.acquire() is None
    sandbox.faults.fail_next(1, status=409, method="PUT", path_contains="/leases/")
    await a.release()
    assert sandbox.faults.injected == 1
    assert not (await read_lease(a))["spec"].get("holderIdentity")


@pytest.mark.parametrize("step", ["renew", "release"])
async def test_a_lease_taken_between_our_read_and_our_write_is_left_to_its_new_holder(
    replicas: tuple[Replica, Replica], monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    a, b = replicas
    assert await a.acquire() is None
    request = a.kube.request
    taken: list[JsonDict] = []

    async def racing(what: str, method: str, path: str, *args: Any, **kwargs: Any) -> JsonDict:
        # Just before A's first write lands, B takes the Lease (as if A's had expired for it).
        if method != "GET" and not taken:
            lease = await read_lease(b)
            lease["spec"]["holderIdentity"] = "bot-b"
            taken.append(await b.kube.request("taking the lease", "PUT", f"{PATH}/{NAME}", lease))
        return await request(what, method, path, *args, **kwargs)

    monkeypatch.setattr(a.kube, "request", racing)
    if step == "renew":
        with pytest.raises(LockLost, match="bot-b holds it"):
            await a.renew()
    else:
        await a.release()
    after = await read_lease(b)
    assert after["spec"]["holderIdentity"] == "bot-b"
    assert after["metadata"]["resourceVersion"] == taken[0]["metadata"]["resourceVersion"]


async def test_releasing_a_lease_that_does_not_exist_does_nothing(
    replicas: tuple[Replica, Replica],
) -> None:
    a, _b = replicas
    await a.release()


# -- expiry by this replica's own observation ------------------------------------------------


async def test_a_lease_renewed_long_ago_by_our_clock_but_first_seen_now_is_not_taken(
    replicas: tuple[Replica, Replica],
) -> None:
    elsewhere, b = replicas
    # Its holder's node clock is an hour behind ours: by our wall clock it looks long expired.
    await write_foreign_lease(elsewhere, "bot-far", datetime.now(UTC) - timedelta(hours=1), 30)
    held = await b.acquire()
    assert held is not None and held.actor == "U0CAROL"
    assert (await read_lease(b))["spec"]["holderIdentity"] == "bot-far"
    # Still not taken at the end of its duration by our own clock...
    b.clock.advance(30)
    assert await b.acquire() is not None
    assert (await read_lease(b))["spec"]["holderIdentity"] == "bot-far"
    # ...and taken once we saw it unchanged for longer.
    b.clock.advance(1)
    assert await b.acquire() is None
    assert (await read_lease(b))["spec"]["holderIdentity"] == "bot-b"


async def test_a_lease_whose_holder_keeps_renewing_is_never_taken(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert await a.acquire() is None
    assert await b.acquire() is not None
    for _ in range(4):
        b.clock.advance(20)
        await a.renew()
        # Seen changed: B's observation starts again, so 80 s in all never reach 30 s unchanged.
        assert await b.acquire() is not None
    assert (await read_lease(b))["spec"]["holderIdentity"] == "bot-a"


async def test_a_huge_lease_duration_from_the_cluster_is_bounded(
    replicas: tuple[Replica, Replica],
) -> None:
    elsewhere, b = replicas
    await write_foreign_lease(elsewhere, "bot-stuck", datetime.now(UTC), 10**9)
    assert await b.acquire() is not None
    b.clock.advance(299)
    assert await b.acquire() is not None
    b.clock.advance(2)
    assert await b.acquire() is None
    assert (await read_lease(b))["spec"]["holderIdentity"] == "bot-b"


async def test_the_replica_that_first_created_the_lease_holds_it(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    assert await a.acquire() is None
    held = await b.acquire()
    assert held is not None and held.actor == "bot-a"
    # A asking again (the CLI and the bot share no process, a retry of its own) still holds it.
    assert await a.acquire() is None
