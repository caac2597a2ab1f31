"""Serve hardening (issue 10): request limits, JSON depth, readiness under a registry outage,
provider keys that cannot be read, and malformed registry items."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import openai
import pytest

from lisa_domain.change_log import ChangeLog
from lisa_domain.registry import (
    VERSION_KEY,
    FollowedModel,
    FollowedModels,
    ModelRegistry,
    ServedModel,
    ServedModels,
)
from lisa_domain.schema import ModelRecord, ModelStatus, ModelType
from serve.app import build_services, create_app, router_factory
from serve.bodies import MAX_JSON_DEPTH, Endpoint, parse
from serve.config import RequestLimits, ServeConfig
from serve.errors import ServeError
from serve.follower import RegistryFollower, SecretCache
from tests.serve.conftest import ServeEnv
from tests.support.servers import ServerThread
from tests.support.waiting import wait_for

HELLO = [{"role": "user", "content": "hello world"}]
LIMITS = RequestLimits()
STALE_SECONDS = 0.3


def _error(response: httpx.Response) -> dict[str, Any]:
    assert set(response.json()) == {"error"}, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


# ---- request limits (item 5) ---------------------------------------------------------------------
def test_request_limits_come_from_the_environment() -> None:
    config = ServeConfig.from_env(
        {
            "MODELS_TABLE_NAME": "t",
            "LISA_SERVE_MAX_N": "2",
            "LISA_SERVE_MAX_BEST_OF": "3",
            "LISA_SERVE_MAX_TOKENS": "100",
            "LISA_SERVE_MAX_GUIDED_BYTES": "1000",
        }
    )
    assert config.request_limits == RequestLimits(
        max_n=2, max_best_of=3, max_tokens=100, max_guided_bytes=1000
    )
    assert ServeConfig.from_env({"MODELS_TABLE_NAME": "t"}).request_limits == RequestLimits(
        8, 8, 32768, 65536
    )
    with pytest.raises(ValueError, match="LISA_SERVE_MAX_N"):
        ServeConfig.from_env({"MODELS_TABLE_NAME": "t", "LISA_SERVE_MAX_N": "0"})


BIG_SCHEMA = {"type": "object", "description": "x" * LIMITS.max_guided_bytes}


@pytest.mark.parametrize(
    ("path", "extra", "param"),
    [
        ("/chat/completions", {"n": LIMITS.max_n + 1}, "n"),
        ("/chat/completions", {"n": 0}, "n"),
        ("/chat/completions", {"max_tokens": LIMITS.max_tokens + 1}, "max_tokens"),
        ("/chat/completions", {"max_tokens": -1}, "max_tokens"),
        ("/chat/completions", {"max_completion_tokens": LIMITS.max_tokens + 1}, "max_completion_tokens"),
        ("/chat/completions", {"min_tokens": LIMITS.max_tokens + 1}, "min_tokens"),
        ("/completions", {"best_of": LIMITS.max_best_of + 1}, "best_of"),
        ("/completions", {"n": 10**9}, "n"),
        ("/chat/completions", {"guided_json": BIG_SCHEMA}, "guided_json"),
        ("/chat/completions", {"guided_json": json.dumps(BIG_SCHEMA)}, "guided_json"),
        ("/chat/completions", {"guided_regex": "a" * (LIMITS.max_guided_bytes + 1)}, "guided_regex"),
        ("/chat/completions", {"guided_grammar": "é" * (LIMITS.max_guided_bytes // 2 + 1)}, "guided_grammar"),
        ("/completions", {"guided_choice": ["x" * 1000] * 70}, "guided_choice"),
        (
            "/chat/completions",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": BIG_SCHEMA}}},
            "response_format",
        ),
        (
            "/chat/completions",
            {"chat_template_kwargs": {"chat_template": "{{ 'owned' }}", "enable_thinking": False}},
            "chat_template_kwargs.chat_template",
        ),
    ],
)
def test_parameters_over_the_limits_are_400_naming_the_field(
    serve: ServeEnv, path: str, extra: dict[str, Any], param: str
) -> None:
    body = {
        "model": "chat-open",
        **({"messages": HELLO} if path == "/chat/completions" else {"prompt": "hi"}),
    }
    calls = serve.backend.calls["echo"]
    response = httpx.post(serve.base_url + path, headers=serve.headers("alice"), json={**body, **extra})
    assert response.status_code == 400, response.text
    error = _error(response)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert param.split(".")[-1] in error["message"]
    assert serve.backend.calls["echo"] == calls  # nothing reached the backend


def test_parameters_at_the_limits_are_served(serve: ServeEnv) -> None:
    client = serve.client("alice")
    reply = client.chat.completions.create(
        model="chat-open",
        messages=HELLO,  # type: ignore[arg-type]
        n=1,
        max_tokens=LIMITS.max_tokens,
        max_completion_tokens=LIMITS.max_tokens,
        extra_body={
            "guided_regex": "a" * LIMITS.max_guided_bytes,
            "chat_template_kwargs": {"enable_thinking": False},
        },
    )
    assert reply.choices[0].message.content == "echo: hello world"
    with pytest.raises(openai.BadRequestError) as refused:
        client.completions.create(model="chat-open", prompt="hi", best_of=LIMITS.max_best_of + 1)
    assert refused.value.body["param"] == "best_of"  # type: ignore[index]


def test_limits_are_configurable() -> None:
    tight = RequestLimits(max_n=1, max_best_of=1, max_tokens=10, max_guided_bytes=5)
    chat = b'{"model": "m", "messages": [{"role": "user", "content": "x"}], '
    assert parse(chat + b'"n": 2}', Endpoint.CHAT)["n"] == 2
    for extra, param in [
        (b'"n": 2}', "n"),
        (b'"max_tokens": 11}', "max_tokens"),
        (b'"guided_regex": "abcdef"}', "guided_regex"),
    ]:
        with pytest.raises(ServeError) as refused:
            parse(chat + extra, Endpoint.CHAT, tight)
        assert (refused.value.status, refused.value.param) == (400, param)


# ---- JSON depth (item 14) ------------------------------------------------------------------------
def _nested(depth: int) -> bytes:
    """A chat body whose deepest array sits at ``depth`` (the body object is depth 1)."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return (
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stop_token_ids": '
        + inner.encode()
        + b"}"
    )


def test_json_nesting_is_bounded() -> None:
    assert parse(_nested(MAX_JSON_DEPTH), Endpoint.CHAT)["stop_token_ids"]
    with pytest.raises(ServeError) as refused:
        parse(_nested(MAX_JSON_DEPTH + 1), Endpoint.CHAT)
    assert (refused.value.status, refused.value.code) == (400, "json_too_deep")


def test_deeply_nested_body_is_400_not_500(serve: ServeEnv) -> None:
    bodies = [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's recursion limit
        b'{"model": "chat-open", "messages": ' + b"[" * 500 + b"]" * 500 + b"}",  # parses, then refused
    ]
    for body in bodies:
        response = httpx.post(
            serve.base_url + "/chat/completions",
            headers={**serve.headers("alice"), "Content-Type": "application/json"},
            content=body,
        )
        assert response.status_code == 400, response.text
        assert _error(response)["code"] == "json_too_deep"


# ---- a replica under registry and Secrets Manager outages (items 2, 9, 10) -----------------------
class Switch:
    """Makes a wrapped object's calls raise while ``down`` (a simulated AWS outage)."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise ConnectionError("simulated outage")
            return attribute(*args, **kwargs)

        return call


@dataclass
class Replica:
    url: str
    follower: RegistryFollower
    registry: Switch
    secrets: Switch

    def ready(self, path: str = "/health/ready") -> dict[str, Any]:
        response = httpx.get(self.url + path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def caught_up(self, serve: ServeEnv) -> None:
        wanted = serve.registry.version()
        wait_for(
            lambda: self.follower.snapshot is not None and self.follower.snapshot.version >= wanted,
            5.0,
            "the replica following the registry",
        )


@pytest.fixture
def replica(serve: ServeEnv, moto_url: str) -> Iterator[Replica]:
    """A second replica on the session's registry whose registry and secrets can be cut off; it
    reads provider keys on every build (no cache) and calls the registry stale after 0.3 s."""
    config = ServeConfig(
        models_table=serve.resources.models_table,
        tokens_table=serve.resources.tokens_table,
        registry_poll_seconds=0.05,
        registry_stale_seconds=STALE_SECONDS,
    )
    services = build_services(config, endpoint_url=moto_url)
    registry = Switch(ModelRegistry(config.models_table, boto3.client("dynamodb", endpoint_url=moto_url)))
    secrets = Switch(boto3.client("secretsmanager", endpoint_url=moto_url))
    services.follower = RegistryFollower(
        registry,  # type: ignore[arg-type]
        router_factory(config),
        secrets=SecretCache(secrets, ttl=0),
        poll_seconds=config.registry_poll_seconds,
    )
    server = ServerThread(create_app(services)).start()
    yield Replica(server.url, services.follower, registry, secrets)
    server.stop()


def _chat(url: str, serve: ServeEnv, model: str) -> httpx.Response:
    return httpx.post(
        url + "/v2/serve/chat/completions",
        headers=serve.headers("alice"),
        json={"model": model, "messages": HELLO},
    )


def test_registry_outage_keeps_the_replica_in_service(serve: ServeEnv, replica: Replica) -> None:
    # Fresh once its first polls are in (a loaded machine may take longer than STALE_SECONDS).
    wait_for(lambda: replica.ready()["stale"] is False, 5.0, "the new replica fresh")
    first = replica.ready()
    assert (first["status"], first["incomplete"]) == ("ready", [])
    replica.registry.down = True
    try:
        time.sleep(STALE_SECONDS + 0.2)
        for path in ("/health/ready", "/health/readiness"):
            stale = replica.ready(path)
            assert stale["stale"] is True
            assert stale["registryAgeSeconds"] > STALE_SECONDS
            assert stale["registryVersion"] == first["registryVersion"]
        assert httpx.get(replica.url + "/health").status_code == 200
        assert _chat(replica.url, serve, "chat-open").status_code == 200  # the last snapshot serves
    finally:
        replica.registry.down = False
    wait_for(lambda: replica.ready()["stale"] is False, 5.0, "the replica no longer stale")


def test_readiness_is_503_until_the_first_snapshot(serve: ServeEnv, moto_url: str) -> None:
    config = ServeConfig(models_table=serve.resources.models_table, registry_poll_seconds=0.05)
    services = build_services(config, endpoint_url=moto_url)
    registry = Switch(serve.registry)
    registry.down = True
    services.follower = RegistryFollower(
        registry,  # type: ignore[arg-type]
        router_factory(config),
        secrets=None,
        poll_seconds=config.registry_poll_seconds,
    )
    server = ServerThread(create_app(services)).start()
    try:
        for path in ("/health/ready", "/health/readiness"):
            response = httpx.get(server.url + path)
            assert response.status_code == 503
            assert response.json() == {"status": "not ready", "registryLoaded": False, "tokensLoaded": True}
        assert httpx.get(server.url + "/health").status_code == 200
        registry.down = False
        wait_for(lambda: httpx.get(server.url + "/health/readiness").status_code == 200, 5.0, "readiness")
    finally:
        server.stop()


def _secret_model(serve: ServeEnv, model_id: str) -> str:
    arn: str = serve.secretsmanager.create_secret(
        Name=f"lisa/test/models/{model_id}", SecretString=f"sk-{model_id}"
    )["ARN"]
    serve.add_model(
        model_id,
        params={"model": f"openai/{model_id}", "api_base": serve.backend_url, "api_key_secret_arn": arn},
    )
    return arn


def _remove(serve: ServeEnv, *model_ids: str) -> None:
    for model_id in model_ids:
        serve.registry.delete(model_id, allowed_from=[serve.registry.get(model_id).status])
    serve.wait_for_registry()


def test_unreadable_provider_key_keeps_the_previous_deployment(serve: ServeEnv, replica: Replica) -> None:
    arn = _secret_model(serve, "ext-kept")
    try:
        replica.caught_up(serve)
        assert _chat(replica.url, serve, "ext-kept").status_code == 200
        replica.secrets.down = True
        serve.add_model("another-change")  # other models' changes do not read its key again ...
        replica.caught_up(serve)
        assert replica.ready()["incomplete"] == []
        # ... its own change does (registered again, while Secrets Manager is down)
        params = {"model": "openai/ext-kept", "api_base": serve.backend_url, "api_key_secret_arn": arn}
        serve.registry.register("ext-kept", params, allowed_from=[ModelStatus.IN_SERVICE])
        replica.caught_up(serve)
        assert replica.ready()["incomplete"] == ["ext-kept"]
        assert _chat(replica.url, serve, "ext-kept").status_code == 200
        assert serve.backend.authorization["ext-kept"] == "Bearer sk-ext-kept"
        replica.secrets.down = False
        # retried without a registry change
        wait_for(lambda: replica.ready()["incomplete"] == [], 5.0, "the unreadable key read again")
        assert _chat(replica.url, serve, "ext-kept").status_code == 200
    finally:
        replica.secrets.down = False
        _remove(serve, "ext-kept", "another-change")


def test_model_whose_key_was_never_read_is_served_once_it_can_be(serve: ServeEnv, replica: Replica) -> None:
    replica.secrets.down = True
    try:
        _secret_model(serve, "ext-late")
        replica.caught_up(serve)
        assert replica.ready()["incomplete"] == ["ext-late"]
        assert _chat(replica.url, serve, "ext-late").status_code == 404
        assert _chat(replica.url, serve, "chat-open").status_code == 200
        replica.secrets.down = False
        wait_for(lambda: _chat(replica.url, serve, "ext-late").status_code == 200, 5.0, "ext-late served")
        assert replica.ready()["incomplete"] == []
    finally:
        replica.secrets.down = False
        _remove(serve, "ext-late")


def _bump_version(serve: ServeEnv, dynamodb: Any) -> None:
    dynamodb.update_item(
        TableName=serve.resources.models_table,
        Key={"modelId": {"S": VERSION_KEY}},
        UpdateExpression="ADD version :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


def test_malformed_items_are_skipped_and_counted(serve: ServeEnv, replica: Replica, moto_url: str) -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
    table = serve.resources.models_table
    dynamodb.put_item(
        TableName=table,
        Item={
            "modelId": {"S": "bad-record"},
            "modelType": {"S": "not-a-type"},
            "litellmParams": {"M": {"model": {"S": "openai/echo"}}},
        },
    )
    serve.add_model("bad-params-type")
    dynamodb.update_item(
        TableName=table,
        Key={"modelId": {"S": "bad-params-type"}},
        UpdateExpression="SET litellmParams = :text",
        ExpressionAttributeValues={":text": {"S": "not an object"}},
    )
    # Valid record, but parameters that make LiteLLM refuse a whole Router (not just this deployment).
    serve.add_model("bad-router-params", params={"model": "openai/echo", "max_parallel_requests": "a"})
    try:
        _bump_version(serve, dynamodb)
        replica.caught_up(serve)
        served = serve.registry.served_models()
        assert isinstance(served, ServedModels)
        assert served.skipped == 2
        assert not {"bad-record", "bad-params-type"} & {model.record.modelId for model in served}
        assert replica.ready()["skippedRecords"] == 3
        assert _chat(replica.url, serve, "chat-open").status_code == 200
        assert _chat(replica.url, serve, "bad-router-params").status_code == 404
    finally:
        dynamodb.delete_item(TableName=table, Key={"modelId": {"S": "bad-record"}})
        _remove(serve, "bad-params-type", "bad-router-params")
        _bump_version(serve, dynamodb)  # a change outside LISA: the bump without a log reloads all
    replica.caught_up(serve)
    assert replica.ready()["skippedRecords"] == 0


class CountingSecrets:
    """A Secrets Manager client that counts reads and fails while ``down``."""

    def __init__(self) -> None:
        self.reads = 0
        self.down = True

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        self.reads += 1
        if self.down:
            raise ConnectionError("simulated outage")
        return {"SecretString": "sk-" + SecretId}


class FixedRegistry:
    """A registry whose version never changes."""

    def __init__(self, served: ServedModels) -> None:
        self.served = served

    def change_log(self) -> ChangeLog:
        return ChangeLog(1)

    def followed_models(self) -> FollowedModels:
        return FollowedModels(
            {model.record.modelId: FollowedModel(model.record, model.litellm_params) for model in self.served}
        )


def test_unreadable_key_is_retried_on_the_next_poll_then_with_backoff() -> None:
    record = ModelRecord(
        modelId="ext",
        modelName="ext",
        modelType=ModelType.TEXTGEN,
        status=ModelStatus.IN_SERVICE,
        createdAt=1,
        updatedAt=1,
    )
    params = {"model": "openai/ext", "api_base": "http://127.0.0.1:9/v1", "api_key_secret_arn": "arn:ext"}
    secrets = CountingSecrets()
    follower = RegistryFollower(
        FixedRegistry(ServedModels([ServedModel(record, params)])),  # type: ignore[arg-type]
        router_factory(ServeConfig(models_table="t")),
        secrets=SecretCache(secrets, ttl=0),
        poll_seconds=0.2,
    )
    assert follower.refresh() is True
    assert follower.snapshot is not None and follower.snapshot.incomplete == {"ext"}
    assert "ext" not in follower.snapshot.models
    assert follower.refresh() is False  # the next poll retries the key ...
    assert secrets.reads == 2
    assert follower.refresh() is False  # ... then the retries back off
    assert secrets.reads == 2
    secrets.down = False
    time.sleep(0.25)
    assert follower.refresh() is True  # no registry change needed
    assert follower.snapshot.incomplete == frozenset()
    assert "ext" in follower.snapshot.models
