"""CORS for the console: which origins a browser may call the APIs from, and the headers that say so.

Both APIs allow exactly the configured origins (the console's CloudFront origin in AWS, the local
console's ``http://127.0.0.1:<port>`` in local mode); any other origin gets no CORS header at all, so
the browser refuses to hand it the response. Credentials travel in the ``Authorization`` header,
never in cookies, so ``Access-Control-Allow-Credentials`` is not sent.
"""

from __future__ import annotations

from collections.abc import Mapping

ALLOWED_METHODS = "GET,POST,PUT,DELETE,OPTIONS"
ALLOWED_HEADERS = "Authorization,Content-Type"
#: How long a browser may cache a preflight answer (seconds).
PREFLIGHT_MAX_AGE = "600"


def parse_origins(value: str) -> tuple[str, ...]:
    """The origins of a comma-separated setting, without blanks or a trailing slash."""
    return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())


def request_origin(headers: Mapping[str, str] | None) -> str | None:
    """The request's ``Origin`` header (header names are case-insensitive)."""
    for name, value in (headers or {}).items():
        if name.lower() == "origin":
            return value
    return None


def cors_headers(origin: str | None, allowed: tuple[str, ...], *, preflight: bool = False) -> dict[str, str]:
    """The CORS response headers for a request from ``origin``: empty unless it is allowed."""
    if not origin or origin not in allowed:
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    if preflight:
        headers |= {
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        }
    return headers
