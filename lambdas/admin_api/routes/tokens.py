"""The ``/api-tokens`` routes: parse, call ``admin_api.tokens.TokenService``, shape the response."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from admin_api import tokens as token_logic
from admin_api.resolver import app, metrics
from admin_api.responses import json_response
from admin_api.routes.common import caller, error_docs, ok_docs
from admin_api.tokens import (
    CreatedTokenResponse,
    CreateTokenRequest,
    TokenListResponse,
    TokenResponse,
    token_body,
)
from admin_api.wiring import token_service
from lisa_domain.tokens import TokenPage

_TOKEN_ERRORS = {
    403: "Not allowed: creating tokens needs the admin or API group (see the message)",
    404: "No such token (or not the caller's)",
}


def _token_list_body(page: TokenPage) -> dict[str, Any]:
    body: dict[str, Any] = {"tokens": [token_body(record) for record in page.tokens]}
    if page.next_token:
        body["nextToken"] = page.next_token
    return body


@app.post(
    "/api-tokens",
    summary="Create an API token",
    description="Admins: for any user, with any groups. Members of the API group (API_GROUP), signed in "
    "with the identity provider: for themselves, with a subset of their own groups. tokenExpiration "
    "(Unix seconds) defaults to and may not exceed TOKEN_MAX_LIFETIME_DAYS days from now. The token "
    "value is in this response only; LISA stores its SHA-256 hash.",
    responses={
        **ok_docs("The token, with its value (shown once)", CreatedTokenResponse, 201),
        **error_docs(400, 401, 403, 422, overrides=_TOKEN_ERRORS),
    },
)
def create_token(body: CreateTokenRequest) -> Response[dict[str, Any]]:
    value, record = token_service().create(caller(), body)
    metrics.add_metric(name="ApiTokenCreated", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.CREATED, {"token": value, **token_body(record)})


@app.get(
    "/api-tokens",
    summary="List API tokens",
    description="The caller's own tokens; admins see every token (or one user's with username). "
    "Values are never listed. nextToken is absent on the last page.",
    responses={**ok_docs("One page of tokens", TokenListResponse), **error_docs(400, 401, 403, 422)},
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
    page = token_service().list_tokens(caller(), limit, next_token, username)
    return json_response(HTTPStatus.OK, _token_list_body(page))


@app.get(
    "/api-tokens/<tokenId>",
    summary="Get an API token",
    description="The caller's own token (any token for admins); others' are reported as 404. "
    "The value is never returned.",
    responses={**ok_docs("The token", TokenResponse), **error_docs(401, 404, overrides=_TOKEN_ERRORS)},
)
def get_token(tokenId: Annotated[str, Path()]) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.OK, token_body(token_service().get(caller(), tokenId)))


@app.delete(
    "/api-tokens/<tokenId>",
    summary="Revoke an API token",
    description="The caller's own token (any token for admins); others' are reported as 404. The token "
    "stops working at once on the serve API and within the authorizer cache TTL on this API.",
    responses={
        **ok_docs("The revoked token", TokenResponse),
        **error_docs(401, 404, overrides=_TOKEN_ERRORS),
    },
)
def revoke_token(tokenId: Annotated[str, Path()]) -> Response[dict[str, Any]]:
    record = token_service().revoke(caller(), tokenId)
    metrics.add_metric(name="ApiTokenRevoked", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, token_body(record))
