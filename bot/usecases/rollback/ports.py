"""What the bot needs from a Kubernetes cluster, in the domain's words.

`KubernetesCluster` implements it with the official client; tests may implement it too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from bot.domain.rollback.models import Deployment, History, JsonDict, RunInfo


class Cluster(Protocol):
    @property
    def server(self) -> str:
        """The API server's address, for messages ("cluster https://…")."""
        ...

    async def ping(self) -> str:
        """The API server's version; ClusterError when it cannot be reached."""
        ...

    async def read(self, namespace: str, name: str) -> Deployment:
        """The Deployment now; NotFound when it does not exist."""
        ...

    async def history(self, namespace: str, name: str) -> History:
        """The Deployment and the revisions its ReplicaSets hold."""
        ...

    async def patch(
        self, namespace: str, name: str, patch: Sequence[JsonDict], *, dry_run: bool
    ) -> Deployment:
        """Send one JSON Patch; Conflict when a resourceVersion precondition fails."""
        ...

    def watch(self, namespace: str, name: str) -> AsyncGenerator[Deployment, None]:
        """The Deployment now, then every change, resuming across disconnects, until closed."""
        ...

    async def acquire_lock(
        self, namespace: str, deployment: str, me: str, run: RunInfo, seconds: int
    ) -> RunInfo | None:
        """Take the Deployment's rollback lock for `seconds`: None when taken, else the holder's
        run."""
        ...

    async def renew_lock(self, namespace: str, deployment: str, me: str) -> None: ...

    async def release_lock(self, namespace: str, deployment: str, me: str) -> None: ...

    async def record_event(
        self, deployment: Deployment, reason: str, message: str, *, warning: bool, source: str
    ) -> None:
        """A Kubernetes Event on the Deployment, so `kubectl describe` tells the story too."""
        ...

    async def close(self) -> None: ...
