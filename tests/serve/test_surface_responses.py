"""OpenAI Responses (``/v2/serve/responses``, stateless) with the official ``openai`` client, and
tool-call deltas through ``/chat/completions``, against the stand-in backend
(``tests/support/fake_backend.py``: ``echo`` and ``tooler``, not models)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.serve.conftest import ServeEnv
from tests.support.fake_backend import TOOL_ARGUMENTS


def test_response_is_answered_under_the_lisa_model_id(serve: ServeEnv) -> None:
    response = serve.client("alice").responses.create(model="chat-open", input="hello world")
    assert response.object == "response"
    assert response.model == "chat-open"
    assert response.output_text == "echo: hello world"
    assert response.usage is not None and response.usage.output_tokens > 0


def test_instructions_and_message_input_are_accepted(serve: ServeEnv) -> None:
    response = serve.client().responses.create(
        model="chat-open",
        instructions="be brief",
        input=[{"role": "user", "content": "as a list"}],
        max_output_tokens=32,
        store=False,
    )
    assert response.output_text == "echo: as a list"


def test_response_streams_as_typed_events(serve: ServeEnv) -> None:
    stream = serve.client().responses.create(model="chat-open", input="hello world", stream=True)
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "echo: hello world"
    completed = events[-1]
    assert completed.type == "response.completed" and completed.response.model == "chat-open"


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"store": True}, "store"), ({"previous_response_id": "resp_1"}, "previous_response_id")],
)
def test_stored_state_is_refused_naming_the_field(serve: ServeEnv, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        serve.client().responses.create(model="chat-open", input="hi", **extra)
    assert isinstance(raised.value.body, dict) and raised.value.body["param"] == param


def test_responses_errors_keep_openais_shape(serve: ServeEnv) -> None:
    with pytest.raises(openai.NotFoundError):
        serve.client("alice").responses.create(model="chat-team-b", input="hi")
    with pytest.raises(openai.BadRequestError) as raised:
        serve.client().responses.create(model="embed", input="hi")
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "model_type_mismatch"
    failed = httpx.post(
        serve.base_url + "/responses",
        json={"model": "broken-fail500", "input": "hi"},
        headers=serve.headers(),
    )
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "backend_error"


TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def test_streamed_tool_call_deltas_pass_through_chat_completions_intact(serve: ServeEnv) -> None:
    serve.add_model("tool-chat", "tooler")
    stream = serve.client().chat.completions.create(
        model="tool-chat", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS, stream=True
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                assert call.index == 0
                name += (call.function.name or "") if call.function else ""
                arguments += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert (name, arguments, finish) == ("get_weather", TOOL_ARGUMENTS, "tool_calls")
