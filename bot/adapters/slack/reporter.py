"""The rollback's story in the Slack thread: who started it, one progress message kept up to
date (edits throttled to Slack's rate limits), and the outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import blocks
from bot.adapters.slack.render import Message
from bot.domain.rollback.models import RunInfo, Target, Thread
from bot.domain.rollback.planning import RollbackPlan
from bot.domain.rollback.progress import Ending, Progress, ending

log = logging.getLogger(__name__)

# chat.update is Tier 3 (~50/min) and chat.postMessage ~1/s per channel: one edit a second at most
# per message, and all the running rollbacks' edits together within the method's budget.
MIN_EDIT_INTERVAL = 1.0
EDITS_PER_MINUTE = 45  # under Tier 3's 50, leaving room for the messages' own refreshes


class EditBudget:
    """Progress edits shared by every running rollback: at most `per_minute` in any minute.
    An edit over the budget waits (and is coalesced with later ones); the final state is never
    held back."""

    def __init__(
        self, per_minute: int = EDITS_PER_MINUTE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._spent: deque[float] = deque()

    def wait(self) -> float:
        """Seconds until an edit fits the budget (0: now)."""
        now = self._clock()
        while self._spent and self._spent[0] <= now - 60.0:
            self._spent.popleft()
        if len(self._spent) < self._per_minute:
            return 0.0
        return self._spent[0] + 60.0 - now

    def spend(self) -> None:
        self._spent.append(self._clock())


class ThreadReporter:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        namespace: str,
        deployment: str,
        min_interval: float = MIN_EDIT_INTERVAL,
        budget: EditBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._budget = budget or EditBudget(clock=clock)
        self._channel = channel
        self._thread_ts = thread_ts
        self._namespace = namespace
        self._deployment = deployment
        self._min_interval = min_interval
        self._clock = clock
        self._run: RunInfo | None = None
        self._progress_ts: str | None = None
        self._last_edit = float("-inf")
        self._pending: tuple[Progress, float] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def _post(self, message: Message) -> str:
        response = await self._client.chat_postMessage(
            channel=self._channel,
            thread_ts=self._thread_ts,
            text=message.text,
            blocks=message.blocks,
        )
        return str(response["ts"])

    async def started(self, run: RunInfo, plan: RollbackPlan, reason: str | None) -> None:
        self._run = run
        await self._post(blocks.started_message(run, plan.from_revision, reason, self._namespace))

    async def progress(self, progress: Progress, elapsed: float) -> None:
        """Note the newest progress; the edit goes out in the background, so a slow or
        rate-limited Slack never holds up following the rollout."""
        self._pending = (progress, elapsed)
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush_when_due())

    async def _flush_when_due(self) -> None:
        wait = max(self._last_edit + self._min_interval - self._clock(), self._budget.wait())
        if wait > 0:
            await asyncio.sleep(wait)  # later progress joins the same edit meanwhile
        try:
            await self._flush()
        except Exception:  # the next progress, or the final state, tries again
            log.exception("could not update the progress message")

    async def _flush(self, ended: Ending | None = None) -> None:
        """Post or edit the progress message with the pending progress; `ended`: the last
        edit, showing how the rollout ended instead of "Rolling out"."""
        async with self._lock:
            if self._pending is None or self._run is None:
                return
            progress, elapsed = self._pending
            self._pending = None
            message = blocks.progress_message(progress, elapsed, self._run.to_version, ended)
            self._last_edit = self._clock()
            self._budget.spend()
            if self._progress_ts is None:
                self._progress_ts = await self._post(message)
            else:
                await self._client.chat_update(
                    channel=self._channel,
                    ts=self._progress_ts,
                    text=message.text,
                    blocks=message.blocks,
                )

    async def finished(
        self, last: Progress | None, elapsed: float, error: str | None, *, unknown: bool = False
    ) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            await asyncio.gather(self._flush_task, return_exceptions=True)
        if last is not None and self._run is not None:
            # The progress message ends showing the final state and counts, not the last
            # throttled ones under "Rolling out".
            self._pending = (last, elapsed)
            try:
                await self._flush(ending(last, error, unknown=unknown))
            except Exception:
                log.exception("could not update the progress message")
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
            )
        )

    async def picked_up(self, run: RunInfo, previous: str) -> None:
        self._run = run
        await self._post(blocks.picked_up_message(run, previous, self._namespace))

    async def handed_over(self, run: RunInfo, me: str) -> None:
        if self._flush_task is not None:
            self._flush_task.cancel()
            await asyncio.gather(self._flush_task, return_exceptions=True)
        await self._post(blocks.handed_over_message(run, me))

    async def not_picked_up(self, run: RunInfo, previous: str, detail: str, *, sent: bool) -> None:
        await self._post(blocks.not_picked_up_message(run, previous, detail, sent=sent))


class ThreadReporters:
    """A `ThreadReporter` for each rollback asked from Slack."""

    def __init__(self, client: AsyncWebClient, *, min_interval: float = MIN_EDIT_INTERVAL) -> None:
        self._client = client
        self._min_interval = min_interval
        self._budget = EditBudget()

    def reporter(self, thread: Thread | None, target: Target) -> ThreadReporter:
        if thread is None:
            raise ValueError("a rollback asked from Slack is told in its thread")
        return ThreadReporter(
            self._client,
            channel=thread.channel,
            thread_ts=thread.thread_ts,
            namespace=target.namespace,
            deployment=target.name,
            min_interval=self._min_interval,
            budget=self._budget,
        )
