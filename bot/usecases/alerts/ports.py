"""What the alert use case needs from the outside: the service as it is now, and where its
messages are posted (Slack). The adapters implement these; the wiring passes them down."""

from __future__ import annotations

from typing import Protocol

from bot.config.catalog import ServiceRef
from bot.domain.alerts.advice import Advice
from bot.domain.alerts.views import AlertGroupView, DigestView
from bot.domain.rollback.views import ServiceView


class ServiceViewer(Protocol):
    async def view(self, ref: ServiceRef, asked_by: str) -> ServiceView: ...


class AlertMessages(Protocol):
    """The alert group's message in a channel, and the replies in threads."""

    async def post(self, channel: str, view: AlertGroupView) -> str:
        """Post the group's message; its ts."""
        ...

    async def update(self, channel: str, ts: str, view: AlertGroupView) -> None: ...

    async def note_resolved(self, channel: str, ts: str, view: AlertGroupView) -> None:
        """The "resolved after 23m07s" note in the message's thread."""
        ...

    async def reply(
        self, channel: str, thread_ts: str, view: ServiceView, title: str, advice: Advice | None
    ) -> str:
        """The offer under someone else's alert post (Alertmanager's own); the reply's ts."""
        ...


class DigestMessages(Protocol):
    """A channel's storm digest: one message edited in place, and the thread reply listing every
    service when they do not all fit in it."""

    async def post_digest(self, channel: str, view: DigestView) -> str:
        """Post the digest; its ts."""
        ...

    async def update_digest(
        self, channel: str, ts: str, view: DigestView, list_ts: str | None
    ) -> str | None:
        """Edit the digest, and post (or edit, at `list_ts`) the full list in its thread when
        the services overflow it; the list's ts, or None when there is none."""
        ...
