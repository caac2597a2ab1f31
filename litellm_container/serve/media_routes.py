"""Speech, transcription and rerank under ``/v2/serve``, on the same Router as every route.

* ``POST /audio/speech`` (OpenAI's, JSON) for ``tts`` models: the answer is the audio itself, with
  the backend's content type (or the one of ``response_format``). LiteLLM reads the backend's whole
  answer before it returns, so the bytes are sent in one piece, not streamed.
* ``POST /audio/transcriptions`` (OpenAI's, ``multipart/form-data``) for ``stt`` models: the upload
  is limited by ``LISA_SERVE_MAX_AUDIO_BYTES`` while it streams into the parser
  (``serve.bodies.parse_form``); ``text``, ``srt`` and ``vtt`` answers are plain text, the others JSON.
* ``POST /rerank`` (Cohere's, as LiteLLM takes it) for ``rerank`` models: documents (strings, or
  objects with a ``text``) go to the backend as plain texts; the answer has the results by
  relevance, at most ``top_n``, with each document's text exactly when ``return_documents`` is true,
  whatever the backend does with those two (TEI ignores ``top_n``, vLLM always returns documents).

Each request takes the steps of ``serve.surface_routes.admit`` (authentication, body limit and
field check, visibility, start on request, model type, metering and limits, usage report) and the
model's fallbacks. Usage: a speech request counts its input's tokens (LiteLLM's tokenizer for the
model: an estimate for self-hosted models), transcription and rerank what the backend reports.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from serve._litellm import litellm
from serve.bodies import Endpoint, parse_form
from serve.config import ServeConfig
from serve.errors import ServeError
from serve.metering import Metered
from serve.openapi import ERROR_SCHEMA
from serve.surface_routes import Surface, admit, count, finish, json_answer, route_doc

#: The audio content type of each speech ``response_format`` (OpenAI's).
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
#: Transcription formats answered as plain text (OpenAI's).
TEXT_FORMATS = ("text", "srt", "vtt")
AUDIO_LIMIT = "LISA_SERVE_MAX_AUDIO_BYTES"


def _failed(error: ServeError, metered: Metered | None) -> Response:
    response = error.response()
    finish(metered, error.status, response)
    return response


# ---- speech ---------------------------------------------------------------------------------------
def _audio_type(result: Any, response_format: str | None) -> str:
    """The backend's audio content type, else the one of the requested format (OpenAI's default mp3)."""
    backend = getattr(getattr(result, "response", None), "headers", {}).get("content-type", "")
    if backend.startswith("audio/"):
        return str(backend)
    return AUDIO_TYPES[response_format or "mp3"]


async def create_speech(surface: Surface, request: Request) -> Response:
    metered: Metered | None = None
    try:
        admitted = await admit(surface, request, Endpoint.SPEECH)
        metered, router, body = admitted.metered, admitted.router, admitted.body
        answer = await admitted.fallbacks.call(
            body, lambda model_id, kwargs: router.aspeech(model=model_id, **kwargs)
        )
        if metered is not None:  # the backend's usage, else the input's tokens
            provider_model = str(admitted.snapshot.deployments[answer.model_id]["model"])
            metered.usage(
                getattr(answer.result, "usage", None)
                or {"prompt_tokens": litellm.token_counter(model=provider_model, text=body["input"])}
            )
        audio = answer.result.content
        media_type = _audio_type(answer.result, body.get("response_format"))
        response = Response(audio, media_type=media_type, headers=answer.headers())
        finish(metered, 200, response)
        return response
    except ServeError as error:
        return _failed(error, metered)


# ---- transcriptions -------------------------------------------------------------------------------
async def _transcription_form(request: Request, config: ServeConfig) -> dict[str, Any]:
    body = await parse_form(request, Endpoint.TRANSCRIPTIONS, config.max_audio_bytes, AUDIO_LIMIT)
    granularities = body.pop("timestamp_granularities[]", None)
    if granularities is not None:
        body["timestamp_granularities"] = granularities
    return body


async def create_transcription(surface: Surface, request: Request) -> Response:
    metered: Metered | None = None
    try:
        admitted = await admit(surface, request, Endpoint.TRANSCRIPTIONS, read=_transcription_form)
        metered, router, body = admitted.metered, admitted.router, admitted.body
        answer = await admitted.fallbacks.call(
            body, lambda model_id, kwargs: router.atranscription(model=model_id, **kwargs)
        )
        result = answer.result
        count(metered, getattr(result, "usage", None))
        fmt = body.get("response_format") or "json"
        if fmt in TEXT_FORMATS:
            response = Response(str(result.text), media_type="text/plain", headers=answer.headers())
            finish(metered, 200, response)
            return response
        payload = result.model_dump(exclude_none=True)
        if fmt == "json":  # OpenAI's json answer: the text (and usage); verbose_json has it all
            payload = {key: value for key, value in payload.items() if key in ("text", "usage")}
        return json_answer(json.dumps(payload).encode(), answer, metered)
    except ServeError as error:
        return _failed(error, metered)


# ---- rerank ---------------------------------------------------------------------------------------
def _invalid_result(item: Any, documents: int) -> bool:
    """Whether a backend's rerank result names no document of the request or has no finite score
    (LiteLLM's ``RerankResponse`` has made both numbers)."""
    return not 0 <= item["index"] < documents or not math.isfinite(item["relevance_score"])


def rerank_results(result: Any, body: dict[str, Any], model_id: str) -> list[dict[str, Any]]:
    """The results by relevance, at most ``top_n``, each with its document's text exactly when
    ``return_documents`` is true (the request's: every backend is sent plain texts). A result that
    names no document of the request, or has no finite score, is the backend's fault: 502."""
    if any(_invalid_result(item, len(body["documents"])) for item in result.results or []):
        raise ServeError(
            502,
            f"The backend of model '{model_id}' answered an invalid rerank result (a document index "
            f"outside 0-{len(body['documents']) - 1} or no finite relevance_score).",
            type="backend_error",
            code="backend_error",
        )
    results = sorted(result.results or [], key=lambda item: item["relevance_score"], reverse=True)
    if body.get("top_n") is not None:
        results = results[: body["top_n"]]
    shaped = []
    for item in results:
        entry = {"index": item["index"], "relevance_score": item["relevance_score"]}
        if body.get("return_documents"):
            entry["document"] = {"text": body["documents"][item["index"]]}
        shaped.append(entry)
    return shaped


async def create_rerank(surface: Surface, request: Request) -> Response:
    metered: Metered | None = None
    try:
        admitted = await admit(surface, request, Endpoint.RERANK)
        metered, router, body = admitted.metered, admitted.router, admitted.body
        # Plain texts for every provider (TEI takes nothing else; an object's other keys are unused).
        body["documents"] = [doc if isinstance(doc, str) else doc["text"] for doc in body["documents"]]
        answer = await admitted.fallbacks.call(
            body, lambda model_id, kwargs: router.arerank(model=model_id, **kwargs)
        )
        meta = answer.result.meta or {}
        count(metered, meta.get("tokens"))
        payload: dict[str, Any] = {
            "id": answer.result.id,
            "results": rerank_results(answer.result, body, answer.model_id),
        }
        if meta:
            payload["meta"] = meta
        return json_answer(json.dumps(payload).encode(), answer, metered)
    except ServeError as error:
        return _failed(error, metered)


# ---- their OpenAPI description ----------------------------------------------------------------------
_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
_TRANSCRIPTION: dict[str, Any] = {
    "type": "object",
    "required": ["text"],
    "properties": {
        "text": {"type": "string"},
        "usage": {"type": "object"},
        "language": {"type": "string"},
        "duration": {"type": "number"},
        "segments": {"type": "array"},
        "words": {"type": "array"},
    },
}
_RERANK: dict[str, Any] = {
    "type": "object",
    "required": ["id", "results"],
    "properties": {
        "id": {"type": "string"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "relevance_score"],
                "properties": {
                    "index": {"type": "integer"},
                    "relevance_score": {"type": "number"},
                    "document": {"type": "object", "properties": {"text": {"type": "string"}}},
                },
            },
        },
        "meta": {"type": "object"},
    },
}
SPEECH_ROUTE = route_doc(
    Endpoint.SPEECH,
    None,
    ERROR_SCHEMA,
    False,
    answers={media: {"schema": _BINARY} for media in AUDIO_TYPES.values()},
    example={"model": "tts-1", "input": "Hello from LISA.", "voice": "alloy", "response_format": "wav"},
)
TRANSCRIPTION_ROUTE = route_doc(
    Endpoint.TRANSCRIPTIONS,
    _TRANSCRIPTION,
    ERROR_SCHEMA,
    False,
    answers={"text/plain": {"schema": {"type": "string"}}},
    request_type="multipart/form-data",
    example={"model": "whisper", "file": "(audio bytes)", "language": "en"},
    body_limit=AUDIO_LIMIT,
)
RERANK_ROUTE = route_doc(
    Endpoint.RERANK,
    _RERANK,
    ERROR_SCHEMA,
    False,
    example={
        "model": "bge-reranker",
        "query": "What is the capital of France?",
        "documents": ["Paris is the capital of France.", "Berlin is in Germany."],
        "top_n": 1,
    },
)


def add_media_routes(app: FastAPI, prefix: str, surface: Surface) -> None:
    """Adds ``/audio/speech``, ``/audio/transcriptions`` and ``/rerank`` under ``prefix``."""

    @app.post(prefix + "/audio/speech", **SPEECH_ROUTE)
    async def speech(request: Request) -> Response:
        return await create_speech(surface, request)

    @app.post(prefix + "/audio/transcriptions", **TRANSCRIPTION_ROUTE)
    async def transcriptions(request: Request) -> Response:
        return await create_transcription(surface, request)

    @app.post(prefix + "/rerank", **RERANK_ROUTE)
    async def rerank(request: Request) -> Response:
        return await create_rerank(surface, request)
