"""LISA's clients against the serve API: credentials as they send them, and LiteLLM's routes they call.

LISA's SDK (lisapy) and its integration tests send the same credential in ``Api-Key`` and in
``Authorization`` without ``Bearer``; the Anthropic client sends ``x-api-key``. The routes
``/health``, ``/health/readiness``, ``/health/liveliness`` and ``/model/info`` answer in LiteLLM's
proxy shapes (``serve.lisa_routes``).
"""

from __future__ import annotations

import asyncio
import json
from types import MappingProxyType
from typing import Any

import httpx
import pytest

from lisa_domain.auth import Authenticator, Principal, bearer_value, credential_candidates
from lisa_domain.errors import Forbidden
from lisa_domain.registry import ServedModel, ServedModels
from lisa_domain.schema import ModelRecord, ModelStatus, ModelType
from serve.app import create_app
from serve.auth import ServeAuthenticator
from serve.errors import ServeError
from serve.follower import ServedEntry, Snapshot
from serve.lisa_routes import (
    ALIVE,
    KEY_UNREADABLE,
    KEY_UNREADABLE_PREVIOUS,
    MODES,
    REFUSED,
    endpoint_health,
    model_info,
)
from serve.openapi import openapi_document
from tests.serve.conftest import ServeEnv

LISA_ROUTES = ["/health", "/health/readiness", "/health/liveliness", "/model/info"]
ALICE = Principal("alice", ("team-a",), False, "api-token")


def get(serve: ServeEnv, path: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(serve.base_url + path, headers=headers, timeout=20)


# ---- credentials ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer abc"}, ("abc",)),
        ({"Authorization": "abc"}, ("abc",)),
        ({"authorization": " bearer  abc "}, ("abc",)),
        ({"Api-Key": "abc", "Authorization": "abc"}, ("abc",)),
        ({"Authorization": "a", "API-KEY": "b", "X-Api-Key": "c"}, ("a", "b", "c")),
        ({"x-api-key": "c", "Api-Key": "b"}, ("b", "c")),
        ({"Authorization": "Basic dXNlcg==", "Api-Key": "b"}, ("b",)),
        ({"Authorization": "Bearer"}, ()),
        ({"Authorization": "Bearer  ", "Api-Key": " "}, ()),
        ({}, ()),
    ],
)
def test_credential_candidates(headers: dict[str, str], expected: tuple[str, ...]) -> None:
    assert credential_candidates(headers) == expected


def test_the_admin_credential_comes_from_one_header_only() -> None:
    """API Gateway caches the authorizer's answer by ``Authorization``: nothing else may decide it."""
    assert bearer_value({"Authorization": "raw-key", "Api-Key": "other"}) == "raw-key"
    assert bearer_value({"Authorization": "Bearer raw-key"}) == "raw-key"
    assert bearer_value({"Authorization": "Basic x", "Api-Key": "other"}) is None
    assert bearer_value({"Api-Key": "key"}) == "key"
    assert bearer_value({"x-api-key": "key"}) is None


def test_lisa_clients_credentials_are_accepted_on_every_route(serve: ServeEnv) -> None:
    token = serve.token_values["alice"]
    for headers in (
        {"Api-Key": token, "Authorization": token},  # lisapy as LISA's integration tests set it up
        {"Authorization": token},
        {"Authorization": f"Bearer {token}"},
        {"Api-Key": token},
        {"x-api-key": token},  # the Anthropic client
    ):
        for path in ["/models", *LISA_ROUTES]:
            response = get(serve, path, headers)
            assert response.status_code == 200, (headers.keys(), path, response.text)


def test_one_valid_credential_among_several_authenticates(serve: ServeEnv) -> None:
    token = serve.token_values["alice"]
    for headers in (
        {"Authorization": "lisa_wrong", "Api-Key": token},
        {"Authorization": "Bearer lisa_wrong", "Api-Key": "also-wrong", "x-api-key": token},
        {"Authorization": "Basic dXNlcg==", "x-api-key": token},
    ):
        response = get(serve, "/model/info", headers)
        assert response.status_code == 200, response.text
        assert {entry["model_name"] for entry in response.json()["data"]} >= {"chat-team-a"}


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "missing_api_key"),
        ({"Authorization": "Basic dXNlcg=="}, 401, "missing_api_key"),
        ({"Authorization": "lisa_wrong", "Api-Key": "lisa_wrong-too"}, 401, "invalid_api_key"),
        # a valid identity that may not use LISA is the answer, not the other header's 401
        ({"Authorization": "lisa_wrong", "Api-Key": "hdr.forbidden.sig"}, 403, "forbidden"),
    ],
)
def test_lisa_routes_refuse_without_a_valid_credential(
    serve: ServeEnv, headers: dict[str, str], status: int, code: str
) -> None:
    for path in LISA_ROUTES:
        response = get(serve, path, headers)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"]["code"] == code


def _verifier(credential: str) -> Principal | None:
    if credential == "hdr.down.sig":
        raise ConnectionError("the issuer's keys cannot be fetched")
    if credential == "hdr.forbidden.sig":
        raise Forbidden("this identity may not use LISA")
    return ALICE if credential == "hdr.alice.sig" else None


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": "hdr.down.sig", "Api-Key": "hdr.forbidden.sig", "x-api-key": "wrong"}, 503),
        ({"Authorization": "wrong", "Api-Key": "hdr.forbidden.sig"}, 403),
        ({"Authorization": "wrong", "x-api-key": "also-wrong"}, 401),
    ],
)
def test_the_answer_when_no_credential_is_valid(headers: dict[str, str], status: int) -> None:
    """503 (a retry may succeed) over 403 (a real identity, refused) over 401."""
    auth = ServeAuthenticator(Authenticator(admin_group="admins", jwt_verifier=_verifier), tokens=None, ttl=0)
    with pytest.raises(ServeError) as raised:
        asyncio.run(auth.principal(headers))
    assert raised.value.status == status
    headers = {**headers, "x-api-key": "hdr.alice.sig"}
    assert asyncio.run(auth.principal(headers)) == ALICE


# ---- routes over HTTP -------------------------------------------------------------------------
def test_liveliness_and_readiness_answer_litellm_shapes(serve: ServeEnv) -> None:
    headers = serve.headers("alice")
    assert get(serve, "/health/liveliness", headers).json() == ALIVE
    assert get(serve, "/health/readiness", headers).json() == {"status": "healthy", "db": "connected"}


def test_health_names_only_the_callers_models_and_calls_no_backend(serve: ServeEnv) -> None:
    calls = sum(serve.backend.calls.values())
    body = get(serve, "/health", serve.headers("alice")).json()
    healthy = {endpoint["model"] for endpoint in body["healthy_endpoints"]}
    assert {"chat-open", "chat-team-a", "embed"} <= healthy
    assert "chat-team-b" not in healthy
    assert body["healthy_count"] == len(body["healthy_endpoints"])
    assert body["unhealthy_count"] == len(body["unhealthy_endpoints"])
    assert sum(serve.backend.calls.values()) == calls


def test_model_info_gives_modes_for_lisas_model_discovery(serve: ServeEnv) -> None:
    response = get(serve, "/model/info", {"Api-Key": serve.token_values["alice"]})
    assert response.status_code == 200
    entries = {entry["model_name"]: entry for entry in response.json()["data"]}
    assert "chat-team-b" not in entries
    assert entries["chat-open"] == {
        "model_name": "chat-open",
        "litellm_params": {"model": "openai/echo"},
        "model_info": {"id": "chat-open", "mode": "chat", "max_input_tokens": None},
    }
    assert entries["embed"]["model_info"]["mode"] == "embedding"
    # the fixture's deployments carry an api_key and an api_base: neither is ever shown
    text = response.text
    assert "api_key" not in text and "api_base" not in text and serve.backend_url not in text
    admin = {
        entry["model_name"] for entry in get(serve, "/model/info", serve.headers("admin")).json()["data"]
    }
    assert {"chat-team-a", "chat-team-b"} <= admin


def test_every_model_type_has_a_litellm_mode() -> None:
    assert set(MODES) == set(ModelType)
    assert MODES[ModelType.TEXTGEN] == "chat"
    assert MODES[ModelType.EMBEDDING] == "embedding"
    assert MODES[ModelType.IMAGEGEN] == "image_generation"
    assert MODES[ModelType.VIDEOGEN] == "video_generation"


def test_the_openapi_document_describes_the_routes_and_headers(serve: ServeEnv) -> None:
    document = openapi_document(create_app(serve.services))
    for path in LISA_ROUTES:
        operation = document["paths"]["/v2/serve" + path]["get"]
        assert {"200", "401", "403", "503"} <= set(operation["responses"]), path
        assert {"xApiKey": []} in operation["security"]
    schemes = document["components"]["securitySchemes"]
    assert {scheme.get("name") for scheme in schemes.values()} >= {"Api-Key", "x-api-key"}


# ---- bodies from a snapshot -------------------------------------------------------------------
def _record(model_id: str, groups: list[str], context_window: int | None = None) -> ModelRecord:
    return ModelRecord(
        modelId=model_id,
        modelName=model_id,
        modelType=ModelType.TEXTGEN,
        streaming=True,
        allowedGroups=groups,
        status=ModelStatus.IN_SERVICE,
        createdAt=1,
        updatedAt=1,
        contextWindow=context_window,
    )


def _snapshot(
    served: dict[str, ModelRecord], routed: list[str], incomplete: frozenset[str] = frozenset()
) -> Snapshot:
    secret_params: dict[str, Any] = {
        "model": "openai/gpt-x",
        "api_key": "sk-secret",
        "api_base": "https://internal.example",
        "api_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
    }
    entries = {
        model_id: ServedEntry(model_id, ModelType.TEXTGEN, 1, list(served[model_id].allowedGroups), {})
        for model_id in routed
    }
    return Snapshot(
        version=3,
        models=MappingProxyType(entries),
        router=None,
        source=ServedModels([ServedModel(record, secret_params) for record in served.values()]),
        deployments=MappingProxyType(dict.fromkeys(routed, secret_params)),
        incomplete=incomplete,
    )


def test_model_info_reports_the_context_window_and_no_secret() -> None:
    snapshot = _snapshot(
        {"a": _record("a", [], 8192), "b": _record("b", ["team-b"], 4096), "c": _record("c", [])},
        routed=["a", "b", "c"],
    )
    entries = model_info(snapshot, ALICE)
    assert [entry["model_name"] for entry in entries] == ["a", "c"]
    assert entries[0]["model_info"]["max_input_tokens"] == 8192
    assert entries[1]["model_info"]["max_input_tokens"] is None
    text = json.dumps(entries)
    for secret in ("sk-secret", "internal.example", "arn:aws", "api_key", "api_base"):
        assert secret not in text


def test_health_reports_why_a_model_is_unhealthy() -> None:
    snapshot = _snapshot(
        {
            "fine": _record("fine", []),
            "kept": _record("kept", []),
            "keyless": _record("keyless", []),
            "refused": _record("refused", []),
            "hidden": _record("hidden", ["team-b"]),
        },
        routed=["fine", "kept", "hidden"],
        incomplete=frozenset({"kept", "keyless"}),
    )
    assert endpoint_health(snapshot, ALICE) == {
        "healthy_endpoints": [{"model": "fine", "model_id": "fine"}],
        "unhealthy_endpoints": [
            {"model": "kept", "model_id": "kept", "error": KEY_UNREADABLE_PREVIOUS},
            {"model": "keyless", "model_id": "keyless", "error": KEY_UNREADABLE},
            {"model": "refused", "model_id": "refused", "error": REFUSED},
        ],
        "healthy_count": 1,
        "unhealthy_count": 3,
    }
