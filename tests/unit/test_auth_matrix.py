"""The auth matrix: every route x every kind of credential, with the expected status of each cell.

Admin routes go through the real REQUEST authorizer and then the real admin handler
(``local_mode.apigw.ApiGatewayAdapter`` in-process, moto in-process); serve routes through the real
serve app (``serve.app``, in-process via Starlette's TestClient, its lifespan running) against a
stand-in model backend on 127.0.0.1. JWTs are signed by a real OIDC issuer on 127.0.0.1 whose
discovery document and JWKS are fetched over HTTP. Both the authorizer and the serve app are built
by ``lisa_domain.auth.authenticator_from_env`` (the serve app gets its ``jwt_verifier_from_env``).

``MATRIX`` is the table: one row per route, one column per credential (``CREDENTIALS``), each cell
the expected HTTP status. ``test_auth_matrix`` runs every cell and fails listing every mismatch.
Path and body placeholders (``{model}``, ``{own_token}``, ...) are fresh per cell, so each cell
meets the same state (a new InService model to update or delete, a new token to get or revoke).

The user (``bob``) is in the API group and ``team-a``; the admin (``alice``) is in the admin group.
The management key is refused on the serve API by default (``LISA_SERVE_ALLOW_MANAGEMENT_KEY``);
``test_auth_matrix_with_the_management_key_allowed_on_serve`` runs the matrix with it allowed, where
it gets the admin's answers.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from starlette.testclient import TestClient

from lisa_domain.auth import jwt_verifier_from_env
from lisa_domain.registry import ModelRegistry, now
from lisa_domain.schema import ModelRecord, ModelStatus, ModelType
from local_mode.resources import LocalResources
from serve.app import build_services, create_app
from serve.config import ServeConfig
from tests.conftest import ADMIN_GROUP
from tests.support.fake_backend import FakeBackend
from tests.support.oidc_issuer import IdentityProvider, KeyPair, sign
from tests.support.served_models import echo_params, serve_model
from tests.support.servers import ServerThread
from tests.support.waiting import wait_for
from tests.unit.identity_harness import API_GROUP, CLIENT_ID, Harness

Api = Literal["admin", "serve"]

#: The columns of the matrix, in order.
CREDENTIALS: tuple[str, ...] = (
    "none",  # no Authorization header at all
    "malformed",  # Authorization: Basic ... (not a bearer credential)
    "unknown-token",  # a well-formed API token value that was never issued
    "expired-token",  # an API token whose tokenExpiration has passed
    "revoked-token",  # an API token deleted through DELETE /api-tokens/{tokenId}
    "jwt-other-issuer",  # a valid JWT signed by another issuer (its own key, its own iss)
    "jwt-expired",  # a JWT from the configured issuer that expired 10 minutes ago
    "user-jwt",  # bob, groups [API group, team-a]
    "user-token",  # bob's API token, same groups
    "admin-jwt",  # alice, groups [admin group]
    "admin-token",  # alice's API token
    "management-key",  # the management key (admin on the admin API; refused on serve by default)
)

USER_GROUPS = [API_GROUP, "team-a"]
ADMIN_GROUPS = [ADMIN_GROUP]


@dataclass(frozen=True)
class Row:
    api: Api
    method: str
    path: str
    body: Any
    expected: tuple[int, ...]  # one status per CREDENTIALS column

    def __post_init__(self) -> None:
        assert len(self.expected) == len(CREDENTIALS), f"{self.method} {self.path}: one status per credential"

    @property
    def name(self) -> str:
        return f"{self.api} {self.method} {self.path}"


BEDROCK_BODY = {
    "modelId": "{new_model}",
    "modelName": "bedrock/anthropic.claude-3-haiku",
    "modelType": "textgen",
}
CHAT_BODY = {"model": "chat-open", "messages": [{"role": "user", "content": "hi"}]}
SCHEDULE_BODY = {
    "scheduleType": "RECURRING",
    "recurringSchedule": {"startTime": "08:00", "stopTime": "18:00"},
}

# fmt: off
#: The matrix. Columns:  none  malf  unkT  expT  revT  othJ  expJ  uJWT  uTok  aJWT  aTok  mKey
MATRIX: list[Row] = [
    Row("admin", "GET", "/models", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "POST", "/models", BEDROCK_BODY,
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  201,  201,  201)),
    Row("admin", "GET", "/models/{model}", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "PUT", "/models/{model}", {"modelDescription": "updated"},
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  200,  200,  200)),
    Row("admin", "DELETE", "/models/{model}", None,
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  200,  200,  200)),
    # LISA's schedule routes: writes for admins (the {model} is a Bedrock model: 409, it cannot have a
    # schedule, after the admin check), reads for anyone who may see the model.
    Row("admin", "PUT", "/models/{model}/schedule", SCHEDULE_BODY,
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  409,  409,  409)),
    Row("admin", "POST", "/models/{model}/schedule", SCHEDULE_BODY,
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  409,  409,  409)),
    Row("admin", "GET", "/models/{model}/schedule", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "GET", "/models/{model}/schedule/status", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "DELETE", "/models/{model}/schedule", None,
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  200,  200,  200)),
    # LISA's metadata routes: the instance list and the docs page for anyone signed in; the context
    # window is an admin's change.
    Row("admin", "GET", "/models/metadata/instances", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "PUT", "/models/{model}/context-window", {"contextWindow": 8192},
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  200,  200,  200)),
    Row("admin", "GET", "/docs", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    # bob asks for a token of his own; an API token may not mint tokens (403), a JWT may (201).
    Row("admin", "POST", "/api-tokens", {"username": "bob", "groups": ["team-a"], "name": "matrix"},
                         (401,  401,  401,  401,  401,  401,  401,  201,  403,  201,  201,  201)),
    Row("admin", "GET", "/api-tokens", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "GET", "/api-tokens/{own_token}", None,  # a token of bob's
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "GET", "/api-tokens/{other_token}", None,  # a token of carol's
                         (401,  401,  401,  401,  401,  401,  401,  404,  404,  200,  200,  200)),
    Row("admin", "DELETE", "/api-tokens/{own_token}", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("admin", "DELETE", "/api-tokens/{other_token}", None,
                         (401,  401,  401,  401,  401,  401,  401,  404,  404,  200,  200,  200)),
    # Usage: everyone's for admins, one's own for anyone signed in.
    Row("admin", "GET", "/usage", None,
                         (401,  401,  401,  401,  401,  401,  401,  403,  403,  200,  200,  200)),
    Row("admin", "GET", "/usage/me", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  200)),
    Row("serve", "GET", "/v2/serve/models", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  401)),
    Row("serve", "GET", "/v2/serve/models/chat-open", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  401)),
    Row("serve", "GET", "/v2/serve/models/chat-admins", None,  # open to the admin group only
                         (401,  401,  401,  401,  401,  401,  401,  404,  404,  200,  200,  401)),
    # LISA's LiteLLM routes under /v2/serve, behind the same auth.
    Row("serve", "GET", "/v2/serve/model/info", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  401)),
    Row("serve", "GET", "/v2/serve/health/liveliness", None,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  401)),
    Row("serve", "POST", "/v2/serve/chat/completions", CHAT_BODY,
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  401)),
    Row("serve", "POST", "/v2/serve/completions", {"model": "chat-open", "prompt": "hi"},
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  401)),
    Row("serve", "POST", "/v2/serve/embeddings", {"model": "embed", "input": "hi"},
                         (401,  401,  401,  401,  401,  401,  401,  200,  200,  200,  200,  401)),
]
# fmt: on

# ------------------------------------------------------------------------------------- the world


@dataclass
class World:
    harness: Harness
    serve: TestClient
    credentials: dict[str, dict[str, str]]  # credential name -> request headers


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def _credentials(
    harness: Harness, other_issuer: IdentityProvider, other_key: KeyPair
) -> dict[str, dict[str, str]]:
    expired, _ = harness.api_token("bob", USER_GROUPS, expires_in=-60)
    revoked, revoked_id = harness.api_token("bob", USER_GROUPS)
    admin_jwt = harness.jwt("alice", ADMIN_GROUPS)
    status, _ = harness.request("DELETE", f"/api-tokens/{revoked_id}", admin_jwt)
    assert status == 200
    now_s = int(time.time())
    foreign = sign(
        other_key,
        {
            "iss": other_issuer.issuer,
            "aud": CLIENT_ID,
            "sub": "alice",
            "iat": now_s,
            "exp": now_s + 300,
            "groups": ADMIN_GROUPS,
        },
    )
    harness.secrets.append(foreign)
    unknown = "lisa_" + uuid.uuid4().hex + uuid.uuid4().hex
    harness.secrets.append(unknown)
    headers = {
        "none": {},
        "malformed": {"Authorization": "Basic Ym9iOnBhc3N3b3Jk"},
        "unknown-token": _bearer(unknown),
        "expired-token": _bearer(expired),
        "revoked-token": _bearer(revoked),
        "jwt-other-issuer": _bearer(foreign),
        "jwt-expired": _bearer(harness.jwt("bob", USER_GROUPS, expires_in=-600)),
        "user-jwt": _bearer(harness.jwt("bob", USER_GROUPS)),
        "user-token": _bearer(harness.api_token("bob", USER_GROUPS)[0]),
        "admin-jwt": _bearer(admin_jwt),
        "admin-token": _bearer(harness.api_token("alice", ADMIN_GROUPS)[0]),
        "management-key": _bearer(harness.resources.management_key),
    }
    assert tuple(headers) == CREDENTIALS
    return headers


def _served_model(
    registry: ModelRegistry, model_id: str, backend_url: str, model_type: ModelType, groups: list[str]
) -> None:
    serve_model(registry, model_id, echo_params(backend_url), "echo", model_type=model_type, groups=groups)


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    harness: Harness,
    resources: LocalResources,
    other_issuer: IdentityProvider,
    other_oidc_key: KeyPair,
) -> Iterator[World]:
    backend = ServerThread(FakeBackend().app).start()
    registry = ModelRegistry(resources.models_table)
    backend_url = backend.url + "/v1"
    _served_model(registry, "chat-open", backend_url, ModelType.TEXTGEN, [])
    _served_model(registry, "chat-admins", backend_url, ModelType.TEXTGEN, [ADMIN_GROUP])
    _served_model(registry, "embed", backend_url, ModelType.EMBEDDING, [])
    config = ServeConfig(
        models_table=resources.models_table,
        tokens_table=resources.tokens_table,
        management_key_secret_arn=resources.management_key_secret_arn,
        admin_group=ADMIN_GROUP,
        registry_poll_seconds=1.0,  # the served models exist before start-up
        backend_timeout_seconds=5.0,
        auth_cache_seconds=0.0,
        allow_management_key=getattr(request, "param", False),
    )
    services = build_services(config, jwt_verifier=jwt_verifier_from_env(ADMIN_GROUP))
    try:
        with TestClient(create_app(services)) as client:
            credentials = _credentials(harness, other_issuer, other_oidc_key)
            wanted, tokens = harness.store.version().version, services.tokens
            assert tokens is not None
            wait_for(lambda: (tokens.version or 0) >= wanted, 5, "serve following the tokens")
            yield World(harness, client, credentials)
    finally:
        backend.stop()


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    return value


def _cell_names(world: World, row: Row, credential: str) -> dict[str, str]:
    """Fresh targets for one cell, made only when the row names them: an InService model
    (``{model}``), an unused model id (``{new_model}``), a token of bob's and one of carol's."""
    harness = world.harness
    template = row.path + json.dumps(row.body)
    slug = f"{credential}-{uuid.uuid4().hex[:8]}"
    names = {"new_model": f"new-{slug}", "model": f"m-{slug}", "own_token": "", "other_token": ""}
    if "{model}" in template:
        timestamp = now()
        ModelRegistry(harness.resources.models_table).create(
            ModelRecord.model_validate(
                {
                    "modelId": names["model"],
                    "modelName": "bedrock/anthropic.claude-3-haiku",
                    "modelType": "textgen",
                    "status": ModelStatus.IN_SERVICE,
                    "createdAt": timestamp,
                    "updatedAt": timestamp,
                }
            )
        )
    if "{own_token}" in template:
        names["own_token"] = harness.api_token("bob", ["team-a"])[1]
    if "{other_token}" in template:
        names["other_token"] = harness.api_token("carol", ["team-b"])[1]
    return names


def send(world: World, row: Row, credential: str) -> int:
    names = _cell_names(world, row, credential)
    path, body = _fill(row.path, names), _fill(row.body, names)
    headers = world.credentials[credential]
    if row.api == "admin":
        sent = dict(headers)
        if body is not None:
            sent["Content-Type"] = "application/json"
        raw = json.dumps(body).encode() if body is not None else b""
        response = world.harness.adapter.handle(row.method, path, list(sent.items()), raw)
        return response.status
    answer = world.serve.request(row.method, path, headers=headers, json=body)
    return answer.status_code


def expected_status(row: Row, credential: str, *, management_key_on_serve: bool) -> int:
    """The cell's status; with the management key allowed on serve, it gets the admin token's."""
    if management_key_on_serve and row.api == "serve" and credential == "management-key":
        credential = "admin-token"
    return row.expected[CREDENTIALS.index(credential)]


def run_matrix(world: World, *, management_key_on_serve: bool = False) -> list[str]:
    """Every cell; the mismatches as readable lines."""
    mismatches = []
    for row in MATRIX:
        for credential in CREDENTIALS:
            expected = expected_status(row, credential, management_key_on_serve=management_key_on_serve)
            actual = send(world, row, credential)
            if actual != expected:
                mismatches.append(f"{row.name} with {credential}: expected {expected}, got {actual}")
    return mismatches


# ------------------------------------------------------------------------------------------ tests


def test_matrix_covers_every_admin_route() -> None:
    """Every (method, route) of the admin API's OpenAPI document has a row."""
    from admin_api import openapi

    placeholders = {"{model}": "{modelId}", "{own_token}": "{tokenId}", "{other_token}": "{tokenId}"}
    rows = set()
    for row in MATRIX:
        if row.api == "admin":
            path = row.path
            for placeholder, parameter in placeholders.items():
                path = path.replace(placeholder, parameter)
            rows.add((row.method.lower(), path))
    documented = {
        (method, path)
        for path, methods in json.loads(openapi.document())["paths"].items()
        for method in methods
    }
    assert documented == rows


def test_auth_matrix(world: World) -> None:
    mismatches = run_matrix(world)
    assert not mismatches, "auth matrix mismatches:\n" + "\n".join(mismatches)


@pytest.mark.parametrize("world", [True], indirect=True, ids=["LISA_SERVE_ALLOW_MANAGEMENT_KEY=true"])
def test_auth_matrix_with_the_management_key_allowed_on_serve(world: World) -> None:
    mismatches = run_matrix(world, management_key_on_serve=True)
    assert not mismatches, "auth matrix mismatches:\n" + "\n".join(mismatches)


def test_management_key_refused_on_serve_by_default(world: World) -> None:
    answer = world.serve.get("/v2/serve/models", headers=world.credentials["management-key"])
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_api_key"


def test_no_credential_in_any_log_line(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full auth run (every credential, every route, successes and failures): no secret is logged."""
    caplog.set_level(logging.DEBUG)
    capsys.readouterr()  # drop what the set-up printed
    assert run_matrix(world) == []
    captured = capsys.readouterr()
    lines = [captured.out, captured.err]
    lines += [record.getMessage() + repr(record.args) + repr(record.__dict__) for record in caplog.records]
    text = "\n".join(lines)
    assert "request authorized" in text and "jwt rejected" in text  # the logs were captured
    secrets = set(world.harness.secrets)
    assert len(secrets) >= 12
    for secret in secrets:
        assert secret not in text
        if secret.count(".") == 2:  # a JWT: neither its payload nor its signature
            _header, payload, signature = secret.split(".")
            assert payload not in text
            assert signature not in text


def test_revocation_reaches_the_serve_api_within_a_second(world: World) -> None:
    value, token_id = world.harness.api_token("bob", ["team-a"])
    headers = _bearer(value)

    def status() -> int:
        return world.serve.get("/v2/serve/models", headers=headers).status_code

    wait_for(lambda: status() == 200, 1.0, "the new token accepted by serve")
    admin = world.credentials["admin-jwt"]["Authorization"].split()[1]
    assert world.harness.request("DELETE", f"/api-tokens/{token_id}", admin)[0] == 200
    wait_for(lambda: status() == 401, 1.0, "the revoked token refused by serve")
    answer = world.serve.get("/v2/serve/models", headers=headers)
    assert answer.json()["error"]["code"] == "invalid_api_key"
