"""Simulated time: durations run `speed` times faster than real time, while the timestamps
written on objects stay wall-clock so `kubectl get` shows sensible ages."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class Clock:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._sim_base = 0.0
        self._real_base = time.monotonic()
        self._frozen_wall: datetime | None = None

    def sim(self) -> float:
        """Simulated seconds elapsed; monotonic, what readiness delays and deadlines count."""
        if self._frozen_wall is not None:
            return self._sim_base
        return self._sim_base + (time.monotonic() - self._real_base) * self.speed

    def wall(self) -> datetime:
        if self._frozen_wall is not None:
            return self._frozen_wall
        return datetime.now(UTC)

    def now(self) -> str:
        return rfc3339(self.wall())

    def freeze(self, at: datetime) -> None:
        """Stop the clock at a past moment: seeding writes history as if it happened then."""
        self._sim_base = self.sim()
        self._frozen_wall = at

    def advance(self, seconds: float) -> None:
        if self._frozen_wall is None:
            raise RuntimeError("advance() needs a frozen clock")
        self._sim_base += seconds
        self._frozen_wall += timedelta(seconds=seconds)

    def resume(self) -> None:
        self._sim_base = self.sim()
        self._real_base = time.monotonic()
        self._frozen_wall = None

    def real_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed
