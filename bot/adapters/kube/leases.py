"""The rollback lock: a coordination.k8s.io/v1 Lease next to each Deployment, so one rollback
per Deployment runs at a time across bot replicas and the CLI. The decisions (free? whose run?)
are `bot.domain.rollback.locks`'s; this is the I/O.

Every write is conditional on the resourceVersion just read, so nothing is written over a Lease
another replica changed meanwhile: a conflict reads again and decides again. What this replica
has seen of each Lease, and since when by its own monotonic clock, is kept here: a Lease held by
someone else expires only after we saw it unchanged for its duration."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.adapters.kube.client import KubeClient
from bot.domain.errors import Conflict, NotFound
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.locks import (
    HANDED_OVER_BY,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    LeaseState,
    LockLost,
    Observation,
    adoptable,
    is_free,
    is_run_annotation,
    lease_name,
    lease_state,
    observe,
    run_annotations,
)
from bot.domain.rollback.models import JsonDict, RunInfo, lock_key
from bot.domain.times import micro_time

LEASES = "/apis/coordination.k8s.io/v1"
LOCK_ATTEMPTS = 3
LOCK_BACKOFF = Backoff(first=0.02, factor=2.0, cap=0.2)
HINT = "the bot's role needs get, list, create and update on leases (coordination.k8s.io)"


class _Lost(Exception):
    """Inside a retried attempt: the Lease is no longer ours (not a Conflict, so not retried)."""

    def __init__(self, state: LeaseState | None) -> None:
        super().__init__()
        self.state = state


class Leases:
    def __init__(self, kube: KubeClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._kube = kube
        self._clock = clock
        # (namespace, Lease name) → what we last saw of it and since when, by `clock`.
        self._seen: dict[tuple[str, str], Observation] = {}

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        """Take the Deployment's rollback Lease; None when taken, else who holds it.

        Optimistic: a create or update that loses a race (409) re-reads and decides again. A
        Lease held by someone else is free only once we saw it unchanged for its duration.
        """
        name = lease_name(deployment)
        what = f"locking deployment {namespace}/{deployment}"
        path = f"{LEASES}/namespaces/{namespace}/leases"

        async def attempt(_number: int) -> RunInfo | None:
            now = datetime.now(UTC)
            body: JsonDict = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                    "annotations": run_annotations(run),
                },
                "spec": {
                    "holderIdentity": me,
                    "leaseDurationSeconds": seconds,
                    "acquireTime": micro_time(now),
                    "renewTime": micro_time(now),
                },
            }
            try:
                current = await self._read(what, namespace, name)
            except NotFound:
                await self._kube.request(what, "POST", path, body, forbidden_hint=HINT)
                return None
            state = lease_state(current)
            seen = self._observe(namespace, name, state)
            if not is_free(state, seen.since, self._clock(), me):
                return state.run or run
            body["metadata"]["resourceVersion"] = state.resource_version
            await self._kube.request(what, "PUT", f"{path}/{name}", body, forbidden_hint=HINT)
            return None

        try:
            return await retry(
                attempt, retry_on=Conflict, attempts=LOCK_ATTEMPTS, backoff=LOCK_BACKOFF
            )
        except Conflict:
            raise Conflict(f"{what}: the lock kept changing under us; try again") from None

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None:
        """Move the renewTime of our Lease on, only while we still hold it: LockLost (naming
        the new holder) when someone else took, released or deleted it, and nothing written."""
        what = f"renewing the lock of deployment {namespace}/{deployment}"

        def renewed(current: JsonDict) -> JsonDict:
            spec = current.setdefault("spec", {})
            spec["renewTime"] = micro_time(datetime.now(UTC))
            return current

        await self._rewrite(what, namespace, deployment, me, renewed, missing_is_lost=True)

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        """Clear the holder of our Lease and the run it carried, only while we still hold it; a
        Lease someone else holds (or none at all) is left as it is."""
        what = f"unlocking deployment {namespace}/{deployment}"

        def released(current: JsonDict) -> JsonDict:
            unhold(current)
            metadata = current.setdefault("metadata", {})
            notes = metadata.get("annotations") or {}
            metadata["annotations"] = {k: v for k, v in notes.items() if not is_run_annotation(k)}
            return current

        try:
            await self._rewrite(what, namespace, deployment, me, released, missing_is_lost=False)
        except LockLost:
            return

    async def hand_over_lock(self, namespace: str, deployment: str, me: str) -> None:
        """Release our Lease keeping the run it carries, marked handed over: another replica
        (or this one's successor) picks it up at once and finishes its story. LockLost when
        it is not ours any more."""
        what = f"handing over the rollback of deployment {namespace}/{deployment}"

        def handed_over(current: JsonDict) -> JsonDict:
            unhold(current)
            metadata = current.setdefault("metadata", {})
            metadata["annotations"] = {**(metadata.get("annotations") or {}), HANDED_OVER_BY: me}
            return current

        await self._rewrite(what, namespace, deployment, me, handed_over, missing_is_lost=True)

    async def unfinished_runs(self, namespace: str, me: str) -> list[RunInfo]:
        """The runs in this namespace's rollback Leases that this replica should pick up now
        (`adoptable`): handed over, left by this replica's earlier self, or silent too long."""
        what = f"looking for unfinished rollbacks in namespace {namespace}"
        found = await self._kube.request(
            what,
            "GET",
            f"{LEASES}/namespaces/{namespace}/leases",
            query=[("labelSelector", f"{MANAGED_BY_LABEL}={MANAGED_BY}")],
            forbidden_hint=HINT,
        )
        runs = []
        items = found.get("items")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            state = lease_state(item)
            name = item.get("metadata", {}).get("name")
            if not isinstance(name, str):
                continue
            seen = self._observe(namespace, name, state)
            run = state.run
            if (
                run is not None
                and run.deployment is not None
                # a Lease names the workload it locks
                and lease_name(lock_key(run.kind, run.deployment)) == name
                and adoptable(state, seen.since, self._clock(), me)
            ):
                runs.append(run)
        return runs

    async def take_over_lock(
        self, namespace: str, deployment: str, me: str, seconds: int
    ) -> RunInfo | None:
        """Take the Lease of a run to pick up, if it is still one (read again, decided again):
        its run (`holder`: who had it), or None when it is not ours to take any more, someone
        else having been quicker included."""
        name = lease_name(deployment)
        what = f"picking up the rollback of deployment {namespace}/{deployment}"
        try:
            current = await self._read(what, namespace, name)
        except NotFound:
            return None
        state = lease_state(current)
        seen = self._observe(namespace, name, state)
        if state.run is None or not adoptable(state, seen.since, self._clock(), me):
            return None
        now = micro_time(datetime.now(UTC))
        metadata = current.setdefault("metadata", {})
        notes = metadata.get("annotations") or {}
        metadata["annotations"] = {k: v for k, v in notes.items() if k != HANDED_OVER_BY}
        metadata["resourceVersion"] = state.resource_version
        current["spec"] = {
            **(current.get("spec") or {}),
            "holderIdentity": me,
            "leaseDurationSeconds": seconds,
            "acquireTime": now,
            "renewTime": now,
        }
        path = f"{LEASES}/namespaces/{namespace}/leases/{name}"
        try:
            await self._kube.request(what, "PUT", path, current, forbidden_hint=HINT)
        except Conflict:
            return None  # changed since read: another replica took it, or its holder woke up
        return state.run

    async def _rewrite(
        self,
        what: str,
        namespace: str,
        deployment: str,
        me: str,
        change: Callable[[JsonDict], JsonDict],
        *,
        missing_is_lost: bool,
    ) -> None:
        """Read the Lease and, if we hold it, PUT `change(it)` back with the resourceVersion
        read as precondition; a conflict reads and decides again. LockLost when it is not ours
        (or gone, if `missing_is_lost`)."""
        name = lease_name(deployment)
        path = f"{LEASES}/namespaces/{namespace}/leases/{name}"

        async def attempt(_number: int) -> None:
            try:
                current = await self._read(what, namespace, name)
            except NotFound:
                if missing_is_lost:
                    raise _Lost(None) from None
                return
            state = lease_state(current)
            self._observe(namespace, name, state)
            if state.holder != me:
                raise _Lost(state)
            if not state.resource_version:  # never from an API server: no precondition to send
                raise Conflict(f"{what}: the Lease was read without a resourceVersion")
            body = change(current)
            body.setdefault("metadata", {})["resourceVersion"] = state.resource_version
            await self._kube.request(what, "PUT", path, body, forbidden_hint=HINT)

        try:
            await retry(attempt, retry_on=Conflict, attempts=LOCK_ATTEMPTS, backoff=LOCK_BACKOFF)
        except _Lost as lost:
            raise LockLost(what, lost.state) from None
        except Conflict:
            raise Conflict(f"{what}: the lock kept changing under us; try again") from None

    async def _read(self, what: str, namespace: str, name: str) -> JsonDict:
        # No Lease yet is the usual answer before a Deployment's first rollback.
        return await self._kube.request(
            what,
            "GET",
            f"{LEASES}/namespaces/{namespace}/leases/{name}",
            forbidden_hint=HINT,
            missing_ok=True,
        )

    def _observe(self, namespace: str, name: str, state: LeaseState) -> Observation:
        key = (namespace, name)
        seen = observe(self._seen.get(key), state, self._clock())
        self._seen[key] = seen
        return seen


def unhold(lease: JsonDict) -> None:
    """The Lease with nobody holding it (its holder and times removed)."""
    spec = lease.setdefault("spec", {})
    for key in ("holderIdentity", "renewTime", "acquireTime"):
        spec.pop(key, None)
