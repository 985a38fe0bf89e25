"""The Kubernetes client's failures as one sentence each (never a traceback, never a secret)."""

from __future__ import annotations

import json

import urllib3
from kubernetes.client.exceptions import ApiException

from bot.domain.errors import ClusterError, Conflict, Forbidden, NotFound

TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


def status_message(exc: ApiException) -> str:
    """The `message` of the API's `kind: Status` body, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
        message = body.get("message") if isinstance(body, dict) else None
    except (ValueError, TypeError):
        message = None
    return str(message or exc.reason or "no details")


def api_error(
    what: str, exc: ApiException, server: str, *, forbidden_hint: str = ""
) -> ClusterError:
    message = status_message(exc)
    if exc.status == 404:
        return NotFound(f"{what}: not found ({message})")
    if exc.status == 409:
        return Conflict(f"{what}: conflict ({message})")
    if exc.status in (401, 403):
        hint = f"; {forbidden_hint}" if forbidden_hint else ""
        return Forbidden(
            f"{what}: the Kubernetes API at {server} refused us ({exc.status} {exc.reason}): "
            f"{message}{hint}"
        )
    if exc.status == 0:
        return ClusterError(
            f"{what}: cannot talk to the Kubernetes API at {server}", transient=True
        )
    return ClusterError(
        f"{what}: the Kubernetes API at {server} answered {exc.status} {exc.reason}: {message}",
        transient=exc.status == 429 or exc.status >= 500,
    )


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, urllib3.exceptions.TimeoutError) or "timed out" in str(exc).lower()


def transport_error(what: str, exc: BaseException, server: str, timeout: float) -> ClusterError:
    if is_timeout(exc):
        return ClusterError(
            f"{what}: the Kubernetes API at {server} did not answer within {timeout:g}s",
            transient=True,
        )
    return ClusterError(f"{what}: cannot reach the Kubernetes API at {server}", transient=True)
