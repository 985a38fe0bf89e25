"""Automatic rollback's watch Lease against the simulated cluster over real HTTP with the
official client: two bot replicas, each its own client layer and its own monotonic clock
(driven by the test), claim the watch of one Deployment's rollout. One analyses it; the other
takes it over only once it saw the Lease unchanged for its duration, or at once when it was
handed over, and goes on in the same message; an ended watch is never started again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.kube.client import KubeClient
from bot.adapters.kube.leases import LEASES
from bot.adapters.kube.watch_leases import WatchLeases
from bot.domain.analysis.watching import WATCH_LEASE_PREFIX, Claimed, Phase, WatchClaim
from bot.domain.rollback.locks import MANAGED_BY, MANAGED_BY_LABEL, LockLost, lease_name
from bot.domain.rollback.models import BOT_ANNOTATION_PREFIX, JsonDict, Thread
from rollback_sandbox.cluster.threaded import SandboxThread
from tests.lease_fixtures import Clock

NAMESPACE = "default"
DEPLOYMENT = "checkout"
SECONDS = 30
REVISION = 4
NAME = lease_name(DEPLOYMENT, WATCH_LEASE_PREFIX)
PATH = f"{LEASES}/namespaces/{NAMESPACE}/leases"
NOTE = f"{BOT_ANNOTATION_PREFIX}watch-"
THREAD = Thread("C0CHECKOUT", "1764216000.000100")


@dataclass
class Watcher:
    """One bot replica's side of the watch Lease."""

    me: str
    kube: KubeClient
    clock: Clock
    leases: WatchLeases

    async def claim(self, revision: int = REVISION) -> Claimed:
        return await self.leases.claim(NAMESPACE, DEPLOYMENT, self.me, revision, SECONDS)

    async def renew(self) -> WatchClaim:
        return await self.leases.renew(NAMESPACE, DEPLOYMENT, self.me)

    async def note_thread(self, thread: Thread = THREAD, revision: int = REVISION) -> None:
        await self.leases.note_thread(NAMESPACE, DEPLOYMENT, self.me, thread, revision=revision)

    async def end(self, phase: Phase, revision: int = REVISION) -> None:
        await self.leases.end(NAMESPACE, DEPLOYMENT, self.me, phase, revision=revision)

    async def hand_over(self, revision: int = REVISION) -> None:
        await self.leases.hand_over(NAMESPACE, DEPLOYMENT, self.me, revision=revision)

    async def ask_stop(self, user: str, revision: int = REVISION) -> WatchClaim | None:
        return await self.leases.ask_stop(NAMESPACE, DEPLOYMENT, revision, user)

    async def lease(self) -> JsonDict:
        return await self.kube.request("reading the watch lease", "GET", f"{PATH}/{NAME}")


@pytest.fixture
async def watchers(
    sandbox: SandboxThread, tmp_path: Path
) -> AsyncIterator[tuple[Watcher, Watcher]]:
    kubeconfig = str(sandbox.write_kubeconfig(tmp_path / "watch-leases.kubeconfig"))
    built: list[Watcher] = []
    for me in ("bot-a", "bot-b"):
        kube = KubeClient.from_kubeconfig(kubeconfig, None, request_timeout=2)
        clock = Clock()
        built.append(Watcher(me, kube, clock, WatchLeases(kube, clock=clock)))
    yield built[0], built[1]
    for watcher in built:
        await watcher.kube.close()


def claim_notes(lease: JsonDict) -> dict[str, str]:
    notes = lease["metadata"].get("annotations") or {}
    return {key[len(NOTE) :]: value for key, value in notes.items() if key.startswith(NOTE)}


async def write_lease(
    watcher: Watcher, annotations: dict[str, str], spec: JsonDict | None = None
) -> JsonDict:
    """A watch Lease written by someone else through the API, as anyone allowed to may."""
    body: JsonDict = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "annotations": annotations},
        "spec": spec or {},
    }
    return await watcher.kube.request("writing a lease", "POST", PATH, body)


# -- one replica analyses ----------------------------------------------------------------------


async def test_the_first_claim_wins_and_the_other_replica_is_told_who_holds_it(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    assert await a.claim() == Claimed(True, WatchClaim(REVISION), "bot-a")
    assert await b.claim() == Claimed(False, WatchClaim(REVISION), "bot-a")
    # A asking again (its sweep, a duplicate event) still holds it.
    assert await a.claim() == Claimed(True, WatchClaim(REVISION), "bot-a")

    lease = await a.lease()
    assert lease["spec"]["holderIdentity"] == "bot-a"
    assert lease["spec"]["leaseDurationSeconds"] == SECONDS
    assert lease["spec"]["renewTime"] and lease["spec"]["acquireTime"]
    assert lease["metadata"]["labels"] == {MANAGED_BY_LABEL: MANAGED_BY}
    assert claim_notes(lease) == {"revision": str(REVISION)}
    # Another revision held by A is none of B's business: no claim to show for it.
    assert await b.claim(REVISION + 1) == Claimed(False, None, "bot-a")


async def test_two_replicas_claiming_at_once_get_one_holder(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    answers = await asyncio.gather(a.claim(), b.claim())
    winners = [answer.holder for answer in answers if answer.ours]
    assert len(winners) == 1
    assert {answer.holder for answer in answers} == set(winners)
    assert (await a.lease())["spec"]["holderIdentity"] == winners[0]


async def test_a_holder_silent_for_the_duration_is_replaced_in_the_same_message(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    await a.note_thread()
    assert await b.claim() == Claimed(False, WatchClaim(REVISION, THREAD), "bot-a")
    # B saw it unchanged for exactly the duration: still A's.
    b.clock.advance(SECONDS)
    assert not (await b.claim()).ours
    # Longer than the duration, unchanged by B's own clock: B takes it, keeping A's message.
    b.clock.advance(1)
    assert await b.claim() == Claimed(True, WatchClaim(REVISION, THREAD), "bot-b")
    lease = await b.lease()
    assert lease["spec"]["holderIdentity"] == "bot-b"
    assert claim_notes(lease) == {
        "revision": str(REVISION),
        "channel": THREAD.channel,
        "ts": THREAD.thread_ts,
    }
    assert await b.renew() == WatchClaim(REVISION, THREAD)
    lease = await b.lease()

    # A wakes up: it lost the watch, and writes nothing over B's.
    with pytest.raises(LockLost, match="bot-b holds it"):
        await a.renew()
    with pytest.raises(LockLost):
        await a.note_thread(Thread("C0CHECKOUT", "1764216999.000100"))
    await a.end(Phase.HEALTHY)
    await a.hand_over()
    after = await a.lease()
    assert after["metadata"]["resourceVersion"] == lease["metadata"]["resourceVersion"]
    assert after["spec"]["holderIdentity"] == "bot-b"


async def test_a_takeover_racing_the_holders_renewal_leaves_the_watch_to_the_holder(
    watchers: tuple[Watcher, Watcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    assert not (await b.claim()).ours
    b.clock.advance(SECONDS + 1)
    request = b.kube.request
    renewed: list[WatchClaim] = []

    async def racing(what: str, method: str, path: str, *args: Any, **kwargs: Any) -> JsonDict:
        # Between B's read (silent for its duration) and B's write, A renews after all.
        if method == "PUT" and not renewed:
            renewed.append(await a.renew())
        return await request(what, method, path, *args, **kwargs)

    monkeypatch.setattr(b.kube, "request", racing)
    # B's write is refused (resourceVersion), B reads again and sees it renewed: still A's.
    assert await b.claim() == Claimed(False, WatchClaim(REVISION), "bot-a")
    assert renewed == [WatchClaim(REVISION)]
    assert (await a.lease())["spec"]["holderIdentity"] == "bot-a"
    assert await a.renew() == WatchClaim(REVISION)


async def test_a_claim_refused_once_by_a_conflict_reads_again_and_claims(
    watchers: tuple[Watcher, Watcher], sandbox: SandboxThread
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    await a.hand_over()
    sandbox.faults.fail_next(1, status=409, method="PUT", path_contains="/leases/")
    assert (await b.claim()).ours
    assert sandbox.faults.injected == 1
    assert (await b.lease())["spec"]["holderIdentity"] == "bot-b"


async def test_a_holder_that_keeps_renewing_is_never_replaced(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    assert not (await b.claim()).ours
    for _ in range(4):
        b.clock.advance(SECONDS * 2 / 3)
        before = (await a.lease())["spec"]["renewTime"]
        assert await a.renew() == WatchClaim(REVISION)
        after = await a.lease()
        assert after["spec"]["renewTime"] >= before
        # B saw it change: its observation starts again.
        assert not (await b.claim()).ours
    assert (await a.lease())["spec"]["holderIdentity"] == "bot-a"


async def test_a_renewal_without_a_lease_is_lock_lost(watchers: tuple[Watcher, Watcher]) -> None:
    a, _b = watchers
    with pytest.raises(LockLost, match="deleted"):
        await a.renew()
    await a.end(Phase.HEALTHY)  # nothing to end: nothing written
    await a.hand_over()
    assert await a.ask_stop("U0ALICE") is None


# -- the end, the hand-over, the stop --------------------------------------------------------


async def test_an_ended_watch_is_never_claimed_again_but_a_new_revision_is(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    await a.note_thread()
    await a.end(Phase.HEALTHY)

    lease = await a.lease()
    assert not lease["spec"].get("holderIdentity")
    assert claim_notes(lease)["ended"] == "healthy"
    ended = WatchClaim(REVISION, THREAD, Phase.HEALTHY)
    assert await a.claim() == Claimed(False, ended, None)
    b.clock.advance(SECONDS * 10)
    assert await b.claim() == Claimed(False, ended, None)
    with pytest.raises(LockLost):
        await a.renew()
    assert await b.ask_stop("U0ALICE") == ended  # nothing left to stop

    # The next rollout is a new claim: no message yet, not ended.
    assert await b.claim(REVISION + 1) == Claimed(True, WatchClaim(REVISION + 1), "bot-b")
    assert claim_notes(await b.lease()) == {"revision": str(REVISION + 1)}
    assert not (await a.claim(REVISION + 1)).ours


async def test_a_watch_handed_over_is_claimed_at_once_by_another_replica(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    await a.note_thread()
    assert not (await b.claim()).ours
    await a.hand_over()
    lease = await a.lease()
    assert not lease["spec"].get("holderIdentity")
    assert "ended" not in claim_notes(lease)
    # No clock moved: handed over is free.
    assert await b.claim() == Claimed(True, WatchClaim(REVISION, THREAD), "bot-b")
    with pytest.raises(LockLost):
        await a.renew()


async def test_any_replica_may_ask_the_holder_to_stop_and_the_holder_sees_it_when_renewing(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    await a.note_thread()
    assert await b.ask_stop("U0ALICE", REVISION + 1) is None  # another revision: not watched
    asked = await b.ask_stop("U0ALICE")
    assert asked == WatchClaim(REVISION, THREAD, None, "U0ALICE")
    lease = await b.lease()
    assert lease["spec"]["holderIdentity"] == "bot-a"  # the stop does not take the Lease
    # Asked again by someone else: the first stopper stays.
    assert await b.ask_stop("U0BOB") == asked
    assert await a.renew() == asked
    await a.end(Phase.STOPPED)
    ended = WatchClaim(REVISION, THREAD, Phase.STOPPED, "U0ALICE")
    assert await a.ask_stop("U0BOB") == ended
    assert await b.claim() == Claimed(False, ended, None)


async def test_a_stop_asked_is_kept_by_a_replica_taking_the_watch_over(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, b = watchers
    assert (await a.claim()).ours
    assert not (await b.claim()).ours
    await a.ask_stop("U0ALICE")
    await a.hand_over()
    assert await b.claim() == Claimed(True, WatchClaim(REVISION, None, None, "U0ALICE"), "bot-b")
    assert (await b.renew()).stop_by == "U0ALICE"


# -- the Lease's text is anyone's --------------------------------------------------------------


async def test_hostile_annotations_do_not_crash_a_claim_and_are_replaced_by_the_bots(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, _b = watchers
    await write_lease(
        a,
        {
            f"{NOTE}revision": "1e3",
            f"{NOTE}channel": "<!channel>",
            f"{NOTE}ts": "now",
            f"{NOTE}ended": "watching",
            f"{NOTE}stop-by": "<@U0ALICE>",
            f"{NOTE}extra": "x" * 10_000,
            f"{BOT_ANNOTATION_PREFIX}handed-over-by": "bot-z",
            "example.com/owner": "team-shop",
        },
    )
    assert await a.claim() == Claimed(True, WatchClaim(REVISION), "bot-a")
    lease = await a.lease()
    assert lease["spec"]["holderIdentity"] == "bot-a"
    assert claim_notes(lease) == {"revision": str(REVISION)}
    assert lease["metadata"]["annotations"]["example.com/owner"] == "team-shop"
    assert await a.renew() == WatchClaim(REVISION)


async def test_a_hostile_claim_of_our_revision_held_by_someone_is_read_bounded(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, _b = watchers
    await write_lease(
        a,
        {
            f"{NOTE}revision": str(REVISION),
            f"{NOTE}channel": "<!channel>",
            f"{NOTE}ts": "1764216000.000100",
            f"{NOTE}ended": "junk",
            f"{NOTE}stop-by": "U" + "0" * 100,
        },
        {"holderIdentity": "bot-x", "leaseDurationSeconds": 10**9},
    )
    assert await a.claim() == Claimed(False, WatchClaim(REVISION), "bot-x")
    assert await a.ask_stop("U0ALICE") == WatchClaim(REVISION, None, None, "U0ALICE")
    # The stop changed the Lease: seen unchanged from now on. A huge duration is bounded
    # (300 s): still held at 299 s, taken after 300.
    assert not (await a.claim()).ours
    a.clock.advance(299)
    assert not (await a.claim()).ours
    a.clock.advance(2)
    assert await a.claim() == Claimed(True, WatchClaim(REVISION, None, None, "U0ALICE"), "bot-a")


@pytest.mark.parametrize(
    "revision", ["0", "-1", "1" + "0" * 30, "1e3", "four", ""], ids=lambda r: repr(r)[:12]
)
async def test_a_lease_whose_revision_is_no_revision_is_claimed_as_new(
    watchers: tuple[Watcher, Watcher], revision: str
) -> None:
    a, _b = watchers
    await write_lease(a, {f"{NOTE}revision": revision, f"{NOTE}ended": "healthy"})
    assert await a.claim() == Claimed(True, WatchClaim(REVISION), "bot-a")
    assert claim_notes(await a.lease()) == {"revision": str(REVISION)}


async def test_an_older_revisions_watch_ending_leaves_the_newer_revisions_claim_alone(
    watchers: tuple[Watcher, Watcher],
) -> None:
    a, _ = watchers
    assert (await a.claim()).ours
    await a.note_thread()
    # The next revision went out, and this replica claimed it while the older one's analysis
    # was still finishing.
    assert (await a.claim(REVISION + 1)).ours
    before = await a.lease()
    await a.end(Phase.HEALTHY, revision=REVISION)
    await a.hand_over(revision=REVISION)
    with pytest.raises(LockLost):
        await a.note_thread(revision=REVISION)
    after = await a.lease()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["holderIdentity"] == "bot-a"
    assert await a.renew() == WatchClaim(REVISION + 1)
