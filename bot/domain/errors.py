"""What can go wrong, each as one clear sentence for a person in an incident.

The CLI maps these to exit codes and Slack renders them; neither ever shows a traceback.
"""

from __future__ import annotations


class RollbackBotError(Exception):
    """Base of every error the bot reports to a person."""

    exit_code = 1


class ConfigError(RollbackBotError):
    """The settings or the service catalog are wrong; the message names the file and key."""


class UnknownService(RollbackBotError):
    """A SERVICE argument names nothing in the catalog."""

    def __init__(self, name: str, suggestions: tuple[str, ...], known: tuple[str, ...]) -> None:
        self.name = name
        self.suggestions = suggestions
        self.known = known
        if suggestions:
            hint = f"did you mean {' or '.join(repr(s) for s in suggestions)}?"
        elif known:
            hint = f"known services: {', '.join(known)}; or give NAMESPACE/DEPLOYMENT"
        else:
            hint = (
                "no service catalog is configured (ROLLBACK_BOT_CONFIG); give NAMESPACE/DEPLOYMENT"
            )
        super().__init__(f"unknown service {name!r}: {hint}")


class RollbackRefused(RollbackBotError):
    """The rollback was not attempted because it would be wrong or impossible."""

    exit_code = 3


class Stale(RollbackRefused):
    """The Deployment moved (a deploy, a spec change, someone's rollback) after it was shown."""


class ClusterError(RollbackBotError):
    """The Kubernetes API could not be used: unreachable, timed out, or it answered an error.

    `transient`: the same call may well work in a moment (no answer, 429, 5xx)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class NotFound(ClusterError):
    """The Deployment (or its namespace) does not exist."""


class Conflict(ClusterError):
    """The Deployment changed between reading it and patching it."""


class Forbidden(ClusterError):
    """The Kubernetes API refused these credentials the call (401, 403): RBAC, not a glitch."""


class MetricsUnavailable(RollbackBotError):
    """The metrics could not be had: the source (Prometheus) unreachable, timed out, refusing the
    credentials, or answering an error. An analysis then gives no verdict; it never counts as a
    healthy or a bad version."""


class RolloutFailed(RollbackBotError):
    """The rollout stalled or exceeded its progress deadline."""

    exit_code = 4


class RolloutTimedOut(RollbackBotError):
    """The rollout did not complete within the time we were asked to wait."""

    exit_code = 5
