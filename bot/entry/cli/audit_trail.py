"""Where the CLI's audit trail goes (shared by its rollback, abort and switch commands): a local
JSON-lines file, and the bot's store in the cluster when these credentials may write it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bot.adapters.kube.clusters import ClusterRegistry
from bot.config.settings import Settings

if TYPE_CHECKING:
    from bot.adapters.kube.audit_store import ClusterAuditStore

# How long the CLI waits, at its end, for audit records still on their way to the cluster.
AUDIT_FLUSH_SECONDS = 15.0


def audit_file() -> Path:
    """Where the CLI appends its audit trail: $ROLLBACK_BOT_AUDIT_FILE, else the user's state
    directory (XDG), one JSON object a line."""
    given = os.environ.get("ROLLBACK_BOT_AUDIT_FILE")
    if given:
        return Path(given)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "rollback-bot" / "audit.jsonl"


def audit_store(registry: ClusterRegistry, settings: Settings) -> ClusterAuditStore:
    """The audit trail in the cluster: the bot's namespace on the current context's cluster."""
    from bot.adapters.kube.audit_store import ClusterAuditStore
    from bot.adapters.kube.client import service_account_namespace
    from bot.entry.cli.audit import audit_namespace

    return ClusterAuditStore(
        registry.cluster(None).kube,
        audit_namespace(settings, service_account_namespace()),
        retention_days=settings.audit_retention_days,
    )
