"""Slack user group membership, asked of `usergroups.users.list` and cached briefly."""

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

    async def members(self, group: str, *, fresh: bool = False) -> frozenset[str]:
        cached = self._members.get(group)
        if not fresh and cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        response = await self._client.usergroups_users_list(usergroup=group)
        users = frozenset(str(u) for u in response.get("users") or [])
        self._members[group] = (self._clock(), users)
        return users

    async def groups_of(
        self, user: str, among: Iterable[str], *, fresh: bool = False
    ) -> frozenset[str]:
        """Which of these groups the user is in (only those groups are asked about)."""
        return frozenset([g for g in among if user in await self.members(g, fresh=fresh)])
