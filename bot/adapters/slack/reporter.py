"""The rollback's story in the Slack thread: who started it, one progress message kept up to
date, and the outcome.

Pacing is the scheduler's (`scheduler.py`): progress goes out at `Priority.PROGRESS`, and an edit
still waiting for Slack's budget is replaced by a newer one, so only the latest state is sent;
the start, the final state and the outcome go at `Priority.ROLLBACK`, ahead of all that."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from bot.adapters.slack import blocks
from bot.adapters.slack.render import Message
from bot.adapters.slack.scheduled_client import ScheduledWebClient
from bot.adapters.slack.scheduler import Priority
from bot.adapters.slack.thread_writer import ThreadWriter
from bot.domain.rollback.models import RunInfo, Target, Thread, WorkloadKind
from bot.domain.rollback.planning import RollbackPlan
from bot.domain.rollback.progress import Ending, Progress, ending

log = logging.getLogger(__name__)


class ThreadReporter(ThreadWriter):
    """Tells one rollback in its thread. `client` must be scheduled: the scheduler keeps the
    progress edits in order and within Slack's limits."""

    def __init__(
        self,
        client: ScheduledWebClient,
        *,
        channel: str,
        thread_ts: str,
        namespace: str,
        deployment: str,
        kind: WorkloadKind = WorkloadKind.DEPLOYMENT,
    ) -> None:
        super().__init__(client, channel=channel, thread_ts=thread_ts)
        self._namespace = namespace
        self._deployment = deployment
        self._kind = kind
        self._run: RunInfo | None = None
        self._progress_ts: str | None = None
        self._latest: tuple[Progress, float] | None = None
        self._posting: asyncio.Task[None] | None = None  # the progress message's first post
        self._background: set[asyncio.Task[None]] = set()
        self._ended = False
        # Edits folded into one send all fail with the same error: said once, not once each.
        self._last_failure: BaseException | None = None

    def _progress_message(
        self, run: RunInfo, progress: Progress, elapsed: float, ended: Ending | None = None
    ) -> Message:
        return blocks.progress_message(progress, elapsed, run.to_version, ended)

    async def started(self, run: RunInfo, plan: RollbackPlan, reason: str | None) -> None:
        self._run = run
        await self._post(blocks.started_message(run, plan.from_revision, reason, self._namespace))

    async def progress(self, progress: Progress, elapsed: float) -> None:
        """Note the newest progress; it goes out in the background, so a slow or rate-limited
        Slack never holds up following the rollout."""
        if self._run is None or self._ended:
            return
        self._latest = (progress, elapsed)
        if self._progress_ts is not None:
            self._start(self._edit(self._progress_ts, self._run, progress, elapsed))
        elif self._posting is None or self._posting.done():
            self._posting = self._start(self._post_progress(self._run))
        # Otherwise the post under way edits the newest progress in once it is there.

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _post_progress(self, run: RunInfo) -> None:
        posted = self._latest
        if posted is None:
            return
        try:
            ts = await self._post(self._progress_message(run, *posted), Priority.PROGRESS)
        except Exception as exc:  # the next progress, or the final state, posts it again
            self._failed(exc)
            return
        self._progress_ts = ts
        if self._latest is not posted and self._latest is not None and not self._ended:
            self._start(self._edit(ts, run, *self._latest))

    async def _edit(self, ts: str, run: RunInfo, progress: Progress, elapsed: float) -> None:
        try:
            await self._update(
                ts, self._progress_message(run, progress, elapsed), Priority.PROGRESS
            )
        except Exception as exc:  # the next progress, or the final state, tries again
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if exc is not self._last_failure:
            self._last_failure = exc
            log.error("could not update the progress message", exc_info=exc)

    async def _drop_background(self) -> None:
        """Progress not sent yet is not sent: what comes next replaces it."""
        tasks = set(self._background)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def finished(
        self, last: Progress | None, elapsed: float, error: str | None, *, unknown: bool = False
    ) -> None:
        self._ended = True
        if last is not None and self._run is not None:
            # The progress message ends showing the final state and counts, not the last ones
            # under "Rolling out". An edit of it still waiting is folded into this one.
            if self._posting is not None:
                await asyncio.wait({self._posting})  # the message to end is the one it posts
            final = self._progress_message(
                self._run, last, elapsed, ending(last, error, unknown=unknown)
            )
            try:
                if self._progress_ts is None:
                    self._progress_ts = await self._post(final)
                else:
                    await self._update(self._progress_ts, final, Priority.ROLLBACK)
            except Exception as exc:
                self._failed(exc)
        else:
            await self._drop_background()
        to_version = self._run.to_version if self._run else "?"
        service = self._run.service if self._run else self._deployment
        await self._post(
            blocks.outcome_message(
                service,
                to_version,
                self._namespace,
                self._deployment,
                last,
                elapsed,
                error,
                unknown=unknown,
                kind=self._kind,
            )
        )

    async def picked_up(self, run: RunInfo, previous: str) -> None:
        self._run = run
        await self._post(blocks.picked_up_message(run, previous, self._namespace))

    async def handed_over(self, run: RunInfo, me: str) -> None:
        self._ended = True
        await self._drop_background()
        await self._post(blocks.handed_over_message(run, me))

    async def not_picked_up(self, run: RunInfo, previous: str, detail: str, *, sent: bool) -> None:
        await self._post(blocks.not_picked_up_message(run, previous, detail, sent=sent))


class ThreadReporters:
    """A `ThreadReporter` for each rollback asked from Slack, all sharing `client`'s
    scheduler (so all their edits share chat.update's one budget)."""

    def __init__(self, client: ScheduledWebClient) -> None:
        self._client = client

    def reporter(self, thread: Thread | None, target: Target) -> ThreadReporter:
        if thread is None:
            raise ValueError("a rollback asked from Slack is told in its thread")
        return ThreadReporter(
            self._client,
            channel=thread.channel,
            thread_ts=thread.thread_ts,
            namespace=target.namespace,
            deployment=target.name,
            kind=target.kind,
        )
