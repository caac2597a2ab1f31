"""Anthropic Messages, OpenAI Responses and Images under ``/v2/serve``, on the same Router as every route.

* ``POST /v1/messages`` (streaming and not, tool use blocks included) and
  ``POST /v1/messages/count_tokens``, so that ``ANTHROPIC_BASE_URL=<serve>/v2/serve`` works for
  Claude Code and the Anthropic client. LiteLLM translates to each textgen model's own API (chat
  completions for every OpenAI-compatible backend: ``serve._litellm``). Errors are in Anthropic's
  shape (``serve.anthropic_errors``). ``count_tokens`` is counted locally with LiteLLM's tokenizer
  for the model (an estimate for self-hosted models: no backend is called).
* ``POST /responses`` (streaming and not), stateless: LiteLLM bridges it to chat completions, no
  response is stored, ``store`` must be false and ``previous_response_id`` is refused.
* ``POST /images/generations`` for ``imagegen`` models (OpenAI's Images API).

Each request takes the same steps as ``/chat/completions`` (``serve.app``): authentication, body
limit and field check (``serve.bodies``), the registry snapshot (invisible models are 404, a stopped
``startOnRequest`` model is started), the model type, metering and limits, the usage report, and the
model's fallbacks (``serve.fallback``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from lisa_domain.auth import Principal
from lisa_domain.schema import ModelType
from serve._litellm import ModelRouter, litellm
from serve.activity import UsageReporter
from serve.anthropic_errors import ANTHROPIC_ERROR_SCHEMA, anthropic_error_event, anthropic_response
from serve.auth import ServeAuthenticator
from serve.bodies import Endpoint, parse, read_body
from serve.config import ServeConfig
from serve.errors import ServeError, backend_error, bad_request, model_not_found
from serve.fallback import Answer, Fallbacks, Opened
from serve.follower import Snapshot
from serve.limits import UsageGate
from serve.metering import Meter, Metered
from serve.openapi import ANSWER_HEADERS, AUTH_ERRORS, ERROR_SCHEMA, SECURITY, SSE_EVENT, request_schema

_JSON = "application/json"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
#: The model type each route serves (a model of another type is 400 ``model_type_mismatch``).
MODEL_TYPES: dict[Endpoint, ModelType] = {
    Endpoint.MESSAGES: ModelType.TEXTGEN,
    Endpoint.COUNT_TOKENS: ModelType.TEXTGEN,
    Endpoint.RESPONSES: ModelType.TEXTGEN,
    Endpoint.IMAGES: ModelType.IMAGEGEN,
    Endpoint.SPEECH: ModelType.TTS,
    Endpoint.TRANSCRIPTIONS: ModelType.STT,
    Endpoint.RERANK: ModelType.RERANK,
}
#: Fields accepted for compatibility and not passed to LiteLLM (it reads ``metadata`` as its own).
_DROPPED = ("metadata", "store")

#: Asks for a stopped ``startOnRequest`` model's start (``serve.app._start_on_request``).
StartOnRequest = Callable[[Snapshot, Principal, str], Awaitable[None]]
#: Reads and checks a request's body (default: a JSON body, ``serve.bodies.parse``).
BodyReader = Callable[[Request, ServeConfig], Awaitable[dict[str, Any]]]


async def json_body(request: Request, config: ServeConfig, endpoint: Endpoint) -> dict[str, Any]:
    return parse(await read_body(request, config.max_body_bytes), endpoint, config.request_limits)


@dataclass(frozen=True)
class Surface:
    """What the routes use of the app's services."""

    auth: ServeAuthenticator
    config: ServeConfig
    snapshot: Callable[[], Snapshot]
    start_on_request: StartOnRequest | None = None
    usage: UsageReporter | None = None
    meter: Meter | None = None
    gate: UsageGate | None = None


@dataclass
class Admitted:
    """A checked request: its body (without ``model``), model, snapshot, metering and fallbacks."""

    body: dict[str, Any]
    model_id: str
    snapshot: Snapshot
    router: ModelRouter
    metered: Metered | None
    fallbacks: Fallbacks


async def admit(
    surface: Surface,
    request: Request,
    endpoint: Endpoint,
    *,
    backend_call: bool = True,
    read: BodyReader | None = None,
) -> Admitted:
    """The steps every inference route takes before calling the Router (see the module docstring)."""
    started = time.perf_counter()
    principal = await surface.auth.principal(request.headers)
    config = surface.config
    body = await (read(request, config) if read is not None else json_body(request, config, endpoint))
    current = surface.snapshot()
    model_id: str = body.pop("model")
    entry = current.models.get(model_id)
    if entry is None and surface.start_on_request is not None:
        await surface.start_on_request(current, principal, model_id)
    if entry is None or current.router is None or not principal.can_use(entry.allowed_groups):
        raise model_not_found(model_id)
    if entry.model_type is not MODEL_TYPES[endpoint]:
        raise bad_request(
            f"The model '{model_id}' is a {entry.model_type.value} model; /{endpoint.value} "
            f"needs a {MODEL_TYPES[endpoint].value} model.",
            param="model",
            code="model_type_mismatch",
        )
    for name in _DROPPED:
        body.pop(name, None)
    metered = None
    if backend_call and surface.meter is not None:
        metered = Metered(surface.meter, surface.gate, principal, model_id, started, endpoint.value)
        await metered.admit()
    if backend_call and surface.usage is not None:
        surface.usage.used(model_id)
    fallbacks = Fallbacks.of(current, principal, model_id, metered=metered, usage=surface.usage)
    return Admitted(body, model_id, current, current.router, metered, fallbacks)


def finish(metered: Metered | None, status: int, response: Response | None = None) -> None:
    if metered is not None:
        metered.finish(status, response)


def count(metered: Metered | None, usage: Any) -> None:
    """Anthropic's and the Responses API's usage (``input_tokens``/``output_tokens``) to the meter."""
    if metered is None or usage is None:
        return
    read = usage.get if isinstance(usage, dict) else lambda name: getattr(usage, name, None)
    metered.usage({"prompt_tokens": read("input_tokens"), "completion_tokens": read("output_tokens")})


def json_answer(payload: bytes, answer: Answer[Any], metered: Metered | None) -> Response:
    """A whole answer, naming the model that gave it (``serve.fallback``); recorded as a 200."""
    response = Response(payload, media_type=_JSON, headers=answer.headers())
    finish(metered, 200, response)
    return response


def _sse_response(
    answer: Answer[Opened],
    *,
    encode: Callable[[Any], bytes],
    failed: Callable[[ServeError], bytes],
    metered: Metered | None,
) -> Response:
    """The stream as server-sent events; a failure after the first event ends it with ``failed``."""
    opened, model_id = answer.result, answer.model_id

    async def events() -> AsyncIterator[bytes]:
        try:
            if opened.first is not None:
                yield encode(opened.first)
                async for item in opened.items:
                    yield encode(item)
            finish(metered, 200)
        except Exception as error:
            failure = backend_error(error, model_id)
            finish(metered, failure.status)
            yield failed(failure)
        finally:
            finish(metered, 499)  # the client went away (no-op after a finish above)
            await opened.close()

    headers = _SSE_HEADERS | answer.headers() | (metered.headers() if metered is not None else {})
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


# ---- Anthropic Messages ---------------------------------------------------------------------------
def _anthropic_frame(frame: bytes, model_id: str, metered: Metered | None) -> bytes:
    """One event of LiteLLM's Anthropic stream: the model named by its LISA id, usage counted."""
    head, separator, data = frame.partition(b"data: ")
    if not separator or not (b"message_start" in head or b"message_delta" in head):
        return frame
    event = json.loads(data)
    if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
        event["message"]["model"] = model_id
    elif event.get("type") == "message_delta":
        count(metered, event.get("usage"))
    return head + separator + json.dumps(event).encode() + b"\n\n"


def _anthropic_message(result: Any, model_id: str) -> dict[str, Any]:
    message = dict(result) if isinstance(result, dict) else result.model_dump(exclude_none=True)
    message.pop("_hidden_params", None)
    message["model"] = model_id
    return message


async def create_message(surface: Surface, request: Request) -> Response:
    metered: Metered | None = None
    try:
        admitted = await admit(surface, request, Endpoint.MESSAGES)
        metered, body = admitted.metered, admitted.body

        async def call(model_id: str, kwargs: dict[str, Any]) -> Any:
            return await admitted.router.aanthropic_messages(model=model_id, **kwargs)

        if body.get("stream"):
            streamed = await admitted.fallbacks.stream(body, call)
            return _sse_response(
                streamed,
                encode=lambda frame: _anthropic_frame(frame, streamed.model_id, metered),
                failed=anthropic_error_event,
                metered=metered,
            )
        answer = await admitted.fallbacks.call(body, call)
        message = _anthropic_message(answer.result, answer.model_id)
        count(metered, message.get("usage"))
        return json_answer(json.dumps(message).encode(), answer, metered)
    except ServeError as error:
        response = anthropic_response(error)
        finish(metered, error.status, response)
        return response


def _block_text(block: Any) -> str:
    """The text a content block contributes to the prompt (tool calls and results as JSON)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    if isinstance(block.get("text"), str):
        return str(block["text"])
    if block.get("type") == "tool_result":
        content = block.get("content")
        return content if isinstance(content, str) else " ".join(map(_block_text, content or []))
    return json.dumps({key: value for key, value in block.items() if key in ("name", "input")})


def prompt_text(body: dict[str, Any]) -> str:
    """The system prompt, messages and tools of an Anthropic request as one text to count."""
    parts: list[str] = []
    system = body.get("system")
    parts.extend([system] if isinstance(system, str) else map(_block_text, system or []))
    for message in body["messages"]:
        content = message.get("content")
        parts.extend([content] if isinstance(content, str) else map(_block_text, content or []))
    if body.get("tools"):
        parts.append(json.dumps(body["tools"]))
    return "\n".join(part for part in parts if part)


async def count_tokens(surface: Surface, request: Request) -> Response:
    try:
        admitted = await admit(surface, request, Endpoint.COUNT_TOKENS, backend_call=False)
        model = str(admitted.snapshot.deployments[admitted.model_id]["model"])
        tokens = litellm.token_counter(model=model, text=prompt_text(admitted.body))
        return Response(json.dumps({"input_tokens": tokens}).encode(), media_type=_JSON)
    except ServeError as error:
        return anthropic_response(error)


# ---- OpenAI Responses -----------------------------------------------------------------------------
def _responses_event(event: Any, model_id: str, metered: Metered | None) -> bytes:
    response = getattr(event, "response", None)
    if response is not None:
        response.model = model_id
        if getattr(event, "type", "") == "response.completed":
            count(metered, getattr(response, "usage", None))
    kind = str(getattr(event, "type", "message"))
    return f"event: {kind}\ndata: ".encode() + event.model_dump_json(exclude_none=True).encode() + b"\n\n"


def _openai_error_event(error: ServeError) -> bytes:
    return b"event: error\ndata: " + json.dumps({"type": "error", **error.body()["error"]}).encode() + b"\n\n"


async def create_response(surface: Surface, request: Request) -> Response:
    metered: Metered | None = None
    try:
        admitted = await admit(surface, request, Endpoint.RESPONSES)
        metered, body = admitted.metered, admitted.body

        async def call(model_id: str, kwargs: dict[str, Any]) -> Any:
            # Stateless: bridged to chat completions, nothing stored (module docstring).
            return await admitted.router.aresponses(model=model_id, use_chat_completions_api=True, **kwargs)

        if body.get("stream"):
            streamed = await admitted.fallbacks.stream(body, call)
            return _sse_response(
                streamed,
                encode=lambda event: _responses_event(event, streamed.model_id, metered),
                failed=_openai_error_event,
                metered=metered,
            )
        answer = await admitted.fallbacks.call(body, call)
        result = answer.result
        result.model = answer.model_id
        count(metered, getattr(result, "usage", None))
        return json_answer(result.model_dump_json(exclude_none=True).encode(), answer, metered)
    except ServeError as error:
        response = error.response()
        finish(metered, error.status, response)
        return response


# ---- images ---------------------------------------------------------------------------------------
async def create_image(surface: Surface, request: Request) -> Response:
    metered: Metered | None = None
    try:
        admitted = await admit(surface, request, Endpoint.IMAGES)
        metered, router = admitted.metered, admitted.router
        answer = await admitted.fallbacks.call(
            admitted.body, lambda model_id, kwargs: router.aimage_generation(model=model_id, **kwargs)
        )
        return json_answer(answer.result.model_dump_json(exclude_none=True).encode(), answer, metered)
    except ServeError as error:
        response = error.response()
        finish(metered, error.status, response)
        return response


# ---- their OpenAPI description ----------------------------------------------------------------------
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "role", "content", "model"],
    "properties": {
        "id": {"type": "string"},
        "type": {"const": "message"},
        "role": {"const": "assistant"},
        "content": {"type": "array"},
        "model": {"type": "string"},
        "stop_reason": {"type": ["string", "null"]},
        "usage": {"type": "object"},
    },
}
_TOKEN_COUNT: dict[str, Any] = {
    "type": "object",
    "required": ["input_tokens"],
    "properties": {"input_tokens": {"type": "integer"}},
}
_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "model", "output"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "response"},
        "model": {"type": "string"},
        "output": {"type": "array"},
        "usage": {"type": "object"},
    },
}
_IMAGES: dict[str, Any] = {
    "type": "object",
    "required": ["created", "data"],
    "properties": {
        "created": {"type": "integer"},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"url": {"type": "string"}, "b64_json": {"type": "string"}},
            },
        },
    },
}
_EXAMPLES: dict[Endpoint, dict[str, Any]] = {
    Endpoint.MESSAGES: {
        "model": "mistral-7b",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hi"}],
    },
    Endpoint.COUNT_TOKENS: {"model": "mistral-7b", "messages": [{"role": "user", "content": "Hi"}]},
    Endpoint.RESPONSES: {"model": "mistral-7b", "input": "Hello"},
    Endpoint.IMAGES: {"model": "stable-diffusion", "prompt": "A lighthouse at dusk", "n": 1},
}


def route_doc(
    endpoint: Endpoint,
    result: dict[str, Any] | None,
    error_schema: dict[str, Any],
    streams: bool,
    *,
    answers: dict[str, Any] | None = None,
    request_type: str = _JSON,
    example: dict[str, Any] | None = None,
    body_limit: str = "LISA_SERVE_MAX_BODY_BYTES",
) -> dict[str, Any]:
    """``responses`` and ``openapi_extra`` of a route: the 200 answer is ``result`` as JSON and/or
    ``answers`` (media type -> content); the body is ``request_type`` (JSON, or multipart/form-data)."""

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {_JSON: {"schema": error_schema}}}

    content: dict[str, Any] = {_JSON: {"schema": result}} if result is not None else {}
    content |= answers or {}
    if streams:
        content["text/event-stream"] = {"schema": SSE_EVENT}
    auth_errors = {status: error(doc["description"]) for status, doc in AUTH_ERRORS.items()}
    return {
        "responses": {
            200: {
                "description": "The result"
                + ('; with `"stream": true`, server-sent events' if streams else ""),
                "headers": {} if endpoint is Endpoint.COUNT_TOKENS else ANSWER_HEADERS,  # no backend call
                "content": content,
            },
            400: error("Invalid body (the field is named), wrong model type, or the backend refused it"),
            **auth_errors,
            404: error("Unknown model, or not open to the caller"),
            413: error(f"Body over {body_limit}"),
            429: error("A usage limit, or the backend throttled"),
            502: error("The backend failed, refused the connection or closed it"),
            504: error("The backend sent nothing for LISA_SERVE_BACKEND_TIMEOUT_SECONDS"),
        },
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {
                    request_type: {
                        "schema": request_schema(endpoint),
                        "example": _EXAMPLES[endpoint] if example is None else example,
                    }
                },
            },
            "security": SECURITY,
        },
    }


def add_surface_routes(app: FastAPI, prefix: str, surface: Surface) -> None:
    """Adds ``/v1/messages``, ``/v1/messages/count_tokens``, ``/responses`` and
    ``/images/generations`` under ``prefix``."""

    @app.post(prefix + "/v1/messages", **route_doc(Endpoint.MESSAGES, _MESSAGE, ANTHROPIC_ERROR_SCHEMA, True))
    async def messages(request: Request) -> Response:
        return await create_message(surface, request)

    @app.post(
        prefix + "/v1/messages/count_tokens",
        **route_doc(Endpoint.COUNT_TOKENS, _TOKEN_COUNT, ANTHROPIC_ERROR_SCHEMA, False),
    )
    async def messages_count_tokens(request: Request) -> Response:
        return await count_tokens(surface, request)

    @app.post(prefix + "/responses", **route_doc(Endpoint.RESPONSES, _RESPONSE, ERROR_SCHEMA, True))
    async def responses(request: Request) -> Response:
        return await create_response(surface, request)

    @app.post(prefix + "/images/generations", **route_doc(Endpoint.IMAGES, _IMAGES, ERROR_SCHEMA, False))
    async def images(request: Request) -> Response:
        return await create_image(surface, request)
