"""A document every replica sees, changed optimistically: the port the alert index and the
approval requests keep their entries in (a ConfigMap of the bot's own in a cluster)."""

from __future__ import annotations

from typing import Protocol

from bot.domain.rollback.models import JsonDict


class Document(Protocol):
    """One ConfigMap-like document with a resourceVersion."""

    @property
    def where(self) -> str:
        """For messages: "configmap ns/name"."""
        ...

    async def read(self, what: str) -> JsonDict | None:
        """The object (`metadata.resourceVersion`, `data`), or None when it does not exist."""
        ...

    async def write(self, what: str, version: str | None, data: dict[str, str]) -> str:
        """Create it (`version` None) or replace it if still at `version`; else `Conflict`.
        The resourceVersion it has now."""
        ...
