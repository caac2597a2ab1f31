"""Request bodies: size limit before parsing, JSON, and a check of every field naming the bad one.

Only parameters of the OpenAI API (plus the sampling extras vLLM and TGI accept) are passed to
LiteLLM. Anything else is refused with 400: LiteLLM treats many extra keywords (``api_base``,
``api_key``, ``mock_response``, ...) as instructions to itself, and a caller must not be able to
redirect a deployment or read its credentials.

Parameters that multiply a shared backend's work are capped (``RequestLimits``): ``n``,
``best_of``, token counts, and the size of guided-decoding fields (their grammar is compiled by the
backend). JSON nested deeper than ``MAX_JSON_DEPTH`` is refused before anything walks it
recursively. A caller-supplied ``chat_template`` would run a Jinja template of the caller's choice
on the backend, so it is refused wherever vLLM would read it.

Transcription uploads are ``multipart/form-data`` (``parse_form``): the body is limited by its own
setting (``LISA_SERVE_MAX_AUDIO_BYTES``) while it streams into the parser, and the form's fields get
the same checks as a JSON body's (known, well typed, required), with the upload in ``file``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from enum import StrEnum
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from lisa_domain.json_depth import MAX_JSON_DEPTH, too_deep
from serve.config import RequestLimits
from serve.errors import ServeError, bad_request


class Endpoint(StrEnum):
    CHAT = "chat/completions"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"
    MESSAGES = "v1/messages"
    COUNT_TOKENS = "v1/messages/count_tokens"
    RESPONSES = "responses"
    IMAGES = "images/generations"
    SPEECH = "audio/speech"
    TRANSCRIPTIONS = "audio/transcriptions"
    RERANK = "rerank"


_NUMBER = (int, float)
_INT = (int,)
_BOOL = (bool,)
_STR = (str,)
_OBJECT = (dict,)
_LIST = (list,)
_STR_OR_LIST = (str, list)
_ANY: tuple[type, ...] = ()

#: Sampling parameters of vLLM / TGI / llama.cpp servers beyond OpenAI's (passed through as given).
_SAMPLING_EXTRAS: dict[str, tuple[type, ...]] = {
    "top_k": _INT,
    "min_p": _NUMBER,
    "repetition_penalty": _NUMBER,
    "length_penalty": _NUMBER,
    "min_tokens": _INT,
    "ignore_eos": _BOOL,
    "skip_special_tokens": _BOOL,
    "spaces_between_special_tokens": _BOOL,
    "stop_token_ids": _LIST,
    "include_stop_str_in_output": _BOOL,
    "guided_json": (dict, str),
    "guided_regex": _STR,
    "guided_choice": _LIST,
    "guided_grammar": _STR,
}

_GENERATION: dict[str, tuple[type, ...]] = {
    "model": _STR,
    "stream": _BOOL,
    "stream_options": _OBJECT,
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "n": _INT,
    "stop": _STR_OR_LIST,
    "max_tokens": _INT,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "logit_bias": _OBJECT,
    "user": _STR,
    "seed": _INT,
    **_SAMPLING_EXTRAS,
}

ALLOWED: dict[Endpoint, dict[str, tuple[type, ...]]] = {
    Endpoint.CHAT: {
        **_GENERATION,
        "messages": _LIST,
        "max_completion_tokens": _INT,
        "logprobs": _BOOL,
        "top_logprobs": _INT,
        "tools": _LIST,
        "tool_choice": (str, dict),
        "parallel_tool_calls": _BOOL,
        "response_format": _OBJECT,
        "functions": _LIST,
        "function_call": (str, dict),
        "reasoning_effort": _STR,
        "modalities": _LIST,
        "audio": _OBJECT,
        "prediction": _OBJECT,
        "service_tier": _STR,
        "chat_template_kwargs": _OBJECT,
    },
    Endpoint.COMPLETIONS: {
        **_GENERATION,
        "prompt": _STR_OR_LIST,
        "logprobs": _INT,
        "echo": _BOOL,
        "best_of": _INT,
        "suffix": _STR,
    },
    Endpoint.EMBEDDINGS: {
        "model": _STR,
        "input": _STR_OR_LIST,
        "encoding_format": _STR,
        "dimensions": _INT,
        "user": _STR,
    },
}

#: Anthropic Messages (``serve.surface_routes``). ``metadata`` is accepted and not passed on:
#: LiteLLM reads a ``metadata`` keyword as its own.
_ANTHROPIC_MESSAGES: dict[str, tuple[type, ...]] = {
    "model": _STR,
    "messages": _LIST,
    "system": _STR_OR_LIST,
    "tools": _LIST,
    "tool_choice": _OBJECT,
    "thinking": _OBJECT,
}
ALLOWED[Endpoint.MESSAGES] = {
    **_ANTHROPIC_MESSAGES,
    "max_tokens": _INT,
    "stream": _BOOL,
    "stop_sequences": _LIST,
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "top_k": _INT,
    "metadata": _OBJECT,
}
ALLOWED[Endpoint.COUNT_TOKENS] = _ANTHROPIC_MESSAGES
#: OpenAI Responses, stateless: ``store`` may only be false and ``previous_response_id`` is refused
#: (``serve.surface_routes``); ``metadata`` is accepted and not passed on, as above.
ALLOWED[Endpoint.RESPONSES] = {
    "model": _STR,
    "input": _STR_OR_LIST,
    "instructions": _STR,
    "stream": _BOOL,
    "max_output_tokens": _INT,
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "tools": _LIST,
    "tool_choice": (str, dict),
    "parallel_tool_calls": _BOOL,
    "text": _OBJECT,
    "reasoning": _OBJECT,
    "user": _STR,
    "store": _BOOL,
    "metadata": _OBJECT,
}
ALLOWED[Endpoint.IMAGES] = {
    "model": _STR,
    "prompt": _STR,
    "n": _INT,
    "size": _STR,
    "quality": _STR,
    "style": _STR,
    "response_format": _STR,
    "user": _STR,
}

#: OpenAI's speech (JSON body; the answer is audio bytes).
ALLOWED[Endpoint.SPEECH] = {
    "model": _STR,
    "input": _STR,
    "voice": _STR,
    "instructions": _STR,
    "response_format": _STR,
    "speed": _NUMBER,
}
#: OpenAI's transcription form (``parse_form``): every field arrives as text and is converted to
#: these types; ``file`` is the upload and ``timestamp_granularities[]`` may repeat.
ALLOWED[Endpoint.TRANSCRIPTIONS] = {
    "model": _STR,
    "file": _ANY,
    "language": _STR,
    "prompt": _STR,
    "response_format": _STR,
    "temperature": _NUMBER,
    "timestamp_granularities[]": _LIST,
}
#: Cohere's rerank, as LiteLLM takes it.
ALLOWED[Endpoint.RERANK] = {
    "model": _STR,
    "query": _STR,
    "documents": _LIST,
    "top_n": _INT,
    "return_documents": _BOOL,
}

REQUIRED: dict[Endpoint, tuple[str, ...]] = {
    Endpoint.CHAT: ("model", "messages"),
    Endpoint.COMPLETIONS: ("model", "prompt"),
    Endpoint.EMBEDDINGS: ("model", "input"),
    Endpoint.MESSAGES: ("model", "messages", "max_tokens"),
    Endpoint.COUNT_TOKENS: ("model", "messages"),
    Endpoint.RESPONSES: ("model", "input"),
    Endpoint.IMAGES: ("model", "prompt"),
    Endpoint.SPEECH: ("model", "input", "voice"),
    Endpoint.TRANSCRIPTIONS: ("model", "file"),
    Endpoint.RERANK: ("model", "query", "documents"),
}
#: Audio formats of the speech route (OpenAI's), and its longest input (OpenAI's limit).
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
MAX_SPEECH_INPUT_CHARS = 4096
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
TIMESTAMP_GRANULARITIES = ("word", "segment")
#: Most documents per rerank request (Cohere's limit): each one is a pass of the reranker.
MAX_RERANK_DOCUMENTS = 1000

_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    str: "a string",
    dict: "an object",
    list: "an array",
}


DEFAULT_LIMITS = RequestLimits()
#: vLLM's guided-decoding fields, each bounded by ``RequestLimits.max_guided_bytes``.
GUIDED_FIELDS = ("guided_json", "guided_regex", "guided_choice", "guided_grammar", "response_format")
#: Token counts bounded by ``RequestLimits.max_tokens``.
TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "min_tokens", "max_output_tokens")


def too_large(limit: int, setting: str | None = None) -> ServeError:
    named = f" ({setting})" if setting else ""
    return ServeError(
        413,
        f"The request body is larger than the limit of {limit} bytes{named}.",
        code="request_too_large",
    )


async def limited_stream(
    request: Request, limit: int, setting: str | None = None
) -> AsyncGenerator[bytes, None]:
    """The body's chunks; 413 as soon as it is known to exceed ``limit`` (declared or streamed length)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit, setting)
        except ValueError:
            raise bad_request("Invalid Content-Length header.") from None
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit, setting)
        yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, within ``limit`` (``limited_stream``)."""
    return b"".join([chunk async for chunk in limited_stream(request, limit)])


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if not types or value is None:
        return True
    if isinstance(value, bool) and bool not in types:
        return False  # JSON true is not a number
    return isinstance(value, types)


def _too_deep() -> ServeError:
    return bad_request(
        f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.", code="json_too_deep"
    )


def parse(raw: bytes, endpoint: Endpoint, limits: RequestLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The checked body: JSON object, required fields present, every field known, well typed and
    within ``limits``."""
    if too_deep(raw):  # measured before parsing: json.loads recurses once per level
        raise _too_deep()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request(f"The request body is not valid JSON: {error}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    _check_fields(body, endpoint)
    _check_limits(body, limits)
    return body


def _check_fields(body: Mapping[str, Any], endpoint: Endpoint) -> None:
    """Required fields present, every field known and well typed, then the endpoint's own rules."""
    allowed = ALLOWED[endpoint]
    for name in REQUIRED[endpoint]:
        if body.get(name) is None:
            raise bad_request(
                f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
            )
    for name, value in body.items():
        types = allowed.get(name)
        if types is None:
            raise bad_request(
                f"Unrecognized request argument supplied: '{name}'.", param=name, code="unknown_parameter"
            )
        if not _type_ok(value, types):
            expected = " or ".join(_TYPE_NAMES[t] for t in types if not (t is int and float in types))
            raise bad_request(
                f"Invalid type for '{name}': expected {expected}.", param=name, code="invalid_type"
            )
    if not body["model"]:
        raise bad_request("'model' must not be empty.", param="model", code="invalid_value")
    _check_specific(body, endpoint)


def _check_specific(body: Mapping[str, Any], endpoint: Endpoint) -> None:
    if endpoint in (Endpoint.CHAT, Endpoint.MESSAGES, Endpoint.COUNT_TOKENS):
        messages = body["messages"]
        if not messages:
            raise bad_request(
                "'messages' must contain at least one message.", param="messages", code="invalid_value"
            )
        for index, message in enumerate(messages):
            where = f"messages[{index}]"
            if not isinstance(message, dict):
                raise bad_request(f"'{where}' must be an object.", param=where, code="invalid_type")
            if not isinstance(message.get("role"), str):
                raise bad_request(
                    f"'{where}.role' is required and must be a string.",
                    param=f"{where}.role",
                    code="invalid_value",
                )
    elif endpoint is Endpoint.COMPLETIONS:
        if isinstance(body["prompt"], list) and not body["prompt"]:
            raise bad_request("'prompt' must not be empty.", param="prompt", code="invalid_value")
    elif endpoint is Endpoint.RESPONSES:
        _not_empty(body, "input")
        if body.get("store"):
            raise bad_request(
                "'store' must be false: responses are not stored (the route is stateless).",
                param="store",
                code="invalid_value",
            )
    elif endpoint is Endpoint.IMAGES:
        _not_empty(body, "prompt")
        _one_of(body, "response_format", ("url", "b64_json"))
    elif endpoint is Endpoint.SPEECH:
        _check_speech(body)
    elif endpoint is Endpoint.TRANSCRIPTIONS:
        _check_transcription(body)
    elif endpoint is Endpoint.RERANK:
        _check_rerank(body)
    elif endpoint is Endpoint.EMBEDDINGS:
        _not_empty(body, "input")
        _one_of(body, "encoding_format", ("float", "base64"))


def _one_of(body: Mapping[str, Any], name: str, options: tuple[str, ...]) -> None:
    value = body.get(name)
    if value is not None and value not in options:
        raise bad_request(f"'{name}' must be one of {', '.join(options)}.", param=name, code="invalid_value")


def _within(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is not None and not low <= value <= high:
        raise bad_request(f"'{name}' must be between {low} and {high}.", param=name, code="invalid_value")


def _not_empty(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if not body[name]:
            raise bad_request(f"'{name}' must not be empty.", param=name, code="invalid_value")


def _check_speech(body: Mapping[str, Any]) -> None:
    _not_empty(body, "input", "voice")
    if len(body["input"]) > MAX_SPEECH_INPUT_CHARS:
        raise bad_request(
            f"'input' must be at most {MAX_SPEECH_INPUT_CHARS} characters.",
            param="input",
            code="limit_exceeded",
        )
    _one_of(body, "response_format", SPEECH_FORMATS)
    _within(body, "speed", 0.25, 4.0)


def _check_transcription(body: Mapping[str, Any]) -> None:
    _one_of(body, "response_format", TRANSCRIPTION_FORMATS)
    _within(body, "temperature", 0.0, 1.0)
    granularities = body.get("timestamp_granularities[]")
    if granularities is not None:
        name = "timestamp_granularities[]"
        if any(value not in TIMESTAMP_GRANULARITIES for value in granularities):
            raise bad_request(
                f"'{name}' values must be {' or '.join(TIMESTAMP_GRANULARITIES)}.",
                param=name,
                code="invalid_value",
            )
        if body.get("response_format") != "verbose_json":
            raise bad_request(
                f"'{name}' needs 'response_format' verbose_json.", param=name, code="invalid_value"
            )


def _check_rerank(body: Mapping[str, Any]) -> None:
    _not_empty(body, "query", "documents")
    documents = body["documents"]
    if len(documents) > MAX_RERANK_DOCUMENTS:
        raise bad_request(
            f"'documents' must have at most {MAX_RERANK_DOCUMENTS} items.",
            param="documents",
            code="limit_exceeded",
        )
    for index, document in enumerate(documents):
        if not (
            isinstance(document, str)
            or (isinstance(document, dict) and isinstance(document.get("text"), str))
        ):
            raise bad_request(
                f"'documents[{index}]' must be a string or an object with a string 'text'.",
                param=f"documents[{index}]",
                code="invalid_type",
            )
    _at_most(body, "top_n", 1, MAX_RERANK_DOCUMENTS, "the most documents per request")


def _at_most(body: Mapping[str, Any], name: str, minimum: int, maximum: int, what: str) -> None:
    value = body.get(name)
    if value is None:
        return
    if value < minimum:
        raise bad_request(f"'{name}' must be at least {minimum}.", param=name, code="invalid_value")
    if value > maximum:
        raise bad_request(f"'{name}' must be at most {maximum} ({what}).", param=name, code="limit_exceeded")


def _size(value: Any) -> int:
    """Bytes of a string, or of compact JSON for anything else."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return len(text.encode())


def _check_limits(body: Mapping[str, Any], limits: RequestLimits) -> None:
    _at_most(body, "n", 1, limits.max_n, "LISA_SERVE_MAX_N")
    _at_most(body, "best_of", 1, limits.max_best_of, "LISA_SERVE_MAX_BEST_OF")
    for name in TOKEN_FIELDS:
        _at_most(body, name, 0, limits.max_tokens, "LISA_SERVE_MAX_TOKENS")
    for name in GUIDED_FIELDS:
        value = body.get(name)
        if value is not None and _size(value) > limits.max_guided_bytes:
            raise bad_request(
                f"'{name}' is larger than {limits.max_guided_bytes} bytes (LISA_SERVE_MAX_GUIDED_BYTES).",
                param=name,
                code="limit_exceeded",
            )
    template_kwargs = body.get("chat_template_kwargs") or {}
    if "chat_template" in template_kwargs:
        raise bad_request(
            "'chat_template_kwargs.chat_template' is not allowed: the model's own chat template is used.",
            param="chat_template_kwargs.chat_template",
            code="invalid_value",
        )


# ---- multipart/form-data (transcriptions) ----------------------------------------------------------
#: Most text fields in a form (the known ones, ``timestamp_granularities[]`` twice), and most file
#: parts (one more than the one ``file``, so that a misplaced or repeated upload is named).
MAX_FORM_FIELDS = 16
MAX_FORM_FILES = 2


def _form_value(name: str, value: str, types: tuple[type, ...]) -> Any:
    """A form field's text as the type the field table names (400 naming the field otherwise)."""
    try:
        if types == _NUMBER:
            return float(value)
        if types == _INT:
            return int(value)
    except ValueError:
        expected = _TYPE_NAMES[types[-1]]
        raise bad_request(
            f"Invalid type for '{name}': expected {expected}.", param=name, code="invalid_type"
        ) from None
    if types == _BOOL:
        if value not in ("true", "false"):
            raise bad_request(
                f"Invalid type for '{name}': expected a boolean.", param=name, code="invalid_type"
            )
        return value == "true"
    return value


async def _upload(name: str, upload: UploadFile) -> tuple[str, bytes, str]:
    data = await upload.read()
    if not data:
        raise bad_request(f"'{name}' must not be empty.", param=name, code="invalid_value")
    return upload.filename or "audio", data, upload.content_type or "application/octet-stream"


async def parse_form(request: Request, endpoint: Endpoint, limit: int, setting: str) -> dict[str, Any]:
    """The checked form: the body streams into the parser within ``limit`` (413 naming ``setting``);
    ``file`` becomes ``(filename, bytes, content type)``; the other fields are checked as ``parse``
    checks a JSON body's."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise bad_request("The request body must be multipart/form-data.", code="invalid_content_type")
    parser = MultiPartParser(
        request.headers,
        limited_stream(request, limit, setting),
        max_files=MAX_FORM_FILES,
        max_fields=MAX_FORM_FIELDS,
    )
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise bad_request(
            f"The multipart body is invalid: {error.message}", code="invalid_multipart"
        ) from None
    try:
        allowed = ALLOWED[endpoint]
        body: dict[str, Any] = {}
        for name, value in form.multi_items():
            types = allowed.get(name)
            if types is None:
                raise bad_request(
                    f"Unrecognized request argument supplied: '{name}'.", param=name, code="unknown_parameter"
                )
            if isinstance(value, UploadFile) != (types == _ANY):
                expected = "a file" if types == _ANY else "a text field, not a file"
                raise bad_request(f"'{name}' must be {expected}.", param=name, code="invalid_type")
            if types == _LIST:
                body.setdefault(name, []).append(value)
            elif name in body:
                raise bad_request(f"'{name}' is given more than once.", param=name, code="invalid_value")
            elif isinstance(value, UploadFile):
                body[name] = await _upload(name, value)
            else:
                body[name] = _form_value(name, value, types)
    finally:
        await form.close()
    _check_fields(body, endpoint)
    return body
