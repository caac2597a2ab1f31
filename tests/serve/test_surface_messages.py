"""Anthropic Messages (``/v2/serve/v1/messages``) with the official ``anthropic`` client.

The model backends are the stand-in OpenAI server of ``tests/support/fake_backend.py`` (not a
model): ``echo`` answers ``"echo: <last message>"``, ``tooler`` calls the first tool it is given.
LiteLLM translates Anthropic's request into a chat completion and the answer back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.serve.conftest import ServeEnv
from tests.support.fake_backend import TOOL_ARGUMENTS

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HELLO: Any = [{"role": "user", "content": "hello world"}]


@pytest.fixture(scope="module")
def tool_model(serve: ServeEnv) -> Iterator[str]:
    serve.add_model("tool-caller", "tooler")
    yield "tool-caller"


def client(serve: ServeEnv, who: str = "admin") -> anthropic.Anthropic:
    """The Anthropic client as Claude Code configures it: ``ANTHROPIC_BASE_URL=<serve>/v2/serve``."""
    return anthropic.Anthropic(
        base_url=serve.base_url, api_key=serve.token_values.get(who, who), max_retries=0, timeout=20
    )


def test_message_is_answered_in_anthropics_shape_under_the_lisa_model_id(serve: ServeEnv) -> None:
    message = client(serve).messages.create(model="chat-open", max_tokens=64, messages=HELLO)
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "chat-open"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "echo: hello world"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0


def test_a_system_prompt_and_content_blocks_are_accepted(serve: ServeEnv) -> None:
    message = client(serve).messages.create(
        model="chat-open",
        max_tokens=64,
        system=[{"type": "text", "text": "be brief"}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "blocks work"}]}],
        metadata={"user_id": "someone"},
    )
    assert message.content[0].text == "echo: blocks work"  # type: ignore[union-attr]


def test_message_streams_as_anthropic_events(serve: ServeEnv) -> None:
    with client(serve).messages.stream(model="chat-open", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: hello world"
    assert final.model == "chat-open"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_tool_use_block_is_returned(serve: ServeEnv, tool_model: str) -> None:
    message = client(serve).messages.create(
        model=tool_model,
        max_tokens=64,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
    )
    assert message.stop_reason == "tool_use"
    uses = [block for block in message.content if block.type == "tool_use"]
    assert len(uses) == 1
    assert uses[0].name == "get_weather" and uses[0].input == {"city": "Paris"}


def test_tool_use_streams_as_input_json_deltas(serve: ServeEnv, tool_model: str) -> None:
    with client(serve).messages.stream(
        model=tool_model,
        max_tokens=64,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        deltas = [
            event.delta.partial_json
            for event in stream
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    assert "".join(deltas).replace(" ", "") == TOOL_ARGUMENTS.replace(" ", "")
    uses = [block for block in final.content if block.type == "tool_use"]
    assert [(use.name, use.input) for use in uses] == [("get_weather", {"city": "Paris"})]
    assert final.stop_reason == "tool_use"


def test_a_tool_result_turn_is_sent_on(serve: ServeEnv) -> None:
    message = client(serve).messages.create(
        model="chat-open",
        max_tokens=64,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}],
            },
        ],
    )
    assert message.content[0].text == "echo: sunny"  # type: ignore[union-attr]


def test_count_tokens_counts_the_prompt(serve: ServeEnv) -> None:
    short = client(serve).messages.count_tokens(model="chat-open", messages=HELLO)
    longer = client(serve).messages.count_tokens(
        model="chat-open", system="a system prompt of several words", messages=HELLO, tools=[WEATHER_TOOL]
    )
    assert 0 < short.input_tokens < longer.input_tokens


# ---- credentials and errors in Anthropic's shape ---------------------------------------------------
def anthropic_error(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"}, body
    return dict(body["error"])


def test_credentials_in_x_api_key_or_authorization(serve: ServeEnv) -> None:
    body = {"model": "chat-open", "max_tokens": 16, "messages": HELLO}
    token = serve.token_values["alice"]
    for headers in ({"x-api-key": token}, {"Authorization": f"Bearer {token}"}):
        assert httpx.post(serve.base_url + "/v1/messages", json=body, headers=headers).status_code == 200
    refused = httpx.post(serve.base_url + "/v1/messages", json=body, headers={"x-api-key": "nope"})
    assert refused.status_code == 401
    assert anthropic_error(refused)["type"] == "authentication_error"


@pytest.mark.parametrize(
    ("body", "status", "kind", "names"),
    [
        (
            {"model": "chat-team-b", "max_tokens": 16, "messages": HELLO},
            404,
            "not_found_error",
            "chat-team-b",
        ),
        ({"model": "embed", "max_tokens": 16, "messages": HELLO}, 400, "invalid_request_error", "embedding"),
        ({"model": "chat-open", "messages": HELLO}, 400, "invalid_request_error", "max_tokens"),
        (
            {"model": "chat-open", "max_tokens": 16, "messages": HELLO, "api_base": "x"},
            400,
            "invalid_request_error",
            "api_base",
        ),
        (
            {"model": "chat-open", "max_tokens": 10**9, "messages": HELLO},
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            {"model": "broken-fail500", "max_tokens": 16, "messages": HELLO},
            502,
            "api_error",
            "broken-fail500",
        ),
    ],
)
def test_errors_are_in_anthropics_shape(
    serve: ServeEnv, body: dict[str, Any], status: int, kind: str, names: str
) -> None:
    response = httpx.post(
        serve.base_url + "/v1/messages", json=body, headers={"x-api-key": serve.token_values["alice"]}
    )
    assert response.status_code == status
    error = anthropic_error(response)
    assert error["type"] == kind and names in error["message"], error


def test_the_anthropic_client_raises_its_own_error_classes(serve: ServeEnv) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client(serve, "alice").messages.create(model="chat-team-b", max_tokens=16, messages=HELLO)
    with pytest.raises(anthropic.AuthenticationError):
        client(serve, "not-a-token").messages.create(model="chat-open", max_tokens=16, messages=HELLO)
    with pytest.raises(anthropic.NotFoundError):
        client(serve, "alice").messages.count_tokens(model="chat-team-b", messages=HELLO)
