"""Builders for Lambda events and contexts (API Gateway REST proxy, REQUEST authorizer)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lisa_domain.auth import Principal, principal_to_context

ADMIN = Principal("alice", ("lisa-admins",), True, "api-token")
USER_A = Principal("bob", ("team-a",), False, "api-token")
USER_B = Principal("carol", ("team-b",), False, "api-token")

API_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod"

#: First path segment -> (resource template, path parameter) of the admin API's item routes.
TEMPLATES = {"models": ("/models/{modelId}", "modelId"), "api-tokens": ("/api-tokens/{tokenId}", "tokenId")}


class FakeContext(LambdaContext):
    """A Lambda context for calling handlers directly."""

    def __init__(self, function_name: str = "lisa-test") -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self._memory_limit_in_mb = 256
        self._aws_request_id = "00000000-0000-0000-0000-000000000000"
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = "stream"
        self._tenant_id = None

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def rest_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    principal: Principal | None = ADMIN,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as it reaches the admin API behind the authorizer."""
    segments = path.strip("/").split("/")
    resource, path_parameters = path, None
    if len(segments) == 2 and segments[0] in TEMPLATES:
        resource, parameter = TEMPLATES[segments[0]]
        path_parameters = {parameter: segments[1]}
    request_context: dict[str, Any] = {
        "requestId": "req-1234",
        "resourcePath": resource,
        "httpMethod": method,
        "stage": "prod",
        "identity": {"sourceIp": "127.0.0.1"},
    }
    if principal is not None:
        request_context["authorizer"] = {**principal_to_context(principal), "principalId": principal.username}
    if raw_body is None and body is not None:
        raw_body = json.dumps(body)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer redacted"},
        "multiValueHeaders": {"Content-Type": ["application/json"], "Authorization": ["Bearer redacted"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {key: [value] for key, value in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": request_context,
        "body": raw_body,
        "isBase64Encoded": False,
    }


def authorizer_event(headers: dict[str, str] | None, route: str = "GET/models") -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": f"{API_ARN}/{route}",
        "resource": "/models",
        "path": "/models",
        "httpMethod": route.split("/", 1)[0],
        "headers": headers,
        "requestContext": {"requestId": "req-1", "stage": "prod"},
    }
