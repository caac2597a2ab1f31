"""The admin API's CORS headers on every Lambda response (``CORS_ALLOWED_ORIGINS``).

API Gateway answers the preflight ``OPTIONS`` and its own 401/403 (``lisa_stacks/admin_api.py``);
a Lambda proxy response reaches the browser only with the header this adds.
"""

from __future__ import annotations

from typing import Any

from lisa_domain.cors import cors_headers, parse_origins, request_origin
from lisa_domain.settings import settings


def with_cors(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """``response`` with the CORS headers for the request's origin (unchanged for any other origin)."""
    headers = cors_headers(request_origin(event.get("headers")), parse_origins(settings().cors_origins))
    if headers:
        response["headers"] = {**(response.get("headers") or {}), **headers}
        multi = response.get("multiValueHeaders")
        if multi:
            for name in headers:
                multi.pop(name, None)
    return response
