"""Rolling a Deployment back: read, plan, patch (re-planning on conflicts), follow the rollout.

The Slack side (through the runner) and the CLI both drive this; the decisions are the pure
functions of `bot.domain.rollback`, the I/O is the `Cluster` port's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bot.domain.errors import Conflict, RollbackRefused, RolloutTimedOut, Stale
from bot.domain.retry import NO_WAIT, retry
from bot.domain.rollback.guards import Snapshot, staleness
from bot.domain.rollback.models import Deployment, History, Target
from bot.domain.rollback.planning import (
    RollbackCause,
    RollbackPlan,
    plan_abort,
    plan_rollback,
)
from bot.domain.rollback.progress import Progress
from bot.domain.rollback.workload_progress import abort_progress_of, progress_of
from bot.usecases.rollback.ports import Cluster, Clusters

log = logging.getLogger(__name__)

CONFLICT_ATTEMPTS = 4


@dataclass(frozen=True)
class Applied:
    """A plan sent to the cluster (or skipped), with the Deployment the API returned."""

    plan: RollbackPlan
    deployment: Deployment | None
    dry_run: bool
    attempts: int


class RollbackEngine:
    def __init__(self, clusters: Clusters, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clusters = clusters
        self._clock = clock

    def cluster(self, target: Target) -> Cluster:
        return self._clusters.cluster(target.context)

    async def status(self, target: Target) -> Deployment:
        return await self.cluster(target).read(target.namespace, target.name, kind=target.kind)

    async def history(self, target: Target) -> History:
        return await self.cluster(target).history(target.namespace, target.name, kind=target.kind)

    async def plan(
        self, target: Target, to_revision: int | None, cause: RollbackCause | None = None
    ) -> RollbackPlan:
        return plan_rollback(await self.history(target), to_revision, cause)

    async def apply(
        self,
        target: Target,
        plan: RollbackPlan,
        cause: RollbackCause | None = None,
        *,
        dry_run: bool = False,
        snapshot: Snapshot | None = None,
    ) -> Applied:
        """Send the plan's patch. On 409 re-read and re-plan towards the same ReplicaSet.

        The target is pinned by ReplicaSet name, not revision number or "previous": if someone
        else rolled back meanwhile, "previous" would now mean a different version. A conflict is
        usually the controller writing the status; when the re-read shows the Deployment itself
        moved since `snapshot` (what the person confirmed), nothing is patched: `Stale`.
        """
        cluster = self.cluster(target)
        current = plan

        async def attempt(number: int) -> Applied:
            nonlocal current
            if number > 1:
                log.info("%s changed while rolling back; re-planning", target.described)
                current = await self._replan(target, current, cause, snapshot)
            if current.action == "skip":
                return Applied(current, None, dry_run, number)
            deployment = await cluster.patch(
                target.namespace,
                target.name,
                current.body,
                dry_run=dry_run,
                kind=target.kind,
                subresource=current.subresource,
            )
            return Applied(current, deployment, dry_run, number)

        # Re-planning reads the fresh state, so there is nothing to wait for between attempts.
        return await retry(attempt, retry_on=Conflict, attempts=CONFLICT_ATTEMPTS, backoff=NO_WAIT)

    async def _replan(
        self,
        target: Target,
        previous: RollbackPlan,
        cause: RollbackCause | None,
        snapshot: Snapshot | None,
    ) -> RollbackPlan:
        history = await self.history(target)
        if snapshot is not None:
            moved = staleness(snapshot, history)
            if moved is not None:
                raise Stale(f"not rolled back: {moved}")
        if previous.abort:
            return plan_abort(history)
        same = next(
            (r for r in history.revisions if r.replicaset == previous.target.replicaset), None
        )
        if same is None:
            raise RollbackRefused(
                f"revision {previous.target.number} ({previous.target.version}) of {target} "
                "disappeared while rolling back"
            )
        # An override carries over only as asked: a guard that appeared since is not passed.
        return plan_rollback(history, same.number, cause, override=previous.overridden is not None)

    async def follow(
        self, target: Target, *, within: float | None = None, abort: bool = False
    ) -> AsyncIterator[Progress]:
        """Progress until the rollout completes or fails; RolloutTimedOut after `within` s.
        `abort`: an Argo Rollout's abort, done once the stable serves everything."""
        cluster = self.cluster(target)
        deadline = None if within is None else self._clock() + within
        stream = cluster.watch(target.namespace, target.name, kind=target.kind)
        try:
            while True:
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    raise RolloutTimedOut(f"rollout of {target} did not finish within {within:g}s")
                try:
                    async with asyncio.timeout(remaining):
                        deployment = await anext(stream)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    return
                progress = abort_progress_of(deployment) if abort else progress_of(deployment)
                yield progress
                if progress.finished:
                    return
        finally:
            await stream.aclose()
