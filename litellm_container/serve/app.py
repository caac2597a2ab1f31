"""The serve app: OpenAI-compatible routes under ``/v2/serve`` on LiteLLM's Router.

Per request: authenticate (API tokens from the followed tokens table, in memory; other credentials
off the event loop), read the body under the size limit, check it, look the model up in the
current registry snapshot (invisible models are 404), and call the snapshot's Router. No request
or response body is ever logged. See docs/serve-api.md.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from lisa_contracts.limits import UsageLimits
from lisa_domain.auth import Authenticator, JwtVerifier, Principal, jwt_verifier_from_env
from lisa_domain.cors import ALLOWED_HEADERS, ALLOWED_METHODS, PREFLIGHT_MAX_AGE, parse_origins
from lisa_domain.cost_control import CostControlStore
from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import ModelType
from lisa_domain.tokens import TokenStore
from lisa_domain.usage import UsageStore
from serve._litellm import ModelRouter, Router
from serve.activity import ModelStarting, StartRequester, UsageReporter, startable_groups
from serve.auth import ServeAuthenticator, serve_management_key
from serve.bodies import Endpoint, parse, read_body
from serve.config import ServeConfig
from serve.errors import ServeError, backend_error, bad_request, model_not_found
from serve.fallback import Fallbacks
from serve.first_load import FirstLoad
from serve.follower import RegistryFollower, RouterFactory, SecretCache, Snapshot
from serve.limits import BudgetGuard, RateLimiter, UsageGate
from serve.lisa_routes import add_lisa_routes
from serve.media_routes import add_media_routes
from serve.metering import Meter, Metered, MetricsPrinter
from serve.openapi import HEALTH, READY, inference_route, models_route
from serve.surface_routes import Surface, add_surface_routes
from serve.token_follower import TokenFollower

logger = logging.getLogger("lisa.serve")

PREFIX = "/v2/serve"
_JSON = "application/json"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_DONE = b"data: [DONE]\n\n"
_STARTUP_WAIT_SECONDS = 5.0
_MODEL_TYPES: dict[Endpoint, ModelType] = {
    Endpoint.CHAT: ModelType.TEXTGEN,
    Endpoint.COMPLETIONS: ModelType.TEXTGEN,
    Endpoint.EMBEDDINGS: ModelType.EMBEDDING,
}


@dataclass
class Services:
    config: ServeConfig
    follower: RegistryFollower
    auth: ServeAuthenticator
    #: The followed API tokens (``None``: no tokens table, API tokens are refused).
    tokens: TokenFollower | None = None
    #: Cost control (``serve.activity``): usage reports and start on request (``None``: off).
    usage: UsageReporter | None = None
    starter: StartRequester | None = None
    #: Usage metering and limits (``serve.metering``, ``serve.limits``; ``None``: no usage table,
    #: or no limits configured).
    meter: Meter | None = None
    gate: UsageGate | None = None


def router_factory(config: ServeConfig) -> RouterFactory:
    """LiteLLM's retries stay within one deployment; LISA's fallbacks (``serve.fallback``) replace
    LiteLLM's, which get none, so no backend is tried twice over."""

    def build(model_list: list[dict[str, Any]]) -> Router:
        return Router(
            model_list=model_list,
            num_retries=config.backend_retries,
            timeout=config.backend_timeout_seconds,
            stream_timeout=config.backend_timeout_seconds,
            ignore_invalid_deployments=True,
        )

    return build


def build_services(
    config: ServeConfig,
    *,
    endpoint_url: str | None = None,
    jwt_verifier: JwtVerifier | None = None,
    first_load: FirstLoad | None = None,
) -> Services:
    """The AWS clients, authenticator and registry follower (``endpoint_url``: an emulator;
    ``first_load``: the registry's first read, started before LiteLLM was imported)."""
    boto_config = BotoConfig(
        max_pool_connections=64,
        connect_timeout=3,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 2},
    )
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_url, config=boto_config)
    secretsmanager = boto3.client("secretsmanager", endpoint_url=endpoint_url, config=boto_config)
    tokens = (
        TokenFollower(
            TokenStore(config.tokens_table, dynamodb),
            config.admin_group,
            poll_seconds=config.tokens_poll_seconds,
            resync_seconds=config.tokens_resync_seconds,
        )
        if config.tokens_table
        else None
    )
    authenticator = Authenticator(
        admin_group=config.admin_group,
        management_key=serve_management_key(config, secretsmanager),
        jwt_verifier=jwt_verifier,
    )
    registry = ModelRegistry(config.models_table, dynamodb)
    follower = RegistryFollower(
        registry,
        router_factory(config),
        secrets=SecretCache(secretsmanager),
        poll_seconds=config.registry_poll_seconds,
        startable=startable_groups,
        first_load=first_load,
    )
    cost_store = CostControlStore(config.models_table, dynamodb)
    meter, gate = _usage_services(config, dynamodb)
    return Services(
        config,
        follower,
        ServeAuthenticator(authenticator, tokens=tokens, ttl=config.auth_cache_seconds),
        tokens,
        UsageReporter(cost_store, flush_seconds=config.usage_flush_seconds),
        StartRequester(cost_store),
        meter,
        gate,
    )


def _usage_services(config: ServeConfig, dynamodb: Any) -> tuple[Meter | None, UsageGate | None]:
    """The meter and, when limits are configured, the gate (both need the usage table)."""
    if not config.usage_table:
        return None, None
    store = UsageStore(config.usage_table, dynamodb)
    limits = UsageLimits.from_json(config.usage_limits)
    budgets = BudgetGuard(store)
    gate = UsageGate(limits, RateLimiter(store), budgets) if limits.configured else None
    meter = Meter(
        store,
        flush_seconds=config.metering_flush_seconds,
        budgets=budgets if gate is not None else None,
        metrics=MetricsPrinter() if config.metrics else None,
    )
    return meter, gate


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload).encode(), status, media_type=_JSON)


def create_app(services: Services) -> FastAPI:
    config, follower, auth, tokens = services.config, services.follower, services.auth, services.tokens
    usage, starter = services.usage, services.starter
    meter, gate = services.meter, services.gate

    def tokens_loaded() -> bool:
        return tokens is None or tokens.loaded

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        follower.start()
        if tokens is not None:
            tokens.start()
        if usage is not None:
            usage.start()
        if meter is not None:
            meter.start()
        deadline = time.monotonic() + _STARTUP_WAIT_SECONDS
        while (follower.snapshot is None or not tokens_loaded()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # LiteLLM and its cost map leave ~400,000 long-lived objects; a full collection walks them
        # all (~150 ms, every request stalls). Freezing them keeps later collections short.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await follower.stop()
            if tokens is not None:
                await tokens.stop()
            if usage is not None:
                await usage.stop()
            if gate is not None:
                await gate.stop()
            if meter is not None:
                await meter.stop()

    app = FastAPI(title="LISA serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.services = services
    origins = parse_origins(config.cors_origins)
    if origins:  # the console's origin only (lisa_domain.cors)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=ALLOWED_METHODS.split(","),
            allow_headers=ALLOWED_HEADERS.split(","),
            max_age=int(PREFLIGHT_MAX_AGE),
        )

    async def http_error(_: Request, error: Exception) -> Response:
        status = getattr(error, "status_code", 500)
        if status == 404:
            return ServeError(404, "Unknown route.", code="not_found").response()
        if status == 405:
            return ServeError(405, "Method not allowed.", code="method_not_allowed").response()
        return ServeError(status, str(getattr(error, "detail", "error")), code="http_error").response()

    async def internal_error(_: Request, error: Exception) -> Response:
        logger.error("unhandled error: %s", type(error).__name__, exc_info=error)
        return ServeError(500, "Internal error.", type="server_error", code="internal_error").response()

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)

    def snapshot() -> Snapshot:
        current = follower.snapshot
        if current is None:
            raise ServeError(
                503, "The model registry is not loaded yet; retry.", type="server_error", code="not_ready"
            )
        return current

    # ---- health --------------------------------------------------------------------------------
    @app.get("/health", **HEALTH)
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/health/ready", **READY)
    @app.get("/health/readiness", **READY)
    async def ready() -> Response:
        """503 only until the first snapshot and the first load of the API tokens; then 200 with
        staleness and gaps in the body, so a registry outage does not take every replica out of
        its load balancer."""
        current = follower.snapshot
        if current is None or not tokens_loaded():
            return _json(
                {
                    "status": "not ready",
                    "registryLoaded": current is not None,
                    "tokensLoaded": tokens_loaded(),
                },
                503,
            )
        age = follower.registry_age()
        tokens_age = tokens.age() if tokens is not None else 0.0
        return _json(
            {
                "status": "ready",
                "registryVersion": current.version,
                "models": len(current.models),
                "stale": max(age, tokens_age) > config.registry_stale_seconds,
                "registryAgeSeconds": round(age, 3),
                "incomplete": sorted(current.incomplete),
                "skippedRecords": current.skipped,
                "tokensVersion": tokens.version if tokens is not None else None,
                "tokens": len(tokens) if tokens is not None else 0,
                "tokensAgeSeconds": round(tokens_age, 3),
            }
        )

    # ---- models ----------------------------------------------------------------------------------
    @app.get(PREFIX + "/models", **models_route(one=False))
    async def list_models(request: Request) -> Response:
        try:
            principal = await auth.principal(request.headers)
            models = snapshot().models.values()
            data = [entry.card for entry in models if principal.can_use(entry.allowed_groups)]
            return _json({"data": data, "object": "list"})
        except ServeError as error:
            return error.response()

    @app.get(PREFIX + "/models/{model_id:path}", **models_route(one=True))
    async def retrieve_model(request: Request, model_id: str) -> Response:
        try:
            principal = await auth.principal(request.headers)
            entry = snapshot().models.get(model_id)
            if entry is None or not principal.can_use(entry.allowed_groups):
                raise model_not_found(model_id)
            return _json(entry.card)
        except ServeError as error:
            return error.response()

    add_lisa_routes(app, PREFIX, auth=auth, follower=follower, config=config, snapshot=snapshot)
    surface = Surface(auth, config, snapshot, _starter(starter), usage, meter, gate)
    add_surface_routes(app, PREFIX, surface)
    add_media_routes(app, PREFIX, surface)

    # ---- inference -------------------------------------------------------------------------------
    async def infer(request: Request, endpoint: Endpoint) -> Response:
        started = time.perf_counter()
        metered: Metered | None = None
        try:
            principal = await auth.principal(request.headers)
            body = parse(await read_body(request, config.max_body_bytes), endpoint, config.request_limits)
            current = snapshot()
            model_id: str = body.pop("model")
            entry = current.models.get(model_id)
            if entry is None and starter is not None:
                await _start_on_request(starter, current, principal, model_id)
            if entry is None or current.router is None or not principal.can_use(entry.allowed_groups):
                raise model_not_found(model_id)
            if entry.model_type is not _MODEL_TYPES[endpoint]:
                raise bad_request(
                    f"The model '{model_id}' is a {entry.model_type.value} model; /{endpoint.value} "
                    f"needs a {_MODEL_TYPES[endpoint].value} model.",
                    param="model",
                    code="model_type_mismatch",
                )
            if meter is not None:
                metered = Metered(meter, gate, principal, model_id, started, endpoint.value)
                await metered.admit()
            if usage is not None:
                usage.used(model_id)
            fallbacks = Fallbacks.of(current, principal, model_id, metered=metered, usage=usage)
            call = _endpoint_call(current.router, endpoint)
            if body.get("stream"):
                return await _stream(call, fallbacks, body, metered)
            answer = await fallbacks.call(body, lambda model, kwargs: call(model=model, **kwargs))
            result = answer.result
            result.model = answer.model_id
            response = Response(
                result.model_dump_json(exclude_none=True).encode(), media_type=_JSON, headers=answer.headers()
            )
            if metered is not None:
                metered.usage(getattr(result, "usage", None))
                metered.finish(200, response)
            return response
        except ServeError as error:
            response = error.response()
            if metered is not None:
                metered.finish(error.status, response)
            return response

    @app.post(PREFIX + "/chat/completions", **inference_route(Endpoint.CHAT))
    async def chat_completions(request: Request) -> Response:
        return await infer(request, Endpoint.CHAT)

    @app.post(PREFIX + "/completions", **inference_route(Endpoint.COMPLETIONS))
    async def completions(request: Request) -> Response:
        return await infer(request, Endpoint.COMPLETIONS)

    @app.post(PREFIX + "/embeddings", **inference_route(Endpoint.EMBEDDINGS))
    async def embeddings(request: Request) -> Response:
        return await infer(request, Endpoint.EMBEDDINGS)

    return app


async def _start_on_request(
    starter: StartRequester, current: Snapshot, principal: Principal, model_id: str
) -> None:
    """A stopped ``startOnRequest`` model the caller may use: ask for its start, answer 503."""
    groups = current.startable.get(model_id)
    if groups is not None and principal.can_use(list(groups)):
        await starter.request(model_id)
        raise ModelStarting(model_id)


def _starter(starter: StartRequester | None) -> Callable[[Snapshot, Principal, str], Any] | None:
    """``_start_on_request`` bound to ``starter`` (``None``: start on request is off)."""
    if starter is None:
        return None
    return lambda current, principal, model_id: _start_on_request(starter, current, principal, model_id)


def _endpoint_call(router: ModelRouter, endpoint: Endpoint) -> Callable[..., Any]:
    if endpoint is Endpoint.CHAT:
        return router.acompletion
    if endpoint is Endpoint.COMPLETIONS:
        return router.atext_completion
    return router.aembedding


def _event(chunk: Any, model_id: str, metered: Metered | None = None) -> bytes:
    chunk.model = model_id
    if metered is not None and not metered.observe_chunk(chunk):
        return b""
    if chunk.object == "text_completion":
        for choice in chunk.choices:  # OpenAI always sends a string, "" in the last chunk
            if getattr(choice, "text", None) is None:
                choice.text = ""
    return b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"


async def _stream(
    call: Callable[..., Any], fallbacks: Fallbacks, body: dict[str, Any], metered: Metered | None = None
) -> Response:
    """Server-sent events ending in ``[DONE]``. A failure before the first chunk is an ordinary
    HTTP error (or the next fallback answers); a failure after it is one ``data: {"error": {...}}``
    event, and the stream ends. Metered streams ask the backend for usage
    (``Metered.stream_options``) and record at the end."""
    if metered is not None:
        body["stream_options"] = metered.stream_options(body.get("stream_options"))
    answer = await fallbacks.stream(body, lambda model, kwargs: call(model=model, **kwargs))
    model_id, opened = answer.model_id, answer.result

    async def events() -> AsyncIterator[bytes]:
        try:
            if opened.first is not None:
                yield _event(opened.first, model_id, metered)
                async for chunk in opened.items:
                    if event := _event(chunk, model_id, metered):
                        yield event
            yield _DONE
            if metered is not None:
                metered.finish(200)
        except Exception as error:
            failure = backend_error(error, model_id)
            if metered is not None:
                metered.finish(failure.status)
            yield b"data: " + json.dumps(failure.body()).encode() + b"\n\n"
        finally:
            if metered is not None:
                metered.finish(499)  # the client went away (no-op after a finish above)
            await opened.close()

    headers = _SSE_HEADERS | answer.headers() | (metered.headers() if metered is not None else {})
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def app_from_env(first_load: FirstLoad | None = None) -> FastAPI:
    """The app as the container runs it: settings, AWS endpoints and OIDC (``OIDC_*``) from the environment."""
    config = ServeConfig.from_env()
    verifier = jwt_verifier_from_env(config.admin_group)
    return create_app(build_services(config, jwt_verifier=verifier, first_load=first_load))
