"""Storm digests kept in step: the one message that shows a channel's alert storm, posted by the
delivery that started it and edited as its groups arrive and resolve.

What a digest holds is in the alert index (`bot.domain.alerts.storms`), so every replica renders
the same thing. A delivery waits only for its group to be in the index (and, for the one that
must, for the digest's first post); the edits go out in the background, one at a time per digest,
each showing everything known when it was rendered. After an edit the record is read again: if
another replica changed it meanwhile, the digest is rendered once more, so the last edit always
shows the last state even when two replicas' edits cross.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.config.catalog import Catalog
from bot.domain.alerts.advice import advise
from bot.domain.alerts.arrivals import Arrival
from bot.domain.alerts.storms import service_summaries
from bot.domain.alerts.views import DigestServiceView, DigestView
from bot.domain.errors import RollbackBotError
from bot.domain.retry import Backoff, retry
from bot.domain.rollback.views import ServiceView
from bot.domain.times import utc_now
from bot.usecases.alerts.index import AlertIndex, StoredDigest
from bot.usecases.alerts.ports import DigestMessages, ServiceViewer

log = logging.getLogger(__name__)

# A storm reads each of its services at most this often, however many groups arrive.
VIEW_TTL_SECONDS = 15.0
# Cluster reads of one render at a time: a storm of many services must not starve the clicks.
CONCURRENT_READS = 8
CLOSE_GRACE_SECONDS = 5.0
# Recording a posted digest is retried on a passing failure (its post is not undone); an edit
# that failed is tried again this many times before the next group's change tries it.
RECORD_ATTEMPTS = 3
EDIT_ATTEMPTS = 3
RECORD_BACKOFF = Backoff(first=0.5, factor=2.0, cap=4.0)


class Digests:
    def __init__(
        self,
        catalog: Catalog,
        index: AlertIndex,
        messages: DigestMessages,
        views: ServiceViewer,
        *,
        window: timedelta,
        now: Callable[[], datetime] = utc_now,
        view_ttl: float = VIEW_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._catalog = catalog
        self._index = index
        self._messages = messages
        self._views = views
        self._window = window
        self._now = now
        self._view_ttl = view_ttl
        self._monotonic = monotonic
        self._seen: dict[str, tuple[float, ServiceView | None, str | None]] = {}
        self._dirty: set[str] = set()
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._reads = asyncio.Semaphore(CONCURRENT_READS)  # for all renders together

    async def joined(self, arrival: Arrival) -> None:
        """A group went into (or changed in) a digest: post the digest when this delivery
        must, then bring it up to date in the background. A failed first post raises (the
        webhook answers 5xx and Alertmanager retries); the claim is given back first."""
        key = arrival.digest
        if key is None:
            return
        if arrival.post_digest is not None:
            await self._post(key, arrival.post_digest)
        if arrival.changed or arrival.post_digest is not None:
            self.refresh_soon(key)

    def refresh_soon(self, key: str) -> None:
        self._dirty.add(key)
        task = self._refreshing.get(key)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._refresh(key))
            self._refreshing[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._refreshing.get(key) is task:
            del self._refreshing[key]

    async def settle(self) -> None:
        """Until every digest edit asked for so far has gone out (or failed)."""
        while tasks := [t for t in self._refreshing.values() if not t.done()]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """At shutdown: the edits on their way get `grace` seconds, then are cut short; the
        next delivery after a restart renders the digest again from the index."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settle(), grace)
        tasks = [t for t in self._refreshing.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- posting and editing ------------------------------------------------------------------

    async def _post(self, key: str, token: str) -> None:
        found = await self._index.digest(key)
        if found is None:
            return
        try:
            # Posted within the claim's life, or given up (and given back): never posted after
            # another delivery took the claim over.
            ts = await asyncio.wait_for(
                self._messages.post_digest(found.record.channel, await self._render(found)),
                self._index.posting_ttl.total_seconds() / 2,
            )
        except Exception:
            await self._index.abandon_digest(key, token)
            raise
        recorded = await retry(
            lambda _n: self._index.digest_posted(key, ts, token),
            retry_on=RollbackBotError,
            attempts=RECORD_ATTEMPTS,
            backoff=RECORD_BACKOFF,
        )
        if not recorded:
            log.warning("alert digest %s was posted twice (a replica took it over)", key)

    async def _refresh(self, key: str) -> None:
        failures = 0
        while key in self._dirty:
            self._dirty.discard(key)
            try:
                await self._edit(key)
                failures = 0
            except Exception:  # tried again a little later; then by the next group
                failures += 1
                log.exception("could not update alert digest %s (try %d)", key, failures)
                if failures >= EDIT_ATTEMPTS:
                    return
                self._dirty.add(key)
                await asyncio.sleep(RECORD_BACKOFF.delay(failures))

    async def _edit(self, key: str) -> None:
        found = await self._index.digest(key)
        if found is None:
            return
        record = found.record
        if record.ts is None:
            return  # its poster renders it once posted
        list_ts = await self._messages.update_digest(
            record.channel, record.ts, await self._render(found), record.list_ts
        )
        if list_ts is not None and list_ts != record.list_ts:
            await self._index.digest_list_posted(key, list_ts)
        again = await self._index.digest(key)
        if again is not None and (again.lines, again.record.groups) != (found.lines, record.groups):
            self._dirty.add(key)  # another replica changed it while this edit was on its way

    # -- what it shows ----------------------------------------------------------------------

    async def _render(self, found: StoredDigest) -> DigestView:
        record = found.record
        summaries = service_summaries(found.lines)

        async def line(summary_index: int) -> DigestServiceView:
            summary = summaries[summary_index]
            async with self._reads:
                view, problem = await self._service(summary.service)
            advice = None
            if view is not None and summary.since is not None and summary.firing:
                history = view.history
                advice = advise(
                    summary.since, history.went_out, history.deployment.version, self._window
                )
            return DigestServiceView(summary, view, advice, problem)

        lines = await asyncio.gather(*(line(i) for i in range(len(summaries))))
        return DigestView(
            started=record.started,
            last=record.last,
            window=self._index.storms.window,
            groups=len(found.lines),
            services=tuple(lines),
            taken_at=self._now(),
        )

    async def _service(self, service: str) -> tuple[ServiceView | None, str | None]:
        """The service now, read at most every `view_ttl` seconds; or why it could not be."""
        seen = self._seen.get(service)
        if seen is not None and self._monotonic() - seen[0] < self._view_ttl:
            return seen[1], seen[2]
        try:
            view: ServiceView | None = await self._views.view(
                self._catalog.resolve(service), "alertmanager"
            )
            problem = None
        except RollbackBotError as exc:
            view, problem = None, str(exc)
        self._seen[service] = (self._monotonic(), view, problem)
        return view, problem
