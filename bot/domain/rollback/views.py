"""What a person is shown of a service at one moment: the read model the renderers take."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from bot.domain.rollback.gitops import GitopsNote
from bot.domain.rollback.models import History, RunInfo


@dataclass(frozen=True)
class ServiceView:
    """A service's Deployment and revisions, read at `taken_at` for `asked_by`, with the
    rollback running on it (if any); `limit` previous versions get a button."""

    service: str
    namespace: str
    cluster: str
    history: History
    asked_by: str
    taken_at: datetime
    limit: int = 5
    running: RunInfo | None = None
    # The GitOps that manages it and the catalog's policy, when something does.
    gitops: GitopsNote | None = None

    def with_run(self, run: RunInfo | None) -> ServiceView:
        return replace(self, running=run)
