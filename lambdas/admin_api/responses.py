"""Response shapes of the admin API: ``{"message": ..., "statusCode": ...}`` for every error."""

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types


def json_response(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    # The routes are annotated Response[dict[str, Any]] (not the pydantic response models): Powertools
    # validates a route's return value against its annotation *after* the route ran, and a failure
    # there would answer 422 for a request whose changes were already made. The documented response
    # schemas come from each route's ``responses``.
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def error_response(
    status: int, message: str, errors: list[dict[str, str]] | None = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"message": message, "statusCode": status}
    if errors:
        body["errors"] = errors
    return json_response(status, body)


def proxy_error(status: HTTPStatus, message: str) -> dict[str, Any]:
    """An error in API Gateway's proxy response shape, for answers given before routing."""
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps({"message": message, "statusCode": int(status)}),
        "isBase64Encoded": False,
    }
