"""Events the controllers record, as core/v1 Events the way client-go's recorder writes them."""

from __future__ import annotations

import time
from typing import Any

from rollback_sandbox.cluster import resources
from rollback_sandbox.cluster.clock import Clock
from rollback_sandbox.cluster.errors import ApiError
from rollback_sandbox.cluster.registry import Registry

JsonDict = dict[str, Any]


class Recorder:
    def __init__(self, registry: Registry, clock: Clock, limit: int = 500) -> None:
        self._registry = registry
        self._clock = clock
        self._limit = limit
        self._names: list[tuple[str, str]] = []

    def event(self, obj: JsonDict, kind: str, reason: str, message: str, component: str) -> None:
        meta = obj["metadata"]
        now = self._clock.now()
        event: JsonDict = {
            "metadata": {
                # the recorder names events <object>.<unix nanos in hex>
                "name": f"{meta['name']}.{time.time_ns():x}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "kind": obj["kind"],
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
                "apiVersion": obj["apiVersion"],
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": kind,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        try:
            created = self._registry.create(resources.EVENTS, meta["namespace"], event)
        except ApiError:
            return  # the namespace went away meanwhile: a real recorder drops it too
        self._names.append((meta["namespace"], created["metadata"]["name"]))
        # events expire in a real cluster (1h TTL); here the oldest go past a count
        while len(self._names) > self._limit:
            ns, name = self._names.pop(0)
            self._registry.store.remove(resources.EVENTS.key, ns, name)
