"""The alert index's document in this process's memory: for a single replica without a cluster
to keep it in, and for tests of the alert use case. Lost on restart."""

from __future__ import annotations

from bot.domain.errors import Conflict
from bot.domain.rollback.models import JsonDict


class MemoryDocument:
    def __init__(self) -> None:
        self._data: dict[str, str] | None = None
        self._version = 0

    @property
    def where(self) -> str:
        return "the in-memory alert index"

    async def read(self, what: str) -> JsonDict | None:
        if self._data is None:
            return None
        return {"metadata": {"resourceVersion": str(self._version)}, "data": dict(self._data)}

    async def write(self, what: str, version: str | None, data: dict[str, str]) -> str:
        current = None if self._data is None else str(self._version)
        if version != current:
            raise Conflict(f"{what}: conflict (the index changed)")
        self._data = dict(data)
        self._version += 1
        return str(self._version)
