"""The Messages and Responses routes go through the usage metering and limits chat goes through
(``serve.metering``, ``serve.limits``), against the stand-in backend (``echo``, not a model)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import httpx
import pytest

from lisa_domain.registry import ModelRegistry
from lisa_domain.tokens import TokenStore
from lisa_domain.usage import day_of
from local_mode.resources import create_resources
from serve.app import build_services, create_app
from serve.config import ServeConfig
from tests.conftest import ADMIN_GROUP
from tests.serve.conftest import ServeEnv
from tests.support.fake_backend import FakeBackend
from tests.support.servers import ServerThread

LIMITS = {"users": {"limited": {"rateLimit": {"rpm": 1}}}}
MESSAGE = {"model": "chat", "max_tokens": 32, "messages": [{"role": "user", "content": "one two three"}]}


@pytest.fixture(scope="module")
def metered(moto_url: str, backend: tuple[FakeBackend, str]) -> Iterator[ServeEnv]:
    resources = create_resources("lisa-surface-metering", endpoint_url=moto_url)
    config = ServeConfig(
        models_table=resources.models_table,
        tokens_table=resources.tokens_table,
        admin_group=ADMIN_GROUP,
        registry_poll_seconds=0.05,
        tokens_poll_seconds=0.05,
        usage_table=resources.usage_table,
        usage_limits=json.dumps(LIMITS),
    )
    services = build_services(config, endpoint_url=moto_url)
    server = ServerThread(create_app(services)).start()
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
    env = ServeEnv(
        url=server.url,
        resources=resources,
        services=services,
        registry=ModelRegistry(resources.models_table, dynamodb),
        tokens=TokenStore(resources.tokens_table, dynamodb),
        secretsmanager=boto3.client("secretsmanager", endpoint_url=moto_url),
        backend=backend[0],
        backend_url=backend[1],
    )
    for who in ("anthropic", "streamer", "responder", "limited"):
        env.token_values[who] = env.tokens.create(username=who, groups=[])[0]
    env.wait_for_tokens()
    env.add_model("chat")
    yield env
    server.stop()


def usage_of(env: ServeEnv, username: str) -> dict[str, int]:
    meter = env.services.meter
    assert meter is not None
    meter.flush()
    rows = meter.store.read([day_of(time.time())], username)
    return {key.model: counts.body() for key, counts in rows.items()}["chat"]


def post(env: ServeEnv, route: str, who: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{env.base_url}/{route}", json=body, headers={"x-api-key": env.token_values[who]}, timeout=20
    )


def test_a_message_is_metered_with_its_tokens(metered: ServeEnv) -> None:
    answer = post(metered, "v1/messages", "anthropic", MESSAGE)
    assert answer.status_code == 200
    usage = answer.json()["usage"]
    counted = usage_of(metered, "anthropic")
    assert counted["requests"] == 1 and counted["errors"] == 0
    assert counted["promptTokens"] == usage["input_tokens"] > 0
    assert counted["completionTokens"] == usage["output_tokens"] > 0


def test_a_streamed_message_is_metered_once_with_the_usage_of_its_last_delta(metered: ServeEnv) -> None:
    with httpx.stream(
        "POST",
        f"{metered.base_url}/v1/messages",
        json={**MESSAGE, "stream": True},
        headers={"x-api-key": metered.token_values["streamer"]},
        timeout=20,
    ) as answer:
        assert answer.status_code == 200
        events = [json.loads(line[6:]) for line in answer.iter_lines() if line.startswith("data: ")]
    delta = next(event for event in events if event["type"] == "message_delta")
    counted = usage_of(metered, "streamer")
    assert counted["requests"] == 1
    assert counted["completionTokens"] == delta["usage"]["output_tokens"] > 0


def test_a_response_is_metered(metered: ServeEnv) -> None:
    answer = post(metered, "responses", "responder", {"model": "chat", "input": "one two three"})
    assert answer.status_code == 200
    counted = usage_of(metered, "responder")
    assert (
        counted["requests"] == 1
        and counted["completionTokens"] == answer.json()["usage"]["output_tokens"] > 0
    )


def test_over_the_rate_limit_a_message_is_429_in_anthropics_shape_with_retry_after(metered: ServeEnv) -> None:
    assert post(metered, "v1/messages", "limited", MESSAGE).status_code == 200
    refused = post(metered, "v1/messages", "limited", MESSAGE)
    assert refused.status_code == 429
    assert refused.json()["type"] == "error" and refused.json()["error"]["type"] == "rate_limit_error"
    assert int(refused.headers["retry-after"]) > 0
