"""The checks every request passes before routing: authenticated (401), allowed (403), parseable (400).

Callers must be authenticated; only admins may change things, except their own API tokens. A body
nested too deeply to parse safely is refused before the resolver parses it.
"""

import base64
import binascii
from http import HTTPStatus
from typing import Any

from admin_api.resolver import logger
from admin_api.responses import proxy_error
from admin_api.tokens import check_may_create
from admin_api.wiring import token_settings
from lisa_contracts.names import TOKEN_RESOURCE, TOKENS_RESOURCE
from lisa_domain.auth import Principal, principal_from_context
from lisa_domain.errors import Forbidden, Unauthorized, ValidationFailed
from lisa_domain.json_depth import check_json_depth

#: Methods a non-admin may call; every other method is admin-only (checked before validation, so a
#: non-admin gets 403 whatever the body) except on the token routes below.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _resource(event: dict[str, Any]) -> str:
    """The route template (API Gateway's ``resource``; derived from ``path`` when absent)."""
    resource = event.get("resource")
    if isinstance(resource, str) and resource:
        return resource
    segments = str(event.get("path") or "").strip("/").split("/")
    if segments[0] == TOKENS_RESOURCE.strip("/"):
        return TOKENS_RESOURCE if len(segments) == 1 else TOKEN_RESOURCE
    return str(event.get("path") or "")


def _non_admin_may_proceed(principal: Principal, method: str, resource: str) -> None:
    """Forbidden unless a non-admin may send ``method`` to ``resource`` (the logic checks the rest)."""
    if method in READ_METHODS:
        return
    if resource == TOKENS_RESOURCE and method == "POST":
        check_may_create(principal, token_settings())
        return
    if resource == TOKEN_RESOURCE and method == "DELETE":
        return  # one's own token; others' are 404
    raise Forbidden("only administrators may change models")


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(str(body))
    except (binascii.Error, ValueError):
        return b""  # not base64: the resolver reports the body


def too_deep(event: dict[str, Any]) -> dict[str, Any] | None:
    """400 for a body nested too deeply to parse safely (``json.loads`` would hit the recursion limit)."""
    try:
        check_json_depth(_body_bytes(event))
    except ValidationFailed as error:
        return proxy_error(HTTPStatus.BAD_REQUEST, str(error))
    return None


def reject_before_routing(event: dict[str, Any]) -> dict[str, Any] | None:
    """401/403 before any parsing: callers must be authenticated, and only admins may change things
    (except their own API tokens)."""
    try:
        principal = principal_from_context((event.get("requestContext") or {}).get("authorizer"))
    except Unauthorized:
        status, message = HTTPStatus.UNAUTHORIZED, "Unauthorized"
    else:
        logger.append_keys(username=principal.username, auth_method=principal.method)
        if principal.is_admin:
            return None
        try:
            _non_admin_may_proceed(principal, str(event.get("httpMethod", "")).upper(), _resource(event))
        except Forbidden as error:
            status, message = HTTPStatus.FORBIDDEN, str(error)
        else:
            return None
    return proxy_error(status, message)
