"""Admin API Lambda (API Gateway REST proxy): parse, call ``admin_api.models`` / ``admin_api.tokens``,
shape the response.

Errors have one shape everywhere, the one API Gateway itself uses for its own 401/403 answers plus
the status code: ``{"message": "...", "statusCode": 409}``; schema errors (422) also list each
problem under ``errors`` as ``{"field": "body.modelId", "message": "..."}``. Request bodies and
credentials are never logged; invalid input is never echoed back.
"""

import base64
import binascii
import json
import os
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from admin_api import tokens as token_logic
from admin_api.model_url import ModelUrlPolicy
from admin_api.models import DEFAULT_LIMIT, MAX_LIMIT, ModelService, model_view
from admin_api.tokens import (
    CreatedTokenResponse,
    CreateTokenRequest,
    TokenListResponse,
    TokenResponse,
    TokenService,
    TokenSettings,
    check_may_create,
    token_body,
)
from lisa_domain.auth import Principal, principal_from_context
from lisa_domain.errors import Forbidden, LisaError, Unauthorized, ValidationFailed
from lisa_domain.json_depth import check_json_depth
from lisa_domain.registry import ModelRegistry, Page
from lisa_domain.schema import (
    CreateModelRequest,
    ModelId,
    ModelListResponse,
    ModelRecord,
    ModelResponse,
    UpdateModelRequest,
)
from lisa_domain.secrets import ModelSecrets
from lisa_domain.settings import settings
from lisa_domain.tokens import TokenPage, TokenStore
from lisa_domain.workflows import Workflow, WorkflowStarter

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lisa-admin-api"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LISA"))
tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lisa-admin-api"))

app = APIGatewayRestResolver(enable_validation=True)

#: Methods a non-admin may call; every other method is admin-only (checked before validation, so a
#: non-admin gets 403 whatever the body) except on the token routes below.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKENS_RESOURCE = "/api-tokens"
TOKEN_RESOURCE = "/api-tokens/{tokenId}"


# ---- wiring (lazy, once per container; tests call reset() after changing the environment) --------
_service: ModelService | None = None
_token_service: TokenService | None = None
_token_settings: TokenSettings | None = None


def service() -> ModelService:
    global _service
    if _service is None:
        config = settings()
        _service = ModelService(
            registry=ModelRegistry(config.models_table),
            secrets=ModelSecrets(config.model_secret_prefix),
            workflows=WorkflowStarter(
                {
                    Workflow.CREATE: config.create_state_machine_arn,
                    Workflow.UPDATE: config.update_state_machine_arn,
                    Workflow.DELETE: config.delete_state_machine_arn,
                },
                poll_seconds=config.workflow_poll_seconds,
                max_polls=config.workflow_max_polls,
            ),
            url_policy=ModelUrlPolicy.from_config(
                config.model_url_allow_http, config.model_url_allowed_cidrs
            ),
        )
    return _service


def token_settings() -> TokenSettings:
    global _token_settings
    if _token_settings is None:
        _token_settings = TokenSettings.from_env()
    return _token_settings


def token_service() -> TokenService:
    global _token_service
    if _token_service is None:
        _token_service = TokenService(TokenStore(settings().tokens_table), token_settings())
    return _token_service


def reset() -> None:
    """Forget the wired singletons (and the cached settings) so the next request rebuilds them."""
    global _service, _token_service, _token_settings
    _service = None
    _token_service = None
    _token_settings = None
    settings.cache_clear()


# ---- response shapes -------------------------------------------------------------------------------
class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. body.modelId or query.limit")
    message: str


class ErrorResponse(BaseModel):
    message: str = Field(description="What went wrong; names the offending field for invalid input")
    statusCode: int
    errors: list[FieldError] | None = Field(default=None, description="Schema errors (422 only)")


def _json_content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"model": model}}


_TOKEN_ERRORS = {
    403: "Not allowed: creating tokens needs the admin or API group (see the message)",
    404: "No such token (or not the caller's)",
}


def _errors(*codes: int, overrides: dict[int, str] | None = None) -> dict[int, Any]:
    descriptions = (
        (overrides or {})
        | {
            400: "Invalid input that breaks a rule of the API (the message names the field)",
            401: "Missing or invalid credentials",
            403: "Only administrators may do this",
            404: "No such model (or not visible to the caller)",
            409: "Conflict: the model exists, is in the wrong state, or changed concurrently",
            422: "The request does not match the schema (the message names each field)",
            502: "A workflow or AWS service could not be reached; nothing was changed",
            503: "The model registry stayed busy (concurrent changes, throttling); nothing was changed, "
            "try again",
        }
        | (overrides or {})
    )
    return {
        code: {"description": descriptions[code], "content": _json_content(ErrorResponse)} for code in codes
    }


def _ok(description: str, model: type[BaseModel], status: int = 200) -> dict[int, Any]:
    return {status: {"description": description, "content": _json_content(model)}}


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    # The routes are annotated Response[dict[str, Any]] (not the pydantic response models): Powertools
    # validates a route's return value against its annotation *after* the route ran, and a failure
    # there would answer 422 for a request whose changes were already made. The documented response
    # schemas come from each route's ``responses``.
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def _error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"message": message, "statusCode": status}
    if errors:
        body["errors"] = errors
    return _json(status, body)


def _model_body(record: ModelRecord) -> dict[str, Any]:
    return {"model": record.model_dump(mode="json")}


def _list_body(page: Page, principal: Principal) -> dict[str, Any]:
    body: dict[str, Any] = {"models": [model_view(principal, record) for record in page.models]}
    if page.next_token:
        body["nextToken"] = page.next_token
    return body


def _token_list_body(page: TokenPage) -> dict[str, Any]:
    body: dict[str, Any] = {"tokens": [token_body(record) for record in page.tokens]}
    if page.next_token:
        body["nextToken"] = page.next_token
    return body


def _principal() -> Principal:
    return principal_from_context(app.current_event.raw_event.get("requestContext", {}).get("authorizer"))


# ---- routes ----------------------------------------------------------------------------------------
@app.post(
    "/models",
    summary="Register a model",
    description="Admins only. Stores the model in Creating and starts the create workflow. "
    "An apiKey goes to Secrets Manager; responses never include it.",
    responses={
        **_ok("The model, in Creating", ModelResponse, 201),
        **_errors(400, 401, 403, 409, 422, 502, 503),
    },
)
def create_model(body: CreateModelRequest) -> Response[dict[str, Any]]:
    record = service().create(_principal(), body)
    metrics.add_metric(name="ModelCreateStarted", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.CREATED, _model_body(record))


@app.get(
    "/models",
    summary="List models",
    description="Any authenticated user; non-admins see only models open to their groups, and only "
    "their summary (ModelSummary: no deployment details). nextToken is absent on the last page. "
    "A stored model that is not a valid record is skipped (and counted in MalformedModelRecords).",
    responses={**_ok("One page of models", ModelListResponse), **_errors(400, 401, 422)},
)
def list_models(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    next_token: Annotated[
        str | None, Query(alias="nextToken", description="The nextToken of the previous page")
    ] = None,
) -> Response[dict[str, Any]]:
    principal = _principal()
    page = service().list_models(principal, limit, next_token)
    if page.skipped:
        metrics.add_metric(name="MalformedModelRecords", unit=MetricUnit.Count, value=page.skipped)
    return _json(HTTPStatus.OK, _list_body(page, principal))


@app.get(
    "/models/<modelId>",
    summary="Get a model",
    description="Any authenticated user; a model not open to the caller's groups is reported as 404. "
    "Non-admins see the model's summary (ModelSummary: no deployment details).",
    responses={**_ok("The model", ModelResponse), **_errors(401, 404, 422)},
)
def get_model(modelId: Annotated[ModelId, Path()]) -> Response[dict[str, Any]]:
    principal = _principal()
    return _json(HTTPStatus.OK, {"model": model_view(principal, service().get(principal, modelId))})


@app.put(
    "/models/<modelId>",
    summary="Update, stop or start a model",
    description="Admins only. {'enabled': false} stops (from InService), {'enabled': true} starts "
    "(from Stopped); other changes from InService or Stopped. Starts the update workflow. An "
    "allowedGroups change that takes access away applies at once; additions when the workflow finishes.",
    responses={
        **_ok("The model, in Updating, Stopping or Starting", ModelResponse),
        **_errors(400, 401, 403, 404, 409, 422, 502, 503),
    },
)
def update_model(modelId: Annotated[ModelId, Path()], body: UpdateModelRequest) -> Response[dict[str, Any]]:
    record = service().update(_principal(), modelId, body)
    metrics.add_metric(name="ModelUpdateStarted", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.OK, _model_body(record))


@app.delete(
    "/models/<modelId>",
    summary="Delete a model",
    description="Admins only; from InService, Stopped or Failed. Answers 200 with the model in "
    "Deleting; the delete workflow removes it.",
    responses={
        **_ok("The model, in Deleting", ModelResponse),
        **_errors(401, 403, 404, 409, 422, 502, 503),
    },
)
def delete_model(modelId: Annotated[ModelId, Path()]) -> Response[dict[str, Any]]:
    record = service().delete(_principal(), modelId)
    metrics.add_metric(name="ModelDeleteStarted", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.OK, _model_body(record))


@app.post(
    "/api-tokens",
    summary="Create an API token",
    description="Admins: for any user, with any groups. Members of the API group (API_GROUP), signed in "
    "with the identity provider: for themselves, with a subset of their own groups. tokenExpiration "
    "(Unix seconds) defaults to and may not exceed TOKEN_MAX_LIFETIME_DAYS days from now. The token "
    "value is in this response only; LISA stores its SHA-256 hash.",
    responses={
        **_ok("The token, with its value (shown once)", CreatedTokenResponse, 201),
        **_errors(400, 401, 403, 422, overrides=_TOKEN_ERRORS),
    },
)
def create_token(body: CreateTokenRequest) -> Response[dict[str, Any]]:
    value, record = token_service().create(_principal(), body)
    metrics.add_metric(name="ApiTokenCreated", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.CREATED, {"token": value, **token_body(record)})


@app.get(
    "/api-tokens",
    summary="List API tokens",
    description="The caller's own tokens; admins see every token (or one user's with username). "
    "Values are never listed. nextToken is absent on the last page.",
    responses={**_ok("One page of tokens", TokenListResponse), **_errors(400, 401, 403, 422)},
)
def list_tokens(
    limit: Annotated[int, Query(ge=1, le=token_logic.MAX_LIMIT, description="Page size")] = (
        token_logic.DEFAULT_LIMIT
    ),
    next_token: Annotated[
        str | None, Query(alias="nextToken", description="The nextToken of the previous page")
    ] = None,
    username: Annotated[
        str | None, Query(description="Admins only: list this user's tokens", max_length=256)
    ] = None,
) -> Response[dict[str, Any]]:
    page = token_service().list_tokens(_principal(), limit, next_token, username)
    return _json(HTTPStatus.OK, _token_list_body(page))


@app.get(
    "/api-tokens/<tokenId>",
    summary="Get an API token",
    description="The caller's own token (any token for admins); others' are reported as 404. "
    "The value is never returned.",
    responses={**_ok("The token", TokenResponse), **_errors(401, 404, overrides=_TOKEN_ERRORS)},
)
def get_token(tokenId: Annotated[str, Path()]) -> Response[dict[str, Any]]:
    return _json(HTTPStatus.OK, token_body(token_service().get(_principal(), tokenId)))


@app.delete(
    "/api-tokens/<tokenId>",
    summary="Revoke an API token",
    description="The caller's own token (any token for admins); others' are reported as 404. The token "
    "stops working at once on the serve API and within the authorizer cache TTL on this API.",
    responses={**_ok("The revoked token", TokenResponse), **_errors(401, 404, overrides=_TOKEN_ERRORS)},
)
def revoke_token(tokenId: Annotated[str, Path()]) -> Response[dict[str, Any]]:
    record = token_service().revoke(_principal(), tokenId)
    metrics.add_metric(name="ApiTokenRevoked", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.OK, token_body(record))


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
    return _error(HTTPStatus.UNPROCESSABLE_ENTITY, f"Invalid request: {summary}", problems)


@app.exception_handler(LisaError)
def _domain_error(error: LisaError) -> Response[dict[str, Any]]:
    if error.status_code >= 500:
        logger.warning("request failed", extra={"error": type(error).__name__})
    return _error(error.status_code, str(error))


@app.exception_handler(UnicodeDecodeError)
def _undecodable_body(_: UnicodeDecodeError) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.BAD_REQUEST, "body: not valid UTF-8 (send a JSON document)")


@app.not_found
def _no_route(_: NotFoundError) -> Response[dict[str, Any]]:
    event = app.current_event
    return _error(HTTPStatus.NOT_FOUND, f"no route {event.http_method} {event.path}")


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response[dict[str, Any]]:
    logger.exception("unexpected error")
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


# ---- entry point -----------------------------------------------------------------------------------
def _resource(event: dict[str, Any]) -> str:
    """The route template (API Gateway's ``resource``; derived from ``path`` when absent)."""
    resource = event.get("resource")
    if isinstance(resource, str) and resource:
        return resource
    segments = str(event.get("path") or "").strip("/").split("/")
    if segments[0] == TOKENS_RESOURCE.strip("/"):
        return TOKENS_RESOURCE if len(segments) == 1 else TOKEN_RESOURCE
    return str(event.get("path") or "")


def _non_admin_may_proceed(principal: Principal, method: str, resource: str) -> None:
    """Forbidden unless a non-admin may send ``method`` to ``resource`` (the logic checks the rest)."""
    if method in READ_METHODS:
        return
    if resource == TOKENS_RESOURCE and method == "POST":
        check_may_create(principal, token_settings())
        return
    if resource == TOKEN_RESOURCE and method == "DELETE":
        return  # one's own token; others' are 404
    raise Forbidden("only administrators may change models")


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(str(body))
    except (binascii.Error, ValueError):
        return b""  # not base64: the resolver reports the body


def _too_deep(event: dict[str, Any]) -> dict[str, Any] | None:
    """400 for a body nested too deeply to parse safely (``json.loads`` would hit the recursion limit)."""
    try:
        check_json_depth(_body_bytes(event))
    except ValidationFailed as error:
        return _raw_error(HTTPStatus.BAD_REQUEST, str(error))
    return None


def _raw_error(status: HTTPStatus, message: str) -> dict[str, Any]:
    """An error in API Gateway's proxy response shape, for answers given before routing."""
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps({"message": message, "statusCode": int(status)}),
        "isBase64Encoded": False,
    }


def _reject_before_routing(event: dict[str, Any]) -> dict[str, Any] | None:
    """401/403 before any parsing: callers must be authenticated, and only admins may change things
    (except their own API tokens)."""
    try:
        principal = principal_from_context((event.get("requestContext") or {}).get("authorizer"))
    except Unauthorized:
        status, message = HTTPStatus.UNAUTHORIZED, "Unauthorized"
    else:
        logger.append_keys(username=principal.username, auth_method=principal.method)
        if principal.is_admin:
            return None
        try:
            _non_admin_may_proceed(principal, str(event.get("httpMethod", "")).upper(), _resource(event))
        except Forbidden as error:
            status, message = HTTPStatus.FORBIDDEN, str(error)
        else:
            return None
    return _raw_error(status, message)


# Never capture the response or an error as X-Ray metadata: POST /api-tokens answers with a new
# token's value, and an error can carry request data.
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = _reject_before_routing(event) or _too_deep(event) or app.resolve(event, context)
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
