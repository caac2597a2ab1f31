"""End to end: the serve API driven the way LISA's SDK (lisapy ``LisaLlm``) and its integration tests do.

``LisaStyleClient`` is this repository's own client code following lisapy's requests: the URL it
builds (``<base>/v2/serve/...``), the headers LISA's integration tests give it (the same credential
in ``Api-Key`` and in ``Authorization``, without ``Bearer``), its bodies, and how it reads the
answers (including its stream parser, which indexes ``choices[0]`` of every event, and its model
discovery, which trusts ``model_info.mode`` and otherwise falls back to names). Nothing of LISA's
code is copied. The tests share the module's local mode (``conftest.local_mode``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest

from local_mode.demo import EMBEDDING_MODEL_ID, TEXT_MODEL_ID
from tests.e2e.conftest import LocalMode
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-mode")]

needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed, so local mode cannot run text models "
    "(local_mode/install.sh builds it; make local and .ci/run run that script)",
)
TIMEOUT = 120.0
#: decision 1 in docs/architecture.md: serve replicas follow the registry (and tokens) within a second; allow noise.
LISTING_TIMEOUT = 5.0
#: lisapy's test helper skips these ``model_info.mode`` values, and names containing these parts.
NON_CHAT_MODES = frozenset({"embedding", "image_generation", "audio_speech", "audio_transcription", "rerank"})
NON_CHAT_NAME_PARTS = ("embed", "embedding", "rerank")


@dataclass
class Streamed:
    token: str
    finish_reason: str | None = None
    generated_tokens: int | None = None


class LisaStyleClient:
    """The serve API as lisapy's ``LisaLlm`` calls it (sync and async, like its two code paths)."""

    def __init__(self, serve_url: str, credential: str) -> None:
        base = serve_url.rstrip("/").removesuffix("/serve")
        assert base.endswith("/v2"), serve_url  # lisapy appends /v2 when missing, then /serve/...
        self.url = base
        self.headers = {"Api-Key": credential, "Authorization": credential}

    # ---- requests as lisapy builds them ---------------------------------------------------------
    @staticmethod
    def chat_body(prompt: str, model: str, *, stream: bool) -> dict[str, Any]:
        # FoundationModel(model_kwargs=ModelKwargs(max_new_tokens=20)): max_new_tokens -> max_tokens
        return {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
            "max_tokens": 20,
        }

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}/serve{path}", headers=self.headers, timeout=TIMEOUT)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.url}/serve{path}", headers=self.headers, json=body, timeout=TIMEOUT)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    async def apost(self, path: str, body: dict[str, Any]) -> Any:
        async with httpx.AsyncClient(headers=self.headers, timeout=TIMEOUT) as session:
            response = await session.post(f"{self.url}/serve{path}", json=body)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    # ---- answers as lisapy reads them -----------------------------------------------------------
    def health_liveliness(self) -> dict[str, Any]:
        result = self.get("/health/liveliness")
        return {"status": result} if isinstance(result, str) else result

    def textgen_model(self) -> str:
        """lisapy's model discovery: the first entry of /model/info whose mode is not a non-chat
        mode; without a mode, the first whose name does not look like an embedding model."""
        for entry in self.get("/model/info").get("data", []):
            mode = entry.get("model_info", {}).get("mode", "")
            if mode in NON_CHAT_MODES:
                continue
            if not mode and any(part in entry["model_name"].lower() for part in NON_CHAT_NAME_PARTS):
                continue
            return str(entry["model_name"])
        raise AssertionError("no textgen model found")

    @staticmethod
    def generated(output: dict[str, Any]) -> tuple[str, int, str]:
        choice = output.get("choices", [{}])[0] if output.get("choices") else {}
        usage = output.get("usage", {})
        return (
            choice.get("message", {}).get("content", "") or "",
            usage.get("completion_tokens", 0),
            choice.get("finish_reason", "stop"),
        )

    @staticmethod
    def streamed(text: str) -> Streamed | Literal["[DONE]"] | None:
        """One SSE line: a token (or the finishing one), ``[DONE]``, or ``None`` (nothing to yield)."""
        if not text.startswith("data:"):
            return None
        data = text[len("data:") :].strip()
        if data == "[DONE]":
            return "[DONE]"
        chunk = json.loads(data)
        choice = chunk.get("choices", [{}])[0]  # lisapy indexes every event's first choice
        usage = chunk.get("usage")
        token = choice.get("delta", {}).get("content", "")
        if choice.get("finish_reason"):
            return Streamed(
                token or "", choice["finish_reason"], usage.get("completion_tokens") if usage else None
            )
        return Streamed(token) if token else None

    def generate_stream(self, prompt: str, model: str) -> Iterator[Streamed]:
        body = self.chat_body(prompt, model, stream=True)
        with httpx.stream(
            "POST", f"{self.url}/serve/chat/completions", headers=self.headers, json=body, timeout=TIMEOUT
        ) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                item = self.streamed(line)
                if item == "[DONE]":
                    return
                if isinstance(item, Streamed):
                    yield item

    async def agenerate_stream(self, prompt: str, model: str) -> AsyncIterator[Streamed]:
        body = self.chat_body(prompt, model, stream=True)
        async with (
            httpx.AsyncClient(headers=self.headers, timeout=TIMEOUT) as session,
            session.stream("POST", f"{self.url}/serve/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200, await response.aread()
            async for line in response.aiter_lines():
                item = self.streamed(line.strip())
                if item == "[DONE]":
                    return
                if isinstance(item, Streamed):
                    yield item


@pytest.fixture(scope="module")
def lisa(local_mode: LocalMode) -> LisaStyleClient:
    """The client, once the serve app lists the demo models (it follows the registry within a second)."""
    client = LisaStyleClient(local_mode.serve_url, local_mode.admin_token)

    def listed() -> bool:
        response = httpx.get(f"{client.url}/serve/models", headers=client.headers, timeout=TIMEOUT)
        ids = (
            {model["id"] for model in response.json().get("data", [])}
            if response.status_code == 200
            else set()
        )
        return {TEXT_MODEL_ID, EMBEDDING_MODEL_ID} <= ids

    wait_for(listed, LISTING_TIMEOUT, "the serve app lists the demo models", interval=0.1)
    return client


def assert_streamed(chunks: list[Streamed]) -> None:
    assert [chunk.token for chunk in chunks if chunk.token], chunks
    assert [chunk for chunk in chunks if chunk.finish_reason], chunks


# ---- credentials and the LiteLLM routes -----------------------------------------------------------
def test_lisa_headers_list_models_and_answer_health(lisa: LisaStyleClient) -> None:
    models = lisa.get("/models")["data"]
    assert {TEXT_MODEL_ID, EMBEDDING_MODEL_ID} <= {model["id"] for model in models}
    health = lisa.get("/health")
    assert isinstance(health, dict)
    assert {TEXT_MODEL_ID, EMBEDDING_MODEL_ID} <= {
        endpoint["model"] for endpoint in health["healthy_endpoints"]
    }
    assert lisa.get("/health/readiness") == {"status": "healthy", "db": "connected"}
    assert lisa.health_liveliness() == {"status": "I'm alive!"}


def test_lisa_routes_refuse_a_wrong_credential(local_mode: LocalMode) -> None:
    wrong = LisaStyleClient(local_mode.serve_url, "lisa_not-a-token")
    for path in ("/models", "/health", "/health/readiness", "/health/liveliness", "/model/info"):
        response = httpx.get(f"{wrong.url}/serve{path}", headers=wrong.headers, timeout=TIMEOUT)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["type"] == "authentication_error"


def test_model_info_lets_lisas_discovery_pick_the_chat_model(lisa: LisaStyleClient) -> None:
    entries = {entry["model_name"]: entry for entry in lisa.get("/model/info")["data"]}
    assert entries[TEXT_MODEL_ID]["model_info"]["mode"] == "chat"
    assert entries[TEXT_MODEL_ID]["model_info"]["max_input_tokens"] == 2048  # the demo's MAX_MODEL_LEN
    assert entries[EMBEDDING_MODEL_ID]["model_info"]["mode"] == "embedding"
    assert all(set(entry["litellm_params"]) == {"model"} for entry in entries.values())
    # e5-small sorts first and its name does not look like an embedding model: only the mode saves it
    assert sorted(entries)[0] == EMBEDDING_MODEL_ID
    assert lisa.textgen_model() == TEXT_MODEL_ID


def test_embed_and_aembed(lisa: LisaStyleClient) -> None:
    body = {"model": EMBEDDING_MODEL_ID, "input": ["first", "second"]}  # lisapy always sends a list
    for output in (lisa.post("/embeddings", body), asyncio.run(lisa.apost("/embeddings", body))):
        vectors = [item["embedding"] for item in output["data"]]
        assert len(vectors) == 2 and all(isinstance(value, float) for value in vectors[0])


# ---- generation, as lisapy's generate / generate_stream / agenerate / agenerate_stream --------------
@needs_llama_cpp
def test_generate(lisa: LisaStyleClient) -> None:
    model = lisa.textgen_model()
    text, tokens, finish = lisa.generated(
        lisa.post("/chat/completions", lisa.chat_body("Say hello in one word.", model, stream=False))
    )
    assert text and tokens > 0 and finish in ("stop", "length")


@needs_llama_cpp
def test_generate_stream(lisa: LisaStyleClient) -> None:
    assert_streamed(
        list(lisa.generate_stream("Explain what an LLM is in one sentence.", lisa.textgen_model()))
    )


@needs_llama_cpp
def test_agenerate_and_agenerate_stream(lisa: LisaStyleClient) -> None:
    model = lisa.textgen_model()

    async def both() -> tuple[Any, list[Streamed]]:
        output = await lisa.apost(
            "/chat/completions", lisa.chat_body("Say goodbye in one word.", model, stream=False)
        )
        return output, [chunk async for chunk in lisa.agenerate_stream("What is Python?", model)]

    output, chunks = asyncio.run(both())
    text, tokens, finish = lisa.generated(output)
    assert text and tokens > 0 and finish in ("stop", "length")
    assert_streamed(chunks)


@needs_llama_cpp
def test_complete_and_acomplete(lisa: LisaStyleClient) -> None:
    """lisapy's ``complete`` / ``acomplete``: the legacy completions route, read as CompletionResponse."""
    body = {"model": lisa.textgen_model(), "prompt": "Once upon a time", "max_tokens": 20, "temperature": 0.0}
    for output in (lisa.post("/completions", body), asyncio.run(lisa.apost("/completions", body))):
        assert isinstance(output["id"], str) and output["id"]
        assert output["choices"] and isinstance(output["choices"][0]["text"], str)
        assert output["choices"][0]["text"]
        assert isinstance(output.get("usage", {}), dict)
