"""Every story finished: a replica picks up the rollbacks that a stopped replica left running.

A rollback's Lease keeps its run (thread, id, from and to). A replica killed mid-rollout stops
renewing it; one stopping on SIGTERM hands it over (releases it keeping the run). Every replica
looks through the rollback Leases of the namespaces it serves, and the runner picks up what the
domain's `adoptable` says is left: handed over at once, silent after the Lease's duration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from bot.domain.errors import RollbackBotError
from bot.domain.rollback.models import RunInfo, Target
from bot.usecases.rollback.ports import Clusters

log = logging.getLogger(__name__)


class Pickups(Protocol):
    """Who follows a picked-up run to its end (the runner)."""

    async def pick_up(self, target: Target, found: RunInfo) -> bool: ...


class Takeover:
    def __init__(
        self,
        clusters: Clusters,
        pickups: Pickups,
        services: Mapping[Target, str],
        *,
        me: str,
        interval: float,
    ) -> None:
        """`services`: the catalog's names of the Deployments it lists. Their namespaces are
        where the bot may read Leases, so they are where it looks."""
        self._clusters = clusters
        self._pickups = pickups
        self._services = dict(services)
        self._me = me
        self._interval = interval
        places = {(t.context, t.namespace) for t in services}
        self._places = sorted(places, key=lambda p: (p[0] or "", p[1]))
        self._failing: set[tuple[str | None, str]] = set()

    async def scan(self) -> int:
        """Look once; how many runs this replica picked up."""
        picked = 0
        for context, namespace in self._places:
            try:
                runs = await self._clusters.cluster(context).unfinished_runs(namespace, self._me)
            except RollbackBotError as exc:
                # Said once per outage, not every few seconds while a cluster is down.
                if (context, namespace) not in self._failing:
                    log.warning("could not look for unfinished rollbacks in %s: %s", namespace, exc)
                self._failing.add((context, namespace))
                continue
            self._failing.discard((context, namespace))
            for run in runs:
                if run.deployment is None:
                    continue
                target = Target(namespace, run.deployment, context, run.kind)
                service = self._services.get(target)
                if service is None:  # only the catalog's Deployments are the bot's to finish
                    continue
                try:
                    if await self._pickups.pick_up(target, replace(run, service=service)):
                        picked += 1
                        log.warning(
                            "picked up the rollback of %s that replica %s left unfinished",
                            target,
                            run.holder,
                        )
                except RollbackBotError as exc:
                    log.warning("could not pick up the rollback of %s: %s", target, exc)
        return picked

    async def run(self) -> None:
        """Look every `interval` seconds until cancelled."""
        while True:
            await self.scan()
            await asyncio.sleep(self._interval)
