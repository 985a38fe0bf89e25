"""Run a Sandbox on its own event loop in a daemon thread, for synchronous callers: tests using
the official client or a kubectl subprocess, and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from rollback_sandbox.cluster.faults import Faults
from rollback_sandbox.cluster.kubeconfig import write_kubeconfig
from rollback_sandbox.cluster.server import Sandbox

T = TypeVar("T")


class SandboxThread:
    def __init__(
        self,
        seed: str = "empty",
        speed: float = 1.0,
        *,
        ready_after: float = 3.0,
        bookmark_interval: float = 5.0,
        history_limit: int = 20_000,
    ) -> None:
        self.sandbox = Sandbox(
            seed=seed,
            speed=speed,
            ready_after=ready_after,
            bookmark_interval=bookmark_interval,
            history_limit=history_limit,
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.sandbox.start(), self._loop).result(timeout=30)
        except BaseException:
            self._shutdown_loop()
            raise

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def faults(self) -> Faults:
        return self.sandbox.faults

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def write_kubeconfig(self, path: Path | str, namespace: str = "default") -> Path:
        return write_kubeconfig(path, self.url, namespace=namespace)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the sandbox's loop (to read its state safely) and return the result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.sandbox.stop(), self._loop).result(timeout=30)
        finally:
            self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> SandboxThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
