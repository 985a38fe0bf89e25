"""Fault injection, safe to drive from any thread while the sandbox serves on its own loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from rollback_sandbox.cluster.errors import REASONS, ApiError

T = TypeVar("T")

_MESSAGES = {
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted (injected fault)",
    429: "the server has received too many requests and has asked us to try again later",
    409: "Operation cannot be fulfilled: the object has been modified; please apply your "
    "changes to the latest version and try again",
}


@dataclass
class _Failure:
    remaining: int
    status: int
    method: str | None
    path_contains: str | None
    message: str | None


class Faults:
    """What tests break on purpose, and the requests they count. Every method may be called
    from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str]] = []
        self._latency = 0.0
        self._failures: list[_Failure] = []
        self.injected = 0  # failures served so far
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drop: Callable[[], int] | None = None
        self._compact: Callable[[], None] | None = None

    def bind(
        self, loop: asyncio.AbstractEventLoop, drop: Callable[[], int], compact: Callable[[], None]
    ) -> None:
        self._loop, self._drop, self._compact = loop, drop, compact

    # ------------------------------------------------------------------ configuration

    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    def set_latency(self, seconds: float) -> None:
        """Delay every API request by this many real seconds (0 to stop)."""
        with self._lock:
            self._latency = max(seconds, 0.0)

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` and a proper Status body.

        `method` (GET, PATCH, ...) and `path_contains` narrow which requests count.
        """
        with self._lock:
            self._failures.append(
                _Failure(count, status, method.upper() if method else None, path_contains, message)
            )

    def clear(self) -> None:
        with self._lock:
            self._latency = 0.0
            self._failures.clear()

    def requests(self, method: str | None = None, path_contains: str = "") -> list[str]:
        """The paths (with query) of the requests served so far, narrowed like `fail_next`."""
        with self._lock:
            return [
                path
                for seen_method, path in self._seen
                if (method is None or seen_method == method.upper()) and path_contains in path
            ]

    def take(self, method: str, path: str) -> ApiError | None:
        """The failure this request should get, if any; counts it as served."""
        with self._lock:
            self._seen.append((method.upper(), path))
            for f in self._failures:
                if (f.method is None or f.method == method.upper()) and (
                    f.path_contains is None or f.path_contains in path
                ):
                    f.remaining -= 1
                    if f.remaining <= 0:
                        self._failures.remove(f)
                    self.injected += 1
                    return ApiError(
                        f.status,
                        f.message or _MESSAGES.get(f.status, f"injected fault ({f.status})"),
                        reason=REASONS.get(f.status, "Unknown"),
                    )
        return None

    # ------------------------------------------------------------------ actions on the server

    def drop_watches(self) -> int:
        """End every open watch connection now; returns how many there were."""
        if self._drop is None:
            return 0
        return self._on_loop(self._drop)

    def compact_history(self) -> None:
        """Forget the event history: watches from any earlier resourceVersion get 410 Gone."""
        if self._compact is not None:
            self._on_loop(self._compact)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        loop = self._loop
        if loop is None:
            return fn()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=10)
