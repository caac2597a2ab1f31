"""Identity hardening (issue 10): the management key's failure mode and previous-version lifetime,
no credential in X-Ray metadata, bounded JSON depth on the admin API, and token-list cursors that
carry no token hash."""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from key_rotation import handler as rotation

from lisa_domain.auth import Authenticator, ManagementKey, authenticator_from_env
from lisa_domain.errors import Unauthorized
from lisa_domain.tokens import TokenStore
from local_mode.resources import LocalResources
from tests.conftest import ADMIN_GROUP
from tests.support.lambda_state import fresh_key_rotation
from tests.unit.helpers import FakeContext
from tests.unit.identity_harness import Harness, tokens_table_items

ROOT = Path(__file__).resolve().parents[2]


# ---- management key: previous version for a bounded time (item 12) ------------------------------
class Clock:
    """An injectable clock (seconds) that tests move by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rotate(secret_id: str, token: str = "11111111-2222-3333-4444-555555555555") -> str:
    """Run the four rotation steps; returns the new current value."""
    fresh_key_rotation()
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        rotation.lambda_handler(
            {"Step": step, "SecretId": secret_id, "ClientRequestToken": token}, FakeContext()
        )
    fresh_key_rotation()
    return str(
        boto3.client("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")[
            "SecretString"
        ]
    )


def current_created(secret_id: str) -> float:
    answer = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    return float(answer["CreatedDate"].timestamp())


def test_previous_key_is_accepted_only_for_the_configured_time(resources: LocalResources) -> None:
    secret, old = resources.management_key_secret_arn, resources.management_key
    new = rotate(secret)
    rotated_at = current_created(secret)
    clock = Clock(rotated_at + 3599)
    key = ManagementKey(secret, previous_ttl=3600, clock=clock)

    assert key.matches(old) and key.matches(new)
    clock.now = rotated_at + 3600
    assert not key.matches(old)
    assert key.matches(new)


def test_previous_key_ttl_comes_from_the_environment(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, old = resources.management_key_secret_arn, resources.management_key
    rotate(secret)
    rotated_at = current_created(secret)
    monkeypatch.setenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS", "60")
    assert ManagementKey(secret, clock=Clock(rotated_at + 59)).matches(old)
    assert not ManagementKey(secret, clock=Clock(rotated_at + 61)).matches(old)
    monkeypatch.delenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS")  # the default: one day
    assert ManagementKey(secret, clock=Clock(rotated_at + 86_399)).matches(old)
    assert not ManagementKey(secret, clock=Clock(rotated_at + 86_401)).matches(old)


def test_authorizer_refuses_an_expired_previous_key(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, old = resources.management_key_secret_arn, resources.management_key
    new = rotate(secret)
    monkeypatch.setenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS", "0")
    authenticator = authenticator_from_env()
    assert authenticator.authenticate(new).method == "management-key"
    with pytest.raises(Unauthorized):
        authenticator.authenticate(old)


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_bad_previous_key_ttl_is_a_startup_error(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS", value)
    with pytest.raises(ValueError, match="MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS"):
        authenticator_from_env()


# ---- management key: a key-store failure blocks nothing (item 3) --------------------------------
class FlakySecrets:
    """A Secrets Manager client that fails on demand (throttling) and counts its reads."""

    def __init__(self) -> None:
        self.client = boto3.client("secretsmanager")
        self.error: Exception | None = None
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return dict(self.client.get_secret_value(**kwargs))


THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue"
)


def test_failed_refresh_keeps_the_cached_versions_with_backoff(
    resources: LocalResources, caplog: pytest.LogCaptureFixture
) -> None:
    flaky, monotonic = FlakySecrets(), Clock(0.0)
    key = ManagementKey(resources.management_key_secret_arn, flaky, ttl=60, monotonic=monotonic)
    assert key.matches(resources.management_key)
    flaky.error = THROTTLED
    monotonic.now = 61  # the cache is due for a refresh, which fails
    assert key.matches(resources.management_key)
    reads = flaky.reads
    monotonic.now = 61.9  # within the first backoff (1 s): no new attempt
    assert key.matches(resources.management_key) and flaky.reads == reads
    monotonic.now = 62.1  # the second attempt fails too: the backoff doubles
    assert key.matches(resources.management_key) and flaky.reads == reads + 1
    monotonic.now = 64.0
    assert key.matches(resources.management_key) and flaky.reads == reads + 1
    flaky.error = None
    monotonic.now = 64.2
    assert key.matches(resources.management_key) and flaky.reads > reads + 1
    assert "ThrottlingException" in caplog.text
    assert resources.management_key not in caplog.text


def test_key_store_failure_without_cache_blocks_no_other_credential(
    resources: LocalResources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = TokenStore(resources.tokens_table)
    value, _ = store.create(username="bob", groups=["team-a"])
    for error in (THROTTLED, EndpointConnectionError(endpoint_url="https://secretsmanager")):
        flaky = FlakySecrets()
        flaky.error = error
        authenticator = Authenticator(
            admin_group=ADMIN_GROUP,
            tokens=store,
            management_key=ManagementKey(resources.management_key_secret_arn, flaky),
        )
        assert authenticator.authenticate(value).username == "bob"
        with pytest.raises(Unauthorized):
            authenticator.authenticate(resources.management_key)
    assert "no cached versions" in caplog.text
    assert resources.management_key not in caplog.text and value not in caplog.text


# ---- no credential in X-Ray metadata (item 1) -----------------------------------------------------
class RecordingSubsegment:
    def __init__(self, recorded: list[tuple[str, Any]]) -> None:
        self._recorded = recorded

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        self._recorded.append((key, value))

    def put_annotation(self, key: str, value: Any) -> None:
        self._recorded.append((key, value))


class RecordingTracerProvider:
    """Stands in for the X-Ray recorder: keeps every annotation and metadata value it is given."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, Any]] = []
        self.subsegments: list[str] = []

    @contextmanager
    def in_subsegment(self, name: str, **_: Any) -> Iterator[RecordingSubsegment]:
        self.subsegments.append(name)
        yield RecordingSubsegment(self.recorded)


@pytest.fixture
def recording_tracer(monkeypatch: pytest.MonkeyPatch) -> RecordingTracerProvider:
    from admin_api import handler as admin_handler

    provider = RecordingTracerProvider()
    monkeypatch.setattr(admin_handler.tracer, "provider", provider)
    return provider


def test_new_token_value_never_reaches_the_tracer(
    harness: Harness, recording_tracer: RecordingTracerProvider
) -> None:
    admin = harness.jwt("alice", [ADMIN_GROUP])
    status, created = harness.request("POST", "/api-tokens", admin, body={"username": "bob", "groups": []})
    assert status == 201
    assert recording_tracer.subsegments == ["## lambda_handler"]
    recorded = repr(recording_tracer.recorded)
    assert "ColdStart" in recorded  # the tracer did record (annotations)
    assert created["token"] not in recorded
    assert admin not in recorded


def test_handler_errors_never_reach_the_tracer(
    harness: Harness, recording_tracer: RecordingTracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from admin_api import handler as admin_handler

    secret = "lisa_an-error-that-carries-a-credential"

    def failing_resolve(*_: Any) -> dict[str, Any]:
        raise RuntimeError(secret)

    monkeypatch.setattr(admin_handler.app, "resolve", failing_resolve)
    admin = harness.jwt("alice", [ADMIN_GROUP])
    status, _ = harness.request("GET", "/api-tokens", admin)
    assert status == 502  # API Gateway's answer to a failed integration
    assert recording_tracer.subsegments == ["## lambda_handler"]
    assert secret not in repr(recording_tracer.recorded)


def _tracer_decorators(tree: ast.AST) -> Iterator[ast.expr]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(target, ast.Attribute) and target.attr in (
                    "capture_lambda_handler",
                    "capture_method",
                ):
                    yield decorator


def test_every_traced_function_captures_neither_response_nor_error() -> None:
    """Every Lambda handler (admin API, authorizer, key rotation, workflow steps) and the serve app:
    a Powertools tracer decorator must turn response and error capture off explicitly."""
    found = []
    for path in sorted(
        [*ROOT.joinpath("lambdas").rglob("*.py"), *ROOT.joinpath("litellm_container").rglob("*.py")]
    ):
        for decorator in _tracer_decorators(ast.parse(path.read_text(), str(path))):
            keywords = {k.arg: k.value for k in decorator.keywords} if isinstance(decorator, ast.Call) else {}
            off = {
                name
                for name in ("capture_response", "capture_error")
                if isinstance(keywords.get(name), ast.Constant) and keywords[name].value is False  # type: ignore[attr-defined]
            }
            found.append((path.relative_to(ROOT).as_posix(), decorator.lineno, sorted(off)))
    assert found, "the admin API handler is traced"
    assert all(off == ["capture_error", "capture_response"] for _, _, off in found), found


# ---- JSON depth on the admin API (item 14) --------------------------------------------------------
def _nested(depth: int) -> bytes:
    return b'{"modelId": "deep", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deeply_nested_body_is_400_naming_the_body(harness: Harness, depth: int) -> None:
    admin = harness.jwt("alice", [ADMIN_GROUP])
    before = tokens_table_items(harness.resources)
    headers = [("Authorization", f"Bearer {admin}"), ("Content-Type", "application/json")]
    for method, path in (("POST", "/models"), ("POST", "/api-tokens"), ("PUT", "/models/deep")):
        response = harness.adapter.handle(method, path, headers, _nested(depth))
        assert response.status == 400, (method, path, response.body[:200])
        assert json.loads(response.body) == {
            "message": "body: JSON nested deeper than 64 levels",
            "statusCode": 400,
        }
    assert tokens_table_items(harness.resources) == before
    models = boto3.client("dynamodb").scan(TableName=harness.resources.models_table)["Items"]
    assert not any(item.get("modelId", {}).get("S") == "deep" for item in models)


def test_nesting_up_to_the_limit_and_brackets_in_strings_are_parsed(harness: Harness) -> None:
    admin = harness.jwt("alice", [ADMIN_GROUP])
    headers = [("Authorization", f"Bearer {admin}"), ("Content-Type", "application/json")]
    response = harness.adapter.handle("POST", "/models", headers, _nested(64))
    assert response.status == 422  # parsed, then refused by the schema (x is not a field)
    name = "[" * 60 + "{" * 60  # 120 openings, all inside a string
    status, created = harness.request("POST", "/api-tokens", admin, body={"username": "bob", "name": name})
    assert status == 201 and created["name"] == name


# ---- the management key on the serve API (item 7; the auth matrix runs both settings) -------------
def test_serve_allows_the_management_key_only_when_configured() -> None:
    from serve.auth import serve_management_key
    from serve.config import ServeConfig

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lisa/management-key"
    base = {"MODELS_TABLE_NAME": "models", "MANAGEMENT_KEY_SECRET_ARN": arn}
    default = ServeConfig.from_env(base)
    assert default.allow_management_key is False
    assert serve_management_key(default, client := object()) is None
    allowed = ServeConfig.from_env(base | {"LISA_SERVE_ALLOW_MANAGEMENT_KEY": "true"})
    assert allowed.allow_management_key is True
    assert isinstance(serve_management_key(allowed, client), ManagementKey)
    with pytest.raises(ValueError, match="LISA_SERVE_ALLOW_MANAGEMENT_KEY"):
        ServeConfig.from_env(base | {"LISA_SERVE_ALLOW_MANAGEMENT_KEY": "maybe"})
