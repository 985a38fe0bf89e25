"""API errors, rendered as the `kind: Status` bodies a real apiserver returns."""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]

# HTTP code -> the StatusReason the apiserver pairs with it (k8s.io/apimachinery api/errors).
REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error the API answers with a Status object."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JsonDict | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> JsonDict:
        return status_body(self.code, self.message, self.reason, self.details)


def status_body(code: int, message: str, reason: str, details: JsonDict | None = None) -> JsonDict:
    body: JsonDict = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


def qualified(plural: str, group: str) -> str:
    """`deployments.apps`, or `pods` for the core group, as messages name a resource."""
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        f'{qualified(plural, group)} "{name}" not found',
        details={"name": name, "group": group, "kind": plural} if group else _core(plural, name),
    )


def already_exists(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'{qualified(plural, group)} "{name}" already exists',
        reason="AlreadyExists",
        details={"name": name, "group": group, "kind": plural} if group else _core(plural, name),
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified(plural, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": group, "kind": plural} if group else _core(plural, name),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; `causes` are (field, message) pairs like field.ErrorList."""
    what = f"{kind}.{group}" if group else kind
    joined = ", ".join(f"{f}: {m}" for f, m in causes)
    text = f"[{joined}]" if len(causes) > 1 else joined
    details: JsonDict = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
    }
    if group:
        details["group"] = group
    return ApiError(422, f'{what} "{name}" is invalid: {text}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def expired(message: str) -> ApiError:
    return ApiError(410, message)


def _core(plural: str, name: str) -> JsonDict:
    return {"name": name, "kind": plural}
