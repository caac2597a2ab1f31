"""Admin API Lambda (API Gateway REST proxy): the entry point.

Every request passes ``admin_api.access`` (401/403/400 before routing), then the resolver routes it
to a route module (``ROUTE_MODULES``), which calls ``admin_api.models`` / ``admin_api.tokens`` and
shapes the response.

Errors have one shape everywhere, the one API Gateway itself uses for its own 401/403 answers plus
the status code: ``{"message": "...", "statusCode": 409}``; schema errors (422) also list each
problem under ``errors`` as ``{"field": "body.modelId", "message": "..."}``. Request bodies and
credentials are never logged; invalid input is never echoed back.

Cold start: importing this module loads only Powertools' resolver, logger and metrics (and X-Ray
only when tracing is on, ``admin_api.tracing``). The route modules, with the request models, the
OpenAPI validation they build and the domain behind them, are imported by ``load_routes()`` with the
first request (docs/benchmarks.md, start-up).
"""

import importlib
from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from admin_api.resolver import app, logger, metrics
from admin_api.responses import error_response
from admin_api.tracing import build_tracer
from admin_api.wiring import service, token_service, token_settings
from lisa_domain.errors import LisaError

__all__ = [
    "app",
    "lambda_handler",
    "load_routes",
    "metrics",
    "service",
    "token_service",
    "token_settings",
]

tracer = build_tracer()

#: The route modules, one entry each (in the order their paths appear in the OpenAPI document).
ROUTE_MODULES = (
    "admin_api.routes.models",
    "admin_api.routes.model_metadata",
    "admin_api.routes.schedule",
    "admin_api.routes.tokens",
    "admin_api.routes.usage",
    "admin_api.routes.docs",
)


@cache
def load_routes() -> None:
    """Import every route module (each registers its routes on ``app``); once per process."""
    for name in ROUTE_MODULES:
        importlib.import_module(name)


# ---- errors ----------------------------------------------------------------------------------------
def _field_errors(error: RequestValidationError) -> list[dict[str, str]]:
    problems = []
    for detail in error.errors():
        field = ".".join(str(part) for part in detail.get("loc", ())) or "request"
        message = str(detail.get("msg", "invalid value")).removeprefix("Value error, ")
        problems.append({"field": field, "message": message})
    return problems


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    problems = _field_errors(error)
    summary = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
    return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, f"Invalid request: {summary}", problems)


@app.exception_handler(LisaError)
def _domain_error(error: LisaError) -> Response[dict[str, Any]]:
    if error.status_code >= 500:
        logger.warning("request failed", extra={"error": type(error).__name__})
    return error_response(error.status_code, str(error))


@app.exception_handler(UnicodeDecodeError)
def _undecodable_body(_: UnicodeDecodeError) -> Response[dict[str, Any]]:
    return error_response(HTTPStatus.BAD_REQUEST, "body: not valid UTF-8 (send a JSON document)")


@app.not_found
def _no_route(_: NotFoundError) -> Response[dict[str, Any]]:
    event = app.current_event
    return error_response(HTTPStatus.NOT_FOUND, f"no route {event.http_method} {event.path}")


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response[dict[str, Any]]:
    logger.exception("unexpected error")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


# ---- entry point -----------------------------------------------------------------------------------
# Never capture the response or an error as X-Ray metadata: POST /api-tokens answers with a new
# token's value, and an error can carry request data.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    load_routes()
    from admin_api.access import reject_before_routing, too_deep  # loaded with the routes (cold start)
    from admin_api.cors import with_cors

    response = with_cors(
        event, reject_before_routing(event) or too_deep(event) or app.resolve(event, context)
    )
    status = int(response["statusCode"])
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    if status >= 400:
        metrics.add_metric(
            name="ServerErrors" if status >= 500 else "ClientErrors", unit=MetricUnit.Count, value=1
        )
    logger.info(
        "request handled",
        extra={"method": event.get("httpMethod"), "resource": event.get("resource"), "status": status},
    )
    return response
