"""A stand-in for a model container: a small, real OpenAI-compatible HTTP server for tests.

It is NOT a model. It answers ``/v1/chat/completions`` (streaming and not), ``/v1/completions``,
``/v1/embeddings``, ``/v1/images/generations`` (``n`` stand-in images: ``IMAGE_BYTES`` plus the
prompt), ``/v1/audio/speech`` (a real WAV or FLAC file: a tone ``speech_seconds(input)`` long),
``/v1/audio/transcriptions`` (multipart; the "transcript" is ``heard(filename, bytes)``: it proves
the upload arrived intact), ``/v1/rerank`` (vLLM's and Cohere's shape) and ``/rerank`` (TEI's:
``texts``, a bare list of scores, ``top_n`` ignored), both scoring ``rerank_score`` (the share of
the query's words in the document), and ``/v1/models`` deterministically, and misbehaves on purpose depending on
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
import hashlib
import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import soundfile
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

HANG_SECONDS = 60.0
SLOW_CHUNKS = 8
SLOW_DELAY = 0.25
EMBEDDING_DIMENSIONS = 8
TOOL_ARGUMENTS = '{"city": "Paris"}'
#: What every stand-in image starts with (a PNG signature; the rest is the prompt, not an image).
IMAGE_BYTES = b"\x89PNG\r\n\x1a\n"
#: The stand-in speech: a tone at this sample rate, ``SPEECH_SECONDS_PER_CHARACTER`` per input character.
SPEECH_SAMPLE_RATE = 8000
SPEECH_SECONDS_PER_CHARACTER = 0.01


def speech_seconds(text: str) -> float:
    """How long the stand-in speech of ``text`` lasts."""
    return round(len(text) * SPEECH_SECONDS_PER_CHARACTER, 6)


def speech_audio(text: str, audio_format: str = "WAV") -> bytes:
    """A real audio file (``WAV`` or ``FLAC``): a 440 Hz tone ``speech_seconds(text)`` long."""
    frames = int(speech_seconds(text) * SPEECH_SAMPLE_RATE)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(frames) / SPEECH_SAMPLE_RATE)
    out = io.BytesIO()
    soundfile.write(out, tone, SPEECH_SAMPLE_RATE, format=audio_format, subtype="PCM_16")
    return out.getvalue()


def heard(filename: str, data: bytes) -> str:
    """The stand-in transcript of an upload: its name, size, digest and (audio) duration."""
    try:
        info = soundfile.info(io.BytesIO(data))
        duration = f", {info.frames / info.samplerate:g} s"
    except RuntimeError:  # soundfile.LibsndfileError: not audio it can read
        duration = ""
    return f"heard {filename}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}{duration}"


def transcription_usage(data: bytes, text: str) -> dict[str, Any]:
    """The usage the stand-in reports for a transcription (OpenAI's token usage shape)."""
    input_tokens, output_tokens = len(data) // 1000 + 1, len(text.split())
    return {
        "type": "tokens",
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def rerank_score(query: str, document: str) -> float:
    """The share of the query's words that occur in the document (case-insensitive)."""
    words = set(query.lower().split())
    return round(len(words & set(document.lower().split())) / max(1, len(words)), 6)


def _document_text(document: Any) -> str:
    return document if isinstance(document, str) else str(document.get("text", ""))


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
                Route("/v1/audio/speech", self.speech, methods=["POST"]),
                Route("/v1/audio/transcriptions", self.transcriptions, methods=["POST"]),
                Route("/v1/rerank", self.rerank, methods=["POST"]),
                Route("/rerank", self.tei_rerank, methods=["POST"]),
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

    async def speech(self, request: Request) -> Response:
        """``speech_audio(input)``: FLAC when asked for, WAV otherwise."""
        body = await request.json()
        model = str(body.get("model", ""))
        if (early := await self._misbehave(model, request)) is not None:
            return early
        flac = body.get("response_format") == "flac"
        audio = speech_audio(str(body.get("input", "")), "FLAC" if flac else "WAV")
        return Response(audio, media_type="audio/flac" if flac else "audio/wav")

    async def transcriptions(self, request: Request) -> Response:
        """``heard(filename, bytes)`` of the upload, in the requested format."""
        async with request.form() as form:
            model = str(form.get("model", ""))
            if (early := await self._misbehave(model, request)) is not None:
                return early
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                return _error(400, "file is required")
            data = await upload.read()
            text = heard(upload.filename or "", data)
            fmt = form.get("response_format") or "json"
            language = str(form.get("language") or "en")
        if fmt in ("text", "srt", "vtt"):
            return PlainTextResponse(text)
        if fmt == "verbose_json":
            return JSONResponse({"text": text, "language": language, "duration": 0.0, "segments": []})
        return JSONResponse({"text": text, "usage": transcription_usage(data, text)})

    async def rerank(self, request: Request) -> Response:
        """vLLM's (and Cohere's) rerank: ``top_n`` applied, documents always returned."""
        body = await request.json()
        model = str(body.get("model", ""))
        if (early := await self._misbehave(model, request)) is not None:
            return early
        query, documents = str(body.get("query", "")), list(body.get("documents") or [])
        results: list[dict[str, Any]] = [
            {
                "index": index,
                "relevance_score": rerank_score(query, _document_text(document)),
                "document": {"text": _document_text(document)},
            }
            for index, document in enumerate(documents)
        ]
        results.sort(key=lambda item: -float(item["relevance_score"]))
        tokens = sum(len(_document_text(document).split()) for document in documents) + len(query.split())
        return JSONResponse(
            {
                "id": f"rerank-{model}",
                "model": model,
                "results": results[: body.get("top_n") or len(results)],
                "usage": {"total_tokens": tokens},
            }
        )

    async def tei_rerank(self, request: Request) -> Response:
        """TEI's rerank: ``texts`` in, a bare list by score out, ``top_n`` ignored, no model name."""
        body = await request.json()
        if (early := await self._misbehave("tei-rerank", request)) is not None:
            return early
        query, texts = str(body.get("query", "")), [str(text) for text in body.get("texts") or []]
        ranked = [
            {
                "index": index,
                "score": rerank_score(query, text),
                **({"text": text} if body.get("return_text") else {}),
            }
            for index, text in enumerate(texts)
        ]
        return JSONResponse(sorted(ranked, key=lambda item: -float(item["score"])))

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": []})
