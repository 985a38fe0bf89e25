"""Work a listener does after its ack waits its turn, so acks come first.

Slack gives an ack 3 seconds and retries after that. Under a burst (an incident channel where
everyone types `/rollback` at once), every command's post-ack work (reading the cluster,
rendering, posting) would otherwise run interleaved with the dispatch of the requests still
arriving, and their acks would queue behind it. A few slots keep that work going without
letting it crowd the loop and the cluster's worker threads.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

AFTER_ACK_SLOTS = 4


class AfterAck:
    def __init__(self, slots: int = AFTER_ACK_SLOTS) -> None:
        self._slots = slots
        self._gate: asyncio.Semaphore | None = None  # made on first use, on the running loop

    async def __aenter__(self) -> None:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self._slots)
        await self._gate.acquire()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._gate is not None
        self._gate.release()
