"""Errors in Anthropic's shape for the Messages routes: ``{"type": "error", "error": {"type", "message"}}``.

The same ``ServeError`` is raised everywhere in the serve app; only its rendering differs on the
Anthropic routes, so the Anthropic client raises the matching exception class (its type follows the
status, as Anthropic's API does).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from serve.errors import ServeError

#: Anthropic's error type per HTTP status (https://docs.anthropic.com/en/api/errors).
ANTHROPIC_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}

ANTHROPIC_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {"enum": sorted(set(ANTHROPIC_TYPES.values()))},
                "message": {"type": "string"},
            },
        },
    },
}


def anthropic_body(error: ServeError) -> dict[str, Any]:
    kind = ANTHROPIC_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def anthropic_response(error: ServeError) -> Response:
    """``error`` as Anthropic answers it: same status and headers as the OpenAI-shaped answer
    (``WWW-Authenticate``, ``Retry-After``, the rate-limit headers), Anthropic's body."""
    plain = error.response()
    headers = {
        name: value for name, value in plain.headers.items() if name not in ("content-length", "content-type")
    }
    return Response(
        json.dumps(anthropic_body(error)).encode(),
        error.status,
        headers=headers,
        media_type="application/json",
    )


def anthropic_error_event(error: ServeError) -> bytes:
    """The server-sent ``error`` event that ends an Anthropic stream failing after its first event."""
    return b"event: error\ndata: " + json.dumps(anthropic_body(error)).encode() + b"\n\n"
