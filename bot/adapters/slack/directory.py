"""Slack's people: user group membership (`usergroups.users.list`) and guests (`users.info`),
cached briefly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from slack_sdk.web.async_client import AsyncWebClient

GROUP_CACHE_SECONDS = 60.0


class UserDirectory:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl: float = GROUP_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._guests: dict[str, tuple[float, bool]] = {}

    async def members(self, group: str, *, fresh: bool = False) -> frozenset[str]:
        cached = self._members.get(group)
        if not fresh and cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        response = await self._client.usergroups_users_list(usergroup=group)
        users = frozenset(str(u) for u in response.get("users") or [])
        self._members[group] = (self._clock(), users)
        return users

    async def is_guest(self, user: str) -> bool:
        """Asked of users.info (cached like groups): restricted or ultra-restricted."""
        cached = self._guests.get(user)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        response = await self._client.users_info(user=user)
        person = response.get("user") or {}
        guest = bool(person.get("is_restricted") or person.get("is_ultra_restricted"))
        self._guests[user] = (self._clock(), guest)
        return guest

    async def groups_of(
        self, user: str, among: Iterable[str], *, fresh: bool = False
    ) -> frozenset[str]:
        """Which of these groups the user is in (only those groups are asked about)."""
        return frozenset([g for g in among if user in await self.members(g, fresh=fresh)])
