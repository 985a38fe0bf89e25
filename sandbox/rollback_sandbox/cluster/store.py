"""Object storage with a global resourceVersion and a bounded event history for watches.

Everything here runs on the sandbox's event loop, so each call is atomic.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollback_sandbox.cluster.errors import expired

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: str  # resource storage key, e.g. deployments.apps
    obj: JsonDict
    prev: JsonDict | None  # the object before, so selector watches can see it leave


@dataclass(eq=False)
class Watcher:
    key: str
    namespace: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)

    def close(self) -> None:
        self.queue.put_nowait(None)


class Store:
    def __init__(self, history_limit: int = 20_000) -> None:
        self.rv = 0
        self._objects: dict[str, dict[tuple[str, str], JsonDict]] = {}
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        # events with rv <= compacted are gone: a watch from before that is answered 410
        self.compacted = 0
        self._watchers: set[Watcher] = set()
        self.listeners: list[Callable[[Event], None]] = []

    # ------------------------------------------------------------------ reads

    def get(self, key: str, namespace: str, name: str) -> JsonDict | None:
        """The stored object itself: callers copy before changing it."""
        return self._objects.get(key, {}).get((namespace, name))

    def objects(self, key: str, namespace: str | None = None) -> list[JsonDict]:
        """Objects in etcd key order: by namespace, then name."""
        items = self._objects.get(key, {})
        return [items[k] for k in sorted(items) if namespace is None or k[0] == namespace]

    # ------------------------------------------------------------------ writes

    def put(self, key: str, obj: JsonDict) -> JsonDict:
        """Store a copy under a new resourceVersion and tell the watchers; returns the copy."""
        meta = obj["metadata"]
        ident = (meta.get("namespace", ""), meta["name"])
        bucket = self._objects.setdefault(key, {})
        prev = bucket.get(ident)
        self.rv += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.rv)
        bucket[ident] = stored
        self._emit(Event(self.rv, "MODIFIED" if prev else "ADDED", key, stored, prev))
        return stored

    def remove(self, key: str, namespace: str, name: str) -> JsonDict | None:
        prev = self._objects.get(key, {}).pop((namespace, name), None)
        if prev is None:
            return None
        self.rv += 1
        gone = copy.deepcopy(prev)
        # a DELETED event carries the resourceVersion of the deletion itself
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(Event(self.rv, "DELETED", key, gone, prev))
        return gone

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self.compacted = self._history.popleft().rv
        for w in list(self._watchers):
            if w.key == event.key and (
                w.namespace is None or w.namespace == event.obj["metadata"].get("namespace")
            ):
                w.queue.put_nowait(event)
        for listener in list(self.listeners):
            listener(event)

    # ------------------------------------------------------------------ watches

    def watch(
        self, key: str, namespace: str | None, since: int | None
    ) -> tuple[Watcher, list[Event]]:
        """Register a watcher; with `since`, also return the retained events after it.

        Raises 410 Expired when events after `since` were compacted away.
        """
        backlog: list[Event] = []
        if since is not None:
            if since < self.compacted:
                raise expired(f"too old resource version: {since} ({self.compacted + 1})")
            backlog = [
                e
                for e in self._history
                if e.rv > since
                and e.key == key
                and (namespace is None or e.obj["metadata"].get("namespace") == namespace)
            ]
        watcher = Watcher(key, namespace)
        self._watchers.add(watcher)
        return watcher, backlog

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def drop_watchers(self) -> int:
        """End every open watch, as an apiserver restart or a load balancer would."""
        dropped = list(self._watchers)
        self._watchers.clear()
        for w in dropped:
            w.close()
        return len(dropped)

    def compact(self) -> None:
        """Forget all history: any watch from an earlier resourceVersion gets 410 Gone."""
        self._history.clear()
        self.compacted = self.rv
