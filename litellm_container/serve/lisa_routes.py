"""The LiteLLM-proxy routes LISA's clients call, under ``/v2/serve``, in LiteLLM's shapes.

LISA passes ``/health``, ``/health/readiness``, ``/health/liveliness`` and ``/model/info`` through
from its LiteLLM proxy, and its SDK (``lisapy``) picks a chat model by ``model_info.mode``. These
routes answer the same shapes behind the same authentication as every ``/v2/serve`` route, from the
registry snapshot alone: no model backend is called (LiteLLM's ``/health`` calls every model), and
only models the caller may use are named. ``/model/info`` gives each model's LiteLLM ``model``
string and nothing else of its parameters: never a key, key ARN or URL. See docs/serve-api.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from lisa_domain.auth import Principal
from lisa_domain.schema import ModelType
from serve.auth import ServeAuthenticator
from serve.config import ServeConfig
from serve.errors import ServeError
from serve.follower import RegistryFollower, Snapshot
from serve.openapi import AUTH_ERRORS, SECURITY

#: LiteLLM's ``model_info.mode`` for each model type (its names: ``litellm.types.utils``).
MODES: dict[ModelType, str] = {
    ModelType.TEXTGEN: "chat",
    ModelType.EMBEDDING: "embedding",
    ModelType.IMAGEGEN: "image_generation",
    ModelType.VIDEOGEN: "video_generation",
    ModelType.TTS: "audio_speech",
    ModelType.STT: "audio_transcription",
    ModelType.RERANK: "rerank",
}
#: What LiteLLM's ``/health/liveliness`` answers (a JSON string).
ALIVE = "I'm alive!"
KEY_UNREADABLE_PREVIOUS = "provider key unreadable; serving its previous deployment"
KEY_UNREADABLE = "provider key unreadable; not served until it can be read"
REFUSED = "not served: LiteLLM refused its parameters"


# ---- their OpenAPI description (serve.openapi.openapi_document includes it) --------------------
def _route(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "responses": {
            200: {"description": description, "content": {"application/json": {"schema": schema}}},
            **AUTH_ERRORS,
        },
        "openapi_extra": {"security": SECURITY},
    }


_ENDPOINT: dict[str, Any] = {
    "type": "object",
    "required": ["model", "model_id"],
    "properties": {"model": {"type": "string"}, "model_id": {"type": "string"}, "error": {"type": "string"}},
}
HEALTH_ROUTE = _route(
    "LiteLLM's /health shape for the caller's models, from the registry (no backend is called)",
    {
        "type": "object",
        "required": ["healthy_endpoints", "unhealthy_endpoints", "healthy_count", "unhealthy_count"],
        "properties": {
            "healthy_endpoints": {"type": "array", "items": _ENDPOINT},
            "unhealthy_endpoints": {"type": "array", "items": _ENDPOINT},
            "healthy_count": {"type": "integer"},
            "unhealthy_count": {"type": "integer"},
        },
    },
)
READINESS_ROUTE = _route(
    "LiteLLM's /health/readiness shape; `db` is `disconnected` while the registry is stale",
    {
        "type": "object",
        "required": ["status", "db"],
        "properties": {"status": {"const": "healthy"}, "db": {"enum": ["connected", "disconnected"]}},
    },
)
LIVELINESS_ROUTE = _route("LiteLLM's /health/liveliness answer (a JSON string)", {"const": ALIVE})
MODEL_INFO_ROUTE = _route(
    "LiteLLM's /model/info shape: one entry per model the caller may use",
    {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["model_name", "litellm_params", "model_info"],
                    "properties": {
                        "model_name": {"type": "string"},
                        "litellm_params": {
                            "type": "object",
                            "required": ["model"],
                            "properties": {"model": {"type": "string"}},
                            "additionalProperties": False,
                        },
                        "model_info": {
                            "type": "object",
                            "required": ["id", "mode", "max_input_tokens"],
                            "properties": {
                                "id": {"type": "string"},
                                "mode": {"enum": sorted(MODES.values())},
                                "max_input_tokens": {"type": ["integer", "null"]},
                            },
                        },
                    },
                },
            }
        },
    },
)


def model_info(current: Snapshot, principal: Principal) -> list[dict[str, Any]]:
    """LiteLLM's ``/model/info`` entries: one per served model the caller may use, by model id."""
    records = {item.record.modelId: item.record for item in current.source}
    entries = []
    for model_id, entry in current.models.items():
        if not principal.can_use(entry.allowed_groups):
            continue
        entries.append(
            {
                "model_name": model_id,
                "litellm_params": {"model": str(current.deployments[model_id]["model"])},
                "model_info": {
                    "id": model_id,
                    "mode": MODES[entry.model_type],
                    "max_input_tokens": records[model_id].contextWindow,
                },
            }
        )
    return entries


def endpoint_health(current: Snapshot, principal: Principal) -> dict[str, Any]:
    """LiteLLM's ``/health`` body for the registry's served models the caller may use: healthy when
    served with a readable provider key, unhealthy (with the reason) otherwise. No backend is called."""
    healthy: list[dict[str, str]] = []
    unhealthy: list[dict[str, str]] = []
    for item in sorted(current.source, key=lambda served: served.record.modelId):
        model_id = item.record.modelId
        if not principal.can_use(list(item.record.allowedGroups)):
            continue
        endpoint = {"model": model_id, "model_id": model_id}
        if model_id in current.incomplete:
            reason = KEY_UNREADABLE_PREVIOUS if model_id in current.models else KEY_UNREADABLE
            unhealthy.append({**endpoint, "error": reason})
        elif model_id not in current.models:
            unhealthy.append({**endpoint, "error": REFUSED})
        else:
            healthy.append(endpoint)
    return {
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": len(healthy),
        "unhealthy_count": len(unhealthy),
    }


def add_lisa_routes(
    app: FastAPI,
    prefix: str,
    *,
    auth: ServeAuthenticator,
    follower: RegistryFollower,
    config: ServeConfig,
    snapshot: Callable[[], Snapshot],
) -> None:
    """Adds the routes to ``app``; ``snapshot`` is the app's current snapshot (503 before the first)."""

    def answer(payload: Any) -> Response:
        return Response(json.dumps(payload).encode(), media_type="application/json")

    @app.get(prefix + "/health", **HEALTH_ROUTE)
    async def health(request: Request) -> Response:
        try:
            principal = await auth.principal(request.headers)
            return answer(endpoint_health(snapshot(), principal))
        except ServeError as error:
            return error.response()

    @app.get(prefix + "/health/readiness", **READINESS_ROUTE)
    async def readiness(request: Request) -> Response:
        try:
            await auth.principal(request.headers)
            snapshot()
            stale = follower.registry_age() > config.registry_stale_seconds
            return answer({"status": "healthy", "db": "disconnected" if stale else "connected"})
        except ServeError as error:
            return error.response()

    @app.get(prefix + "/health/liveliness", **LIVELINESS_ROUTE)
    async def liveliness(request: Request) -> Response:
        try:
            await auth.principal(request.headers)
            return answer(ALIVE)
        except ServeError as error:
            return error.response()

    @app.get(prefix + "/model/info", **MODEL_INFO_ROUTE)
    async def info(request: Request) -> Response:
        try:
            principal = await auth.principal(request.headers)
            return answer({"data": model_info(snapshot(), principal)})
        except ServeError as error:
            return error.response()
