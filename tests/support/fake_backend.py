"""A stand-in for a model container: a small, real OpenAI-compatible HTTP server for tests.

It is NOT a model. It answers ``/v1/chat/completions`` (streaming and not), ``/v1/completions``,
``/v1/embeddings``, ``/v1/images/generations`` (``n`` stand-in images: ``IMAGE_BYTES`` plus the
prompt) and ``/v1/models`` deterministically, and misbehaves on purpose depending on
the model name the request carries (the part after ``openai/`` in a deployment's ``litellmParams``):

=============  ==================================================================================
model name     behaviour
=============  ==================================================================================
``fail500``    answers 500 with an error body
``bad400``     answers 400 (as vLLM does for a prompt over the context window)
``fail503``    answers 503 (as a load balancer without a healthy target)
``hang``       never answers (sleeps for ``HANG_SECONDS``)
``cut``        streams two chunks, then drops the connection without ending the body
``slow``       streams ``SLOW_CHUNKS`` chunks, ``SLOW_DELAY`` seconds apart
``tooler``     with ``tools`` in a chat request: calls the first tool with ``TOOL_ARGUMENTS``
               (streamed as a tool-call delta with the name, then the arguments in two pieces)
anything else  echoes: the reply is ``"echo: <last message>"``; streams one word per chunk
=============  ==================================================================================

Every request is counted per model name in ``FakeBackend.calls`` (to check that retries are off)
and its ``Authorization`` header kept in ``FakeBackend.authorization``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

HANG_SECONDS = 60.0
SLOW_CHUNKS = 8
SLOW_DELAY = 0.25
EMBEDDING_DIMENSIONS = 8
TOOL_ARGUMENTS = '{"city": "Paris"}'
#: What every stand-in image starts with (a PNG signature; the rest is the prompt, not an image).
IMAGE_BYTES = b"\x89PNG\r\n\x1a\n"


class BackendDropped(Exception):
    """Raised inside a streaming body to make the server drop the connection mid-way."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "BadRequestError", "code": status}}, status)


def _usage(prompt: str, completion: str) -> dict[str, int]:
    prompt_tokens, completion_tokens = len(prompt.split()), len(completion.split())
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _last_text(messages: list[dict[str, Any]]) -> str:
    content = messages[-1].get("content", "") if messages else ""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


class FakeBackend:
    """The ASGI app (``self.app``) plus what it has seen."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        #: the Authorization header of the last request, per model name (to check provider keys)
        self.authorization: dict[str, str] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/images/generations", self.images, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
            ]
        )

    async def _misbehave(self, model: str, request: Request) -> Response | None:
        self.calls[model] += 1
        self.authorization[model] = request.headers.get("authorization", "")
        if model == "fail500":
            return _error(500, "the backend broke")
        if model == "bad400":
            return _error(400, "This model's maximum context length is 16 tokens")
        if model == "fail503":
            return _error(503, "no healthy upstream")
        if model == "hang":
            await asyncio.sleep(HANG_SECONDS)
            return _error(500, "hung")
        return None

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", ""))
        if (early := await self._misbehave(model, request)) is not None:
            return early
        reply = "echo: " + _last_text(body.get("messages", []))
        created, ident = int(time.time()), f"chatcmpl-{model}"
        tool = body["tools"][0]["function"]["name"] if model == "tooler" and body.get("tools") else None
        if tool is not None and not body.get("stream"):
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": tool, "arguments": TOOL_ARGUMENTS},
            }
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                            "finish_reason": "tool_calls",
                        }
                    ],
                    "usage": _usage(_last_text(body.get("messages", [])), TOOL_ARGUMENTS),
                }
            )
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": _usage(_last_text(body.get("messages", [])), reply),
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(payload)}\n\n"

        async def tool_events(name: str) -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": None})
            head = {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            half = len(TOOL_ARGUMENTS) // 2
            for piece in (TOOL_ARGUMENTS[:half], TOOL_ARGUMENTS[half:]):
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            yield chunk({}, "tool_calls")
            yield "data: [DONE]\n\n"

        if tool is not None:
            return StreamingResponse(tool_events(tool), media_type="text/event-stream")

        async def events() -> AsyncIterator[str]:
            words = reply.split(" ")
            if model == "slow":
                words = [f"w{i}" for i in range(SLOW_CHUNKS)]
            yield chunk({"role": "assistant", "content": ""})
            for index, word in enumerate(words):
                if model == "cut" and index == 2:
                    raise BackendDropped("dropping the stream on purpose")
                if model == "slow":
                    await asyncio.sleep(SLOW_DELAY)
                yield chunk({"content": word if index == 0 else " " + word})
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", ""))
        if (early := await self._misbehave(model, request)) is not None:
            return early
        prompt = body.get("prompt", "")
        prompt = prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
        text = "echo: " + prompt
        if body.get("stream"):

            async def events() -> AsyncIterator[str]:
                for index, word in enumerate(text.split(" ")):
                    piece = {
                        "id": f"cmpl-{model}",
                        "object": "text_completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {"index": 0, "text": word if index == 0 else " " + word, "finish_reason": None}
                        ],
                    }
                    yield f"data: {json.dumps(piece)}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": f"cmpl-{model}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                "usage": _usage(prompt, text),
            }
        )

    async def embeddings(self, request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", ""))
        if (early := await self._misbehave(model, request)) is not None:
            return early
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else [str(item) for item in inputs]
        data = [
            {
                "object": "embedding",
                "index": index,
                "embedding": [float((len(text) + d) % 7) / 7.0 for d in range(EMBEDDING_DIMENSIONS)],
            }
            for index, text in enumerate(texts)
        ]
        tokens = sum(len(text.split()) for text in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def images(self, request: Request) -> Response:
        """``n`` images, each the bytes ``IMAGE_BYTES`` plus the prompt, in base64."""
        body = await request.json()
        model = str(body.get("model", ""))
        if (early := await self._misbehave(model, request)) is not None:
            return early
        item = {"b64_json": base64.b64encode(IMAGE_BYTES + str(body.get("prompt", "")).encode()).decode()}
        return JSONResponse({"created": int(time.time()), "data": [item] * int(body.get("n") or 1)})

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})
