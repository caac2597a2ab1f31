"""The serve API's OpenAPI description: request bodies and every documented response, errors included.

The routes read and check their bodies themselves (``serve.bodies``), so FastAPI cannot infer their
schemas; they are declared here instead, generated from the same tables the checks use
(``bodies.ALLOWED`` / ``bodies.REQUIRED``) so the description cannot drift from the behaviour.
``create_app`` attaches them to the routes; ``openapi_document(app)`` returns the document (used by
the schema fuzz tests in ``tests/fuzz`` and by ``bench/fuzz_serve.py``). The document is not served
over HTTP.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from serve.bodies import (
    ALLOWED,
    MAX_RERANK_DOCUMENTS,
    MAX_SPEECH_INPUT_CHARS,
    REQUIRED,
    SPEECH_FORMATS,
    TIMESTAMP_GRANULARITIES,
    TRANSCRIPTION_FORMATS,
    Endpoint,
)

_JSON_TYPES: dict[type, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    str: {"type": "string"},
    dict: {"type": "object"},
    list: {"type": "array"},
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

MODEL_CARD: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "owned_by"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string"},
    },
}

MODEL_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["data", "object"],
    "properties": {"data": {"type": "array", "items": MODEL_CARD}, "object": {"const": "list"}},
}

_RESULTS: dict[Endpoint, dict[str, Any]] = {
    Endpoint.CHAT: {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array"},
            "usage": {"type": "object"},
        },
    },
    Endpoint.COMPLETIONS: {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "text_completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array"},
            "usage": {"type": "object"},
        },
    },
    Endpoint.EMBEDDINGS: {
        "type": "object",
        "required": ["object", "data", "model"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array"},
            "model": {"type": "string"},
            "usage": {"type": "object"},
        },
    },
}

#: One server-sent event: ``data`` is a JSON chunk, ``[DONE]``, or (after a failure) ``{"error": {...}}``.
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}},
}

_EXAMPLES: dict[Endpoint, dict[str, Any]] = {
    Endpoint.CHAT: {"model": "mistral-7b", "messages": [{"role": "user", "content": "Hello"}]},
    Endpoint.COMPLETIONS: {"model": "mistral-7b", "prompt": "Hello"},
    Endpoint.EMBEDDINGS: {"model": "e5-small", "input": ["first text"]},
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


#: The credential headers of every authenticated route (any one valid credential is enough).
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}, {"xApiKey": []}]

#: The headers of every successful answer of a route that calls a backend (``serve.fallback``).
ANSWER_HEADERS: dict[str, dict[str, Any]] = {
    "x-lisa-model": {"description": "The model that answered", "schema": {"type": "string"}},
    "x-lisa-fallback-from": {
        "description": "The requested model, when one of its fallbacks answered",
        "schema": {"type": "string"},
    },
}

#: Errors any authenticated route can answer (docs/serve-api.md, "Errors").
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No, unknown, expired or revoked credential"),
    403: _error("A valid identity that may not use LISA"),
    503: _error("Registry not loaded yet, or credentials could not be checked"),
}


#: The audio and rerank fields' own constraints (``serve.bodies`` checks them).
_MEDIA_FIELDS: dict[Endpoint, dict[str, Any]] = {
    Endpoint.SPEECH: {
        "input": {"type": "string", "minLength": 1, "maxLength": MAX_SPEECH_INPUT_CHARS},
        "voice": {"type": "string", "minLength": 1},
        "response_format": {"enum": list(SPEECH_FORMATS)},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0},
    },
    Endpoint.TRANSCRIPTIONS: {
        "file": {"type": "string", "format": "binary", "description": "The audio file"},
        "response_format": {"enum": list(TRANSCRIPTION_FORMATS)},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "timestamp_granularities[]": {
            "type": "array",
            "items": {"enum": list(TIMESTAMP_GRANULARITIES)},
            "description": "Only with response_format verbose_json",
        },
    },
    Endpoint.RERANK: {
        "query": {"type": "string", "minLength": 1},
        "documents": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_RERANK_DOCUMENTS,
            "items": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
                ]
            },
        },
        "top_n": {"type": "integer", "minimum": 1, "maximum": MAX_RERANK_DOCUMENTS},
    },
}


def request_schema(endpoint: Endpoint) -> dict[str, Any]:
    """The JSON schema of a request body: exactly the fields ``serve.bodies.parse`` accepts."""
    properties: dict[str, Any] = {}
    for name, types in ALLOWED[endpoint].items():
        options = [_JSON_TYPES[t] for t in types if not (t is int and float in types)]
        properties[name] = options[0] if len(options) == 1 else {"anyOf": options}
    properties["model"] = {"type": "string", "minLength": 1}
    properties.update(_MEDIA_FIELDS.get(endpoint, {}))
    if endpoint is Endpoint.CHAT:
        properties["messages"] = {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["role"],
                "properties": {"role": {"type": "string"}, "content": {}},
            },
        }
    if endpoint is Endpoint.EMBEDDINGS:
        properties["encoding_format"] = {"enum": ["float", "base64"]}
    return {
        "type": "object",
        "required": list(REQUIRED[endpoint]),
        "properties": properties,
        "additionalProperties": False,
    }


def inference_route(endpoint: Endpoint) -> dict[str, Any]:
    """``responses`` and ``openapi_extra`` for an inference route's decorator."""
    return {
        "responses": {
            200: {
                "description": 'The result; with `"stream": true`, server-sent events ending in `data: [DONE]`',
                "headers": ANSWER_HEADERS,
                "content": {
                    "application/json": {"schema": _RESULTS[endpoint]},
                    "text/event-stream": {"schema": SSE_EVENT},
                },
            },
            400: _error(
                "Invalid body (the field is named in `param`), wrong model type, or the backend refused it"
            ),
            **AUTH_ERRORS,
            404: _error("Unknown model, or not open to the caller"),
            413: _error("Body over LISA_SERVE_MAX_BODY_BYTES"),
            429: _error("The backend throttled"),
            502: _error("The backend failed, refused the connection or closed it"),
            504: _error("The backend sent nothing for LISA_SERVE_BACKEND_TIMEOUT_SECONDS"),
        },
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": request_schema(endpoint), "example": _EXAMPLES[endpoint]}
                },
            },
            "security": SECURITY,
        },
    }


def models_route(*, one: bool) -> dict[str, Any]:
    responses: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "One model" if one else "The models the caller may use, sorted by id",
            "content": {"application/json": {"schema": MODEL_CARD if one else MODEL_LIST}},
        },
        **AUTH_ERRORS,
    }
    if one:
        responses[404] = _error("Unknown model, or not open to the caller")
    return {"responses": responses, "openapi_extra": {"security": SECURITY}}


HEALTH: dict[str, Any] = {
    "responses": {
        200: {
            "description": "The process serves HTTP",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {"status": {"const": "ok"}},
                    }
                }
            },
        }
    }
}

READY: dict[str, Any] = {
    "responses": {
        200: {
            "description": "A registry snapshot is loaded (it may be stale or incomplete)",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": [
                            "status",
                            "registryVersion",
                            "models",
                            "stale",
                            "registryAgeSeconds",
                            "incomplete",
                            "skippedRecords",
                        ],
                        "properties": {
                            "status": {"const": "ready"},
                            "registryVersion": {"type": "integer"},
                            "models": {"type": "integer"},
                            "stale": {"type": "boolean"},
                            "registryAgeSeconds": {"type": "number"},
                            "incomplete": {"type": "array", "items": {"type": "string"}},
                            "skippedRecords": {"type": "integer"},
                        },
                    }
                }
            },
        },
        503: {
            "description": "No registry snapshot loaded yet",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["status"],
                        "properties": {
                            "status": {"const": "not ready"},
                            "registryLoaded": {"const": False},
                        },
                    }
                }
            },
        },
    }
}


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The serve API's OpenAPI document, with the credential headers as security schemes."""
    document = app.openapi()
    components = document.setdefault("components", {})
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "Also accepted without the scheme (`Authorization: <credential>`), as LISA's clients send it",
        },
        "apiKey": {"type": "apiKey", "in": "header", "name": "Api-Key"},
        "xApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    }
    return document
