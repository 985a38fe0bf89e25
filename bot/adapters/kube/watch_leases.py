"""Automatic rollback's watch Lease: one coordination.k8s.io/v1 Lease per watched Deployment
(`rollback-bot-watch.<name>`), so that one replica analyses a rollout while every replica
watches. Its annotations keep the claim (`bot.domain.analysis.watching.WatchClaim`): which
revision, its message, whether the analysis ended, who asked it to stop.

Apart from the rollback lock on purpose: an analysis that decides to roll back takes the
rollback lock like any rollback, and a person's rollback is never kept waiting by a watch.
Expiry is judged as for the rollback lock (`bot.domain.rollback.locks`): by how long this
replica has seen the Lease unchanged, by its own monotonic clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.adapters.kube.client import KubeClient
from bot.adapters.kube.leases import HINT, LEASES, LOCK_BACKOFF, unhold
from bot.domain.analysis.watching import (
    WATCH_LEASE_PREFIX,
    Claimed,
    Phase,
    WatchClaim,
    claim_annotations,
    is_claim_annotation,
    parse_claim,
)
from bot.domain.errors import Conflict, NotFound
from bot.domain.retry import retry
from bot.domain.rollback.locks import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    LeaseState,
    LockLost,
    Observation,
    is_free,
    lease_name,
    lease_state,
    observe,
)
from bot.domain.rollback.models import JsonDict, Thread
from bot.domain.times import micro_time

ATTEMPTS = 4


class _NotOurs(Exception):
    def __init__(self, current: JsonDict | None) -> None:
        super().__init__()
        self.current = current


class WatchLeases:
    def __init__(self, kube: KubeClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._kube = kube
        self._clock = clock
        self._seen: dict[tuple[str, str], Observation] = {}

    async def claim(
        self, namespace: str, deployment: str, me: str, revision: int, seconds: int
    ) -> Claimed:
        """Take the watch of `revision`: ours when nobody holds the Lease (or its holder has
        been silent for its duration), keeping the watch message of a claim taken over. Not
        ours when another replica holds it, or when the analysis of this revision ended."""
        name = lease_name(deployment, WATCH_LEASE_PREFIX)
        what = f"claiming the watch of deployment {namespace}/{deployment}"
        path = f"{LEASES}/namespaces/{namespace}/leases"

        async def attempt(_number: int) -> Claimed:
            now = micro_time(datetime.now(UTC))
            spec = {
                "holderIdentity": me,
                "leaseDurationSeconds": seconds,
                "acquireTime": now,
                "renewTime": now,
            }
            current = await self._read(what, namespace, name)
            if current is None:
                claim = WatchClaim(revision)
                body: JsonDict = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                        "annotations": claim_annotations(claim),
                    },
                    "spec": spec,
                }
                await self._kube.request(what, "POST", path, body, forbidden_hint=HINT)
                return Claimed(True, claim, me)
            state = lease_state(current)
            seen = self._observe(namespace, name, state)
            found = parse_claim(_annotations(current))
            same = found is not None and found.revision == revision
            if same and found is not None and found.ended is not None:
                return Claimed(False, found, state.holder)
            if not is_free(state, seen.since, self._clock(), me):
                return Claimed(False, found if same else None, state.holder)
            claim = found if same and found is not None else WatchClaim(revision)
            metadata = current.setdefault("metadata", {})
            kept = {k: v for k, v in _annotations(current).items() if not is_claim_annotation(k)}
            metadata["annotations"] = {**kept, **claim_annotations(claim)}
            metadata["resourceVersion"] = state.resource_version
            current["spec"] = {**(current.get("spec") or {}), **spec}
            await self._kube.request(what, "PUT", f"{path}/{name}", current, forbidden_hint=HINT)
            return Claimed(True, claim, me)

        try:
            return await retry(attempt, retry_on=Conflict, attempts=ATTEMPTS, backoff=LOCK_BACKOFF)
        except Conflict:
            raise Conflict(f"{what}: the Lease kept changing under us; try again") from None

    async def renew(self, namespace: str, deployment: str, me: str) -> WatchClaim:
        """Move our Lease's renewTime on and answer its claim (a stop asked meanwhile shows
        there). LockLost when another replica holds it now, or it is gone."""

        def renewed(current: JsonDict, _claim: WatchClaim) -> WatchClaim | None:
            current.setdefault("spec", {})["renewTime"] = micro_time(datetime.now(UTC))
            return None

        return await self._rewrite(
            f"renewing the watch of deployment {namespace}/{deployment}",
            namespace,
            deployment,
            me,
            renewed,
        )

    async def note_thread(
        self, namespace: str, deployment: str, me: str, thread: Thread, *, revision: int
    ) -> None:
        """Keep the watch message in the claim of `revision`, for a replica that takes the
        watch over."""

        def noted(current: JsonDict, claim: WatchClaim) -> WatchClaim:
            current.setdefault("spec", {})["renewTime"] = micro_time(datetime.now(UTC))
            return WatchClaim(claim.revision, thread, claim.ended, claim.stop_by)

        await self._rewrite(
            f"noting the watch message of deployment {namespace}/{deployment}",
            namespace,
            deployment,
            me,
            noted,
            revision=revision,
        )

    async def end(
        self, namespace: str, deployment: str, me: str, phase: Phase, *, revision: int
    ) -> None:
        """Release our Lease, marking the analysis of `revision` ended: no replica starts it
        again. A Lease that is not ours any more, or holds another revision's claim (a newer
        rollout's), is left alone."""

        def ended(current: JsonDict, claim: WatchClaim) -> WatchClaim:
            unhold(current)
            return WatchClaim(claim.revision, claim.thread, phase, claim.stop_by)

        try:
            await self._rewrite(
                f"ending the watch of deployment {namespace}/{deployment}",
                namespace,
                deployment,
                me,
                ended,
                revision=revision,
            )
        except LockLost:
            return

    async def hand_over(self, namespace: str, deployment: str, me: str, *, revision: int) -> None:
        """Release our Lease keeping the claim of `revision` unended: another replica takes the
        watch over at once (this one is stopping). Another revision's claim is left alone."""

        def handed_over(current: JsonDict, claim: WatchClaim) -> WatchClaim:
            unhold(current)
            return claim

        try:
            await self._rewrite(
                f"handing over the watch of deployment {namespace}/{deployment}",
                namespace,
                deployment,
                me,
                handed_over,
                revision=revision,
            )
        except LockLost:
            return

    async def ask_stop(
        self, namespace: str, deployment: str, revision: int, user: str
    ) -> WatchClaim | None:
        """Ask whoever analyses `revision` to stop (any replica may): the claim as it is now,
        the stop noted when it was still going; None when no watch of that revision exists."""
        name = lease_name(deployment, WATCH_LEASE_PREFIX)
        what = f"asking the watch of deployment {namespace}/{deployment} to stop"

        async def attempt(_number: int) -> WatchClaim | None:
            current = await self._read(what, namespace, name)
            found = parse_claim(_annotations(current)) if current is not None else None
            if current is None or found is None or found.revision != revision:
                return None
            if found.ended is not None or found.stop_by is not None:
                return found
            asked = WatchClaim(found.revision, found.thread, None, user)
            await self._write(what, namespace, name, current, asked)
            return asked

        try:
            return await retry(attempt, retry_on=Conflict, attempts=ATTEMPTS, backoff=LOCK_BACKOFF)
        except Conflict:
            raise Conflict(f"{what}: the Lease kept changing under us; try again") from None

    async def _rewrite(
        self,
        what: str,
        namespace: str,
        deployment: str,
        me: str,
        change: Callable[[JsonDict, WatchClaim], WatchClaim | None],
        *,
        revision: int | None = None,
    ) -> WatchClaim:
        """Change our Lease; LockLost when another replica holds it, it is gone, or (given
        `revision`) it holds another revision's claim."""
        name = lease_name(deployment, WATCH_LEASE_PREFIX)

        async def attempt(_number: int) -> WatchClaim:
            current = await self._read(what, namespace, name)
            if current is None:
                raise _NotOurs(None)
            state = lease_state(current)
            self._observe(namespace, name, state)
            claim = parse_claim(_annotations(current))
            if state.holder != me or claim is None:
                raise _NotOurs(current)
            if revision is not None and claim.revision != revision:
                raise _NotOurs(current)
            changed = change(current, claim) or claim
            await self._write(what, namespace, name, current, changed)
            return changed

        try:
            return await retry(attempt, retry_on=Conflict, attempts=ATTEMPTS, backoff=LOCK_BACKOFF)
        except _NotOurs as lost:
            state = lease_state(lost.current) if lost.current is not None else None
            raise LockLost(what, state) from None
        except Conflict:
            raise Conflict(f"{what}: the Lease kept changing under us; try again") from None

    async def _write(
        self, what: str, namespace: str, name: str, current: JsonDict, claim: WatchClaim
    ) -> None:
        state = lease_state(current)
        if not state.resource_version:  # never from an API server: no precondition to send
            raise Conflict(f"{what}: the Lease was read without a resourceVersion")
        metadata = current.setdefault("metadata", {})
        kept = {k: v for k, v in _annotations(current).items() if not is_claim_annotation(k)}
        metadata["annotations"] = {**kept, **claim_annotations(claim)}
        metadata["resourceVersion"] = state.resource_version
        path = f"{LEASES}/namespaces/{namespace}/leases/{name}"
        await self._kube.request(what, "PUT", path, current, forbidden_hint=HINT)

    async def _read(self, what: str, namespace: str, name: str) -> JsonDict | None:
        try:
            return await self._kube.request(
                what,
                "GET",
                f"{LEASES}/namespaces/{namespace}/leases/{name}",
                forbidden_hint=HINT,
                missing_ok=True,
            )
        except NotFound:
            return None

    def _observe(self, namespace: str, name: str, state: LeaseState) -> Observation:
        key = (namespace, name)
        seen = observe(self._seen.get(key), state, self._clock())
        self._seen[key] = seen
        return seen


def _annotations(lease: JsonDict) -> dict[str, object]:
    notes = (lease.get("metadata") or {}).get("annotations")
    return dict(notes) if isinstance(notes, dict) else {}
