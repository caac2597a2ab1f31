"""The API-Gateway-style adapter of local mode: REST proxy events, authorizer semantics, responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_mode.apigw import AdminApiServer, ApiGatewayAdapter, policy_decision


def allow_all(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("headers") or {}).get("Authorization", "")
    if token == "Bearer deny":
        effect = "Deny"
    elif token in ("Bearer admin", "Bearer user"):
        effect = "Allow"
    else:
        raise Exception("Unauthorized")
    prefix, _, path = event["methodArn"].partition("/")
    return {
        "principalId": token.split()[-1],
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": effect,
                    "Resource": f"{prefix}/{path.split('/')[0]}/*/*",
                }
            ],
        },
        "context": {
            "username": token.split()[-1],
            "groups": json.dumps(["g"]),
            "isAdmin": token == "Bearer admin",
        },
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        assert context.get_remaining_time_in_millis() > 0
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {"X-Multi": ["a", "b"]},
            "body": json.dumps({"ok": True}),
            "isBase64Encoded": False,
        }


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    api = AdminApiServer(ApiGatewayAdapter(recorder, allow_all, stage="local"))
    api.start()
    try:
        yield api.url, recorder
    finally:
        api.stop()


def test_a_request_becomes_a_rest_proxy_event_with_the_authorizer_context(
    server: tuple[str, Recorder],
) -> None:
    url, recorder = server
    response = httpx.put(
        f"{url}/models/my%2Emodel?limit=5&tag=a&tag=b",
        headers={"Authorization": "Bearer admin", "Content-Type": "application/json"},
        content=b'{"enabled": false}',
    )
    assert response.status_code == 201 and response.json() == {"ok": True}
    assert response.headers.get_list("X-Multi") == ["a", "b"]
    assert response.headers["x-amzn-RequestId"]
    (event,) = recorder.events
    assert event["resource"] == "/models/{modelId}"
    assert event["path"] == "/models/my.model"
    assert event["httpMethod"] == "PUT"
    assert event["pathParameters"] == {"modelId": "my.model"}
    assert event["queryStringParameters"] == {"limit": "5", "tag": "b"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["body"] == '{"enabled": false}' and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert (
        context["stage"] == "local"
        and context["requestId"]
        and context["resourcePath"] == "/models/{modelId}"
    )
    assert context["authorizer"] == {
        "principalId": "admin",
        "username": "admin",
        "groups": '["g"]',
        "isAdmin": "true",
    }


def test_collection_routes_have_no_path_parameters(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    assert httpx.get(f"{url}/api-tokens", headers={"Authorization": "Bearer user"}).status_code == 201
    event = recorder.events[-1]
    assert event["resource"] == "/api-tokens" and event["pathParameters"] is None
    assert event["queryStringParameters"] is None and event["body"] is None
    assert event["requestContext"]["authorizer"]["isAdmin"] == "false"


def test_no_or_bad_credentials_are_401_like_api_gateway(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{url}/models", headers=headers)
        assert response.status_code == 401 and response.json() == {"message": "Unauthorized"}
    assert recorder.events == []


def test_an_explicit_deny_is_403_and_never_reaches_the_handler(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    response = httpx.post(f"{url}/models", headers={"Authorization": "Bearer deny"}, json={})
    assert response.status_code == 403
    assert "explicit deny" in response.json()["message"]
    assert recorder.events == []


def test_an_unknown_resource_is_api_gateways_403(server: tuple[str, Recorder]) -> None:
    url, recorder = server
    response = httpx.get(f"{url}/nope/deeper", headers={"Authorization": "Bearer admin"})
    assert response.status_code == 403 and response.json() == {"message": "Missing Authentication Token"}
    assert recorder.events == []


def test_a_handler_exception_is_a_502() -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    response = ApiGatewayAdapter(broken, allow_all).handle(
        "GET", "/models", [("Authorization", "Bearer admin")], b""
    )
    assert response.status == 502 and json.loads(response.body) == {"message": "Internal server error"}


def test_policy_decisions() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:api/local/GET/models/x"
    allow = {
        "Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": "arn:aws:execute-api:*:*:api/local/*/*",
    }
    deny = allow | {"Effect": "Deny", "Resource": [arn]}
    assert policy_decision({"Statement": [allow]}, arn) == "Allow"
    assert policy_decision({"Statement": [allow, deny]}, arn) == "Deny"
    assert (
        policy_decision({"Statement": [allow | {"Resource": "arn:aws:execute-api:*:*:other/*"}]}, arn)
        == "None"
    )
    assert policy_decision({"Statement": [allow | {"Action": "s3:GetObject"}]}, arn) == "None"
