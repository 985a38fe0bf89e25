"""The blue-green switch's story in the Slack thread (the use case's `SwitchReporter`): who
started it, the scale-up, one readiness message kept up to date as the colour comes up, and the
outcome with the switch's time; and the blue-green message it was asked from, locked while it
runs and refreshed after (`SwitchMessages`).

Pacing is the scheduler's, as for rollbacks (`reporter.py`): readiness edits go at
`Priority.PROGRESS` and only the latest waiting one is sent; the start, the final state and the
outcome go at `Priority.ROLLBACK`."""

from __future__ import annotations

import asyncio
import logging

from bot.adapters.slack import switch_blocks
from bot.adapters.slack.render import Message
from bot.adapters.slack.scheduled_client import ScheduledWebClient
from bot.adapters.slack.scheduler import Priority
from bot.adapters.slack.thread_writer import ThreadWriter
from bot.domain.rollback.blue_green import ColorState, SwitchPlan, SwitchProgress
from bot.domain.rollback.models import RunInfo, Thread
from bot.domain.rollback.switches import SwitchOutcome, SwitchView

log = logging.getLogger(__name__)


class SlackSwitchReporter(ThreadWriter):
    """Tells one switch in its thread. `client` must be scheduled."""

    def __init__(
        self, client: ScheduledWebClient, *, channel: str, thread_ts: str, namespace: str
    ) -> None:
        super().__init__(client, channel=channel, thread_ts=thread_ts)
        self._namespace = namespace
        self._readiness_ts: str | None = None
        self._latest: Message | None = None  # a readiness edit not sent yet
        self._sending: asyncio.Task[None] | None = None
        self._last: tuple[SwitchPlan, ColorState, float] | None = None
        self._settled = False  # the readiness message shows its final state
        self._failure: str | None = None

    async def started(self, run: RunInfo, plan: SwitchPlan, reason: str | None) -> None:
        await self._post(switch_blocks.started_message(run, plan, reason, self._namespace))

    async def scaling_up(self, plan: SwitchPlan, current: ColorState) -> None:
        await self._post(switch_blocks.scaling_message(plan, current))

    async def waiting(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        """The newest state goes out in the background: a slow Slack never holds up the
        switch, and a state not sent yet is replaced by a newer one."""
        if self._settled:
            return
        self._last = (plan, target, elapsed)
        self._latest = switch_blocks.readiness_message(plan, target, elapsed)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_latest())

    async def _send_latest(self) -> None:
        while self._latest is not None:
            message, self._latest = self._latest, None
            try:
                if self._readiness_ts is None:
                    self._readiness_ts = await self._post(message, Priority.PROGRESS)
                else:
                    await self._update(self._readiness_ts, message, Priority.PROGRESS)
            except Exception as exc:  # the next state, or the final one, tries again
                if type(exc).__name__ != self._failure:
                    self._failure = type(exc).__name__
                    log.error("could not update the readiness message", exc_info=exc)

    async def _settle(self, message: Message) -> None:
        """The readiness message's final state: posted, or the message edited into it."""
        self._settled = True
        self._latest = None
        if self._sending is not None:
            await asyncio.wait({self._sending})  # the message to end is the one it posts
        if self._readiness_ts is None:
            self._readiness_ts = await self._post(message)
        else:
            await self._update(self._readiness_ts, message, Priority.ROLLBACK)

    async def ready(self, plan: SwitchPlan, target: ColorState, elapsed: float) -> None:
        await self._settle(switch_blocks.readiness_message(plan, target, elapsed, ready=True))

    async def patched(self, plan: SwitchPlan) -> None:
        """Told with the outcome, a moment later: the switch takes well under a second."""

    async def converging(self, plan: SwitchPlan, progress: SwitchProgress, elapsed: float) -> None:
        """Likewise: the outcome says what the slices showed if they did not follow."""

    async def finished(self, outcome: SwitchOutcome) -> None:
        if not self._settled and self._last is not None:
            plan, target, elapsed = self._last
            try:
                await self._settle(
                    switch_blocks.readiness_message(plan, target, elapsed, ready=False)
                )
            except Exception:  # the outcome below says it all the same
                log.exception("could not end the readiness message")
        await self._post(switch_blocks.outcome_message(outcome))


class SlackSwitchReporters:
    """A `SlackSwitchReporter` for each switch asked from Slack, all sharing `client`'s
    scheduler."""

    def __init__(self, client: ScheduledWebClient) -> None:
        self._client = client

    def reporter(self, thread: Thread | None, namespace: str) -> SlackSwitchReporter:
        if thread is None:
            raise ValueError("a switch asked from Slack is told in its thread")
        return SlackSwitchReporter(
            self._client, channel=thread.channel, thread_ts=thread.thread_ts, namespace=namespace
        )


class SlackSwitchMessages:
    """The blue-green message a switch was asked from, kept in step with it."""

    def __init__(self, client: ScheduledWebClient) -> None:
        self._client = client

    async def _update(self, thread: Thread, message: Message) -> None:
        if thread.message_ts is None:
            return
        await self._client.chat_update(
            channel=thread.channel, ts=thread.message_ts, text=message.text, blocks=message.blocks
        )

    async def lock(self, thread: Thread, view: SwitchView) -> None:
        await self._update(thread, switch_blocks.switch_message(view))

    async def refresh(self, thread: Thread, view: SwitchView) -> None:
        await self._update(thread, switch_blocks.switch_message(view))
