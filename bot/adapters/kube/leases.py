"""The rollback lock: a coordination.k8s.io/v1 Lease next to each Deployment, so one rollback
per Deployment runs at a time across bot replicas and the CLI. The decisions (free? whose run?)
are `bot.domain.rollback.locks`'s; this is the I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.kube.client import MERGE_PATCH, KubeClient
from bot.domain.errors import Conflict, NotFound
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.locks import is_free, lease_name, lease_state, run_annotations
from bot.domain.rollback.models import JsonDict, RunInfo
from bot.domain.times import micro_time

LEASES = "/apis/coordination.k8s.io/v1"
LOCK_ATTEMPTS = 3
LOCK_BACKOFF = Backoff(first=0.02, factor=2.0, cap=0.2)
HINT = "the bot's role needs get, create, update and patch on leases (coordination.k8s.io)"


class Leases:
    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        """Take the Deployment's rollback Lease; None when taken, else who holds it.

        Optimistic: a create or update that loses a race (409) re-reads and decides again.
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
                current = await self._kube.request(
                    what, "GET", f"{path}/{name}", forbidden_hint=HINT
                )
            except NotFound:
                await self._kube.request(what, "POST", path, body, forbidden_hint=HINT)
                return None
            state = lease_state(current)
            if not is_free(state, now, me):
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
        patch = {"spec": {"holderIdentity": me, "renewTime": micro_time(datetime.now(UTC))}}
        await self._kube.request(
            f"renewing the lock of deployment {namespace}/{deployment}",
            "PATCH",
            f"{LEASES}/namespaces/{namespace}/leases/{lease_name(deployment)}",
            patch,
            content_type=MERGE_PATCH,
        )

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None:
        name = lease_name(deployment)
        what = f"unlocking deployment {namespace}/{deployment}"
        current = lease_state(
            await self._kube.request(what, "GET", f"{LEASES}/namespaces/{namespace}/leases/{name}")
        )
        if current.holder != me:
            return
        await self._kube.request(
            what,
            "PATCH",
            f"{LEASES}/namespaces/{namespace}/leases/{name}",
            {"spec": {"holderIdentity": None, "renewTime": None, "acquireTime": None}},
            content_type=MERGE_PATCH,
        )
