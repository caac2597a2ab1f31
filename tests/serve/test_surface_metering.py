"""The Messages and Responses routes go through the usage metering and limits chat goes through
(``serve.metering``, ``serve.limits``), against the stand-in backend (``echo``, not a model)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from local_mode.resources import create_resources
from tests.serve.conftest import ServeEnv, running_serve, usage_of
from tests.support.fake_backend import FakeBackend

LIMITS = {"users": {"limited": {"rateLimit": {"rpm": 1}}}}
MESSAGE = {"model": "chat", "max_tokens": 32, "messages": [{"role": "user", "content": "one two three"}]}


@pytest.fixture(scope="module")
def metered(moto_url: str, backend: tuple[FakeBackend, str]) -> Iterator[ServeEnv]:
    resources = create_resources("lisa-surface-metering", endpoint_url=moto_url)
    with running_serve(
        moto_url, backend, resources, usage_table=resources.usage_table, usage_limits=json.dumps(LIMITS)
    ) as env:
        env.add_tokens({who: [] for who in ("anthropic", "streamer", "responder", "limited")})
        env.add_model("chat")
        yield env


def post(env: ServeEnv, route: str, who: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        f"{env.base_url}/{route}", json=body, headers={"x-api-key": env.token_values[who]}, timeout=20
    )


def test_a_message_is_metered_with_its_tokens(metered: ServeEnv) -> None:
    answer = post(metered, "v1/messages", "anthropic", MESSAGE)
    assert answer.status_code == 200
    usage = answer.json()["usage"]
    counted = usage_of(metered, "anthropic")["chat"]
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
    counted = usage_of(metered, "streamer")["chat"]
    assert counted["requests"] == 1
    assert counted["completionTokens"] == delta["usage"]["output_tokens"] > 0


def test_a_response_is_metered(metered: ServeEnv) -> None:
    answer = post(metered, "responses", "responder", {"model": "chat", "input": "one two three"})
    assert answer.status_code == 200
    counted = usage_of(metered, "responder")["chat"]
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
