"""The audit trail in the cluster: ConfigMaps in the bot's own namespace, one per service per
day, appended to with the resourceVersion read (a concurrent append of another replica is a
`Conflict`, and the caller retries), read back by label, and deleted past retention. The layout
and every decision are `bot.domain.audit_store`'s; this is the I/O, through the cluster's one
client layer (`KubeClient`) and its `ConfigMapDocument`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from bot.adapters.kube.client import KubeClient
from bot.adapters.kube.configmaps import ConfigMapDocument
from bot.domain import audit_store as layout
from bot.domain.audit import AuditRecord
from bot.domain.audit_store import AuditKey
from bot.domain.errors import ClusterError, NotFound
from bot.domain.times import utc_now

# A list of the objects past retention is read in pages of this many.
PRUNE_PAGE = 100


class ClusterAuditStore:
    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        *,
        cap_bytes: int = layout.DEFAULT_CAP_BYTES,
        retention_days: int = layout.DEFAULT_RETENTION_DAYS,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if not 0 < cap_bytes < layout.CONFIGMAP_LIMIT_BYTES:
            raise ValueError(f"an audit object's cap must be below {layout.CONFIGMAP_LIMIT_BYTES}")
        self._kube = kube
        self.namespace = namespace
        self.cap_bytes = cap_bytes
        self.retention_days = retention_days
        self._now = now
        # The day's object each target was last appended to: the next append starts there
        # rather than reading the full ones before it again.
        self._parts: dict[tuple[AuditKey, date], int] = {}
        self._hint = (
            f"the audit trail needs get, list, create, update and delete on configmaps in "
            f"namespace {namespace}"
        )

    @property
    def where(self) -> str:
        return f"configmaps of namespace {self.namespace}"

    def _document(self, key: AuditKey, day: date, part: int) -> ConfigMapDocument:
        return ConfigMapDocument(
            self._kube,
            self.namespace,
            layout.object_name(key, day, part),
            layout.COMPONENT,
            labels=layout.labels(key, day, part),
        )

    async def append(self, record: AuditRecord, entry: str) -> str:
        """Add `record` under the data key `entry` to its service's object of its day, or the
        day's next one when that is full; the object's name. Once: a record already there
        (a retry after a write whose answer was lost) is not added again. Raises `Conflict`
        when another writer changed the object since it was read (read again and retry)."""
        key, day = AuditKey.of(record), layout.day_of(record.at)
        line = layout.encode(record)
        adding = len(entry.encode("utf-8")) + len(line.encode("utf-8"))
        if (key, day) not in self._parts:  # a new day: forget the days before yesterday
            yesterday = day - timedelta(days=1)
            self._parts = {k: v for k, v in self._parts.items() if k[1] >= yesterday}
        part = self._parts.get((key, day), 0)
        while True:
            document = self._document(key, day, part)
            what = f"appending to the audit trail in {document.where}"
            current = await document.read(what)
            data: dict[str, str] = {}
            version: str | None = None
            if current is not None:
                data = dict(current.get("data") or {})
                version = str(current.get("metadata", {}).get("resourceVersion") or "") or None
            if entry in data:
                return document.name
            if layout.fits(layout.used_bytes(data), adding, self.cap_bytes):
                break
            if part + 1 >= layout.MAX_PARTS_PER_DAY:
                raise ClusterError(
                    f"{what}: {key} already has {layout.MAX_PARTS_PER_DAY} full objects today"
                )
            part += 1
            self._parts[(key, day)] = part
        data[entry] = line
        await document.write(what, version, data)
        self._parts[(key, day)] = part
        return document.name

    async def read(self, key: AuditKey, days: Sequence[date]) -> list[AuditRecord]:
        """Every record of `key` in the objects of `days`, newest first. What cannot be read as
        a record (an object edited by hand) is left out."""
        if not days:
            return []
        found = await self._kube.request(
            f"reading the audit trail of {key} in {self.where}",
            "GET",
            f"/api/v1/namespaces/{self.namespace}/configmaps",
            query=[("labelSelector", layout.target_selector(key, list(days)))],
            forbidden_hint=self._hint,
        )
        records = []
        for item in found.get("items") or []:
            data = item.get("data") if isinstance(item, dict) else None
            if not isinstance(data, dict):
                continue
            for line in data.values():
                record = layout.decode(line) if isinstance(line, str) else None
                if record is not None and AuditKey.of(record) == key:
                    records.append(record)
        return layout.newest_first(records)

    async def prune(self) -> list[str]:
        """Delete the audit objects past retention; their names. An object another replica
        deleted meanwhile is not an error."""
        now = self._now()
        deleted: list[str] = []
        token = ""
        while True:
            query = [("labelSelector", layout.all_objects_selector()), ("limit", str(PRUNE_PAGE))]
            if token:
                query.append(("continue", token))
            page = await self._kube.request(
                f"looking for audit objects past retention in {self.where}",
                "GET",
                f"/api/v1/namespaces/{self.namespace}/configmaps",
                query=query,
                forbidden_hint=self._hint,
            )
            for item in page.get("items") or []:
                metadata = item.get("metadata") or {}
                day = layout.parse_day((metadata.get("labels") or {}).get(layout.DAY_LABEL))
                name = metadata.get("name")
                if not isinstance(name, str) or not layout.expired(day, now, self.retention_days):
                    continue
                try:
                    await self._kube.request(
                        f"deleting audit object {name} past retention in {self.where}",
                        "DELETE",
                        f"/api/v1/namespaces/{self.namespace}/configmaps/{name}",
                        forbidden_hint=self._hint,
                    )
                except NotFound:
                    continue
                deleted.append(name)
            token = str((page.get("metadata") or {}).get("continue") or "")
            if not token:
                return deleted
