"""Typed exceptions: one per kind of admin-API answer, carrying the API's message and field."""

from __future__ import annotations

import re
from typing import Any

from lisa_domain.schema import ModelRecord, ModelSummary

#: "body.modelId: ..." or "tokenExpiration: ..." at the start of an API message names the field.
_FIELD_PREFIX = re.compile(r"^(?:Invalid request: )?(?P<field>[A-Za-z_][\w.\[\]]*): ")


class LisaClientError(Exception):
    """Base of every error this package raises."""


class ApiError(LisaClientError):
    """The admin API answered an error: ``status``, its ``message`` and the ``field`` it names."""

    def __init__(
        self, status: int, message: str, field: str | None = None, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.field = field
        self.errors = errors or []


class InvalidRequest(ApiError):
    """400 or 422: the input breaks a rule or the schema (``field`` names where)."""


class Unauthorized(ApiError):
    """401: no or bad credentials."""


class Forbidden(ApiError):
    """403: the caller may not do this."""


class NotFound(ApiError):
    """404: no such model or token (or not visible to the caller)."""


class Conflict(ApiError):
    """409: exists, wrong state, or changed concurrently."""


class RateLimited(ApiError):
    """429: retried with backoff; raised when the retries are used up."""


class ServerError(ApiError):
    """5xx: a workflow, AWS service or the API itself failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
    429: RateLimited,
}


def api_error(status: int, body: Any) -> ApiError:
    """The typed exception for an error answer (``{"message", "statusCode", "errors"?}``)."""
    message = str(body.get("message") or body) if isinstance(body, dict) else str(body or "")
    errors = body.get("errors") if isinstance(body, dict) and isinstance(body.get("errors"), list) else []
    field: str | None = None
    if errors and isinstance(errors[0], dict):
        field = str(errors[0].get("field")) or None
    elif match := _FIELD_PREFIX.match(message):
        field = match["field"]
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return kind(status, message or f"HTTP {status}", field, errors)


class WorkflowFailed(LisaClientError):
    """A model's workflow ended badly: ``Failed``, or settled elsewhere than asked with a reason."""

    def __init__(self, model: ModelRecord | ModelSummary, expected: str) -> None:
        reason = (model.statusReason if isinstance(model, ModelRecord) else None) or "no reason given"
        super().__init__(f"{model.modelId}: {model.status.value} (expected {expected}): {reason}")
        self.model = model
        self.expected = expected
        self.reason = reason


class WaitTimeout(LisaClientError):
    """The model did not settle within the timeout (the workflow may still be running)."""

    def __init__(self, model_id: str, status: str, timeout: float) -> None:
        super().__init__(f"{model_id}: still {status} after {timeout:.0f} s")
        self.model_id = model_id
        self.status = status
        self.timeout = timeout
