"""Anthropic Messages and OpenAI Responses on local mode's real text model (SmolLM2-135M on
llama.cpp), with the official ``anthropic`` and ``openai`` clients, as the README shows them."""

from __future__ import annotations

import importlib.util
from typing import Any

import anthropic
import httpx
import pytest
from openai import OpenAI

from local_mode.demo import TEXT_MODEL_ID
from tests.e2e.conftest import LocalMode
from tests.support.waiting import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("local-mode"),
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed, so local mode cannot run text models (local_mode/install.sh)",
    ),
]
TIMEOUT = 120.0
HI: Any = [{"role": "user", "content": "Name one colour."}]


@pytest.fixture(scope="module")
def serving(local_mode: LocalMode) -> LocalMode:
    def listed() -> bool:
        response = httpx.get(
            local_mode.serve_url + "/models",
            headers={"Authorization": f"Bearer {local_mode.admin_token}"},
            timeout=TIMEOUT,
        )
        return response.status_code == 200 and TEXT_MODEL_ID in {m["id"] for m in response.json()["data"]}

    wait_for(listed, TIMEOUT, "the serve app lists the text model", interval=0.2)
    return local_mode


def test_messages_on_the_local_text_model(serving: LocalMode) -> None:
    client = anthropic.Anthropic(
        base_url=serving.serve_url, api_key=serving.admin_token, max_retries=0, timeout=TIMEOUT
    )
    message = client.messages.create(model=TEXT_MODEL_ID, max_tokens=12, messages=HI)
    assert message.model == TEXT_MODEL_ID
    assert message.content and message.content[0].type == "text" and message.content[0].text.strip()
    with client.messages.stream(model=TEXT_MODEL_ID, max_tokens=12, messages=HI) as stream:
        pieces = [text for text in stream.text_stream if text]
    assert len(pieces) > 1, pieces  # really streamed
    assert client.messages.count_tokens(model=TEXT_MODEL_ID, messages=HI).input_tokens > 0


def test_responses_on_the_local_text_model(serving: LocalMode) -> None:
    client = OpenAI(base_url=serving.serve_url, api_key=serving.admin_token, max_retries=0, timeout=TIMEOUT)
    response = client.responses.create(model=TEXT_MODEL_ID, input="Name one colour.", max_output_tokens=12)
    assert response.model == TEXT_MODEL_ID and response.output_text.strip()
    deltas = [
        event.delta
        for event in client.responses.create(
            model=TEXT_MODEL_ID, input="Name one colour.", max_output_tokens=12, stream=True
        )
        if event.type == "response.output_text.delta"
    ]
    assert len(deltas) > 1 and "".join(deltas).strip()
