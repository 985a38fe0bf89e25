"""`rollback-bot audit SERVICE [--since 7d] [-o table|json]`: the audit trail kept in the
cluster, newest first. Where it is (README "The record"): ConfigMaps of the bot's namespace
(`ROLLBACK_BOT_NAMESPACE`, else the service account's, else `default`) on the cluster of the
current context. Reading it takes `list` on configmaps there: RBAC decides who may."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.config.catalog import Catalog
from bot.config.settings import Settings
from bot.domain.audit import AuditRecord
from bot.domain.errors import ConfigError, UnknownService
from bot.domain.times import format_since, kube_time
from bot.entry.cli.commands import EXIT_OK, UsageError, plain_console
from bot.entry.cli.text import plain
from bot.usecases.audit import AuditReader

DEFAULT_NAMESPACE = "default"


def audit_namespace(settings: Settings, service_account: str | None) -> str:
    """Where the bot keeps its audit trail: its own namespace."""
    return settings.namespace or service_account or DEFAULT_NAMESPACE


def _versions(record: AuditRecord) -> str:
    if record.to_version is None and record.to_revision is None:
        return ""
    after = record.to_version or f"revision {record.to_revision}"
    return f"{plain(record.from_version or '?', 80)} → {plain(after, 80)}"


async def show_audit(
    catalog: Catalog, reader: AuditReader, service: str, since: timedelta, output: str
) -> int:
    try:
        ref = catalog.resolve(service)
    except (UnknownService, ConfigError) as exc:  # about the SERVICE argument, not a file
        raise UsageError(str(exc)) from None
    records = await reader.read(ref, since)
    if output == "json":
        print(json.dumps([r.to_json() for r in records], indent=2, ensure_ascii=False))
        return EXIT_OK
    from rich.table import Table
    from rich.text import Text

    console = plain_console()
    title = (
        f"{plain(ref.name)} ({plain(ref.qualified)}): audit trail of the last "
        f"{format_since(since)}, newest first, from {plain(reader.where)}"
    )
    if not records:
        console.print(Text(f"{title}: nothing recorded"))
        return EXIT_OK
    table = Table(title=Text(title), title_justify="left")
    for column in ("TIME (UTC)", "STEP", "ACTOR", "VIA", "VERSIONS", "REASON", "DETAIL"):
        table.add_column(column)
    for record in records:
        table.add_row(
            kube_time(record.at),
            str(record.step),
            Text(plain(record.actor, 120)),
            Text(plain(record.via, 40)),
            Text(_versions(record)),
            Text(plain(record.reason or "", 300)),
            Text(plain(record.detail or "", 300)),
        )
    console.print(table)
    return EXIT_OK
