"""The ``/models`` routes: parse, call ``admin_api.models.ModelService``, shape the response."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import RootModel

from admin_api.models import (
    MAX_LIMIT,
    DryRunResponse,
    ModelChangeResponse,
    ModelDetailResponse,
    model_view,
)
from admin_api.resolver import app, metrics
from admin_api.responses import json_response
from admin_api.routes.common import caller, error_docs, ok_docs
from admin_api.wiring import service
from lisa_domain.auth import Principal
from lisa_domain.registry import Page
from lisa_domain.schema import (
    CreateModelRequest,
    ModelId,
    ModelListResponse,
    UpdateModelRequest,
)

#: ``?dryRun=true``: every check of the real request, nothing written or started (200 with the plan).
DryRun = Annotated[
    bool,
    Query(
        alias="dryRun",
        description="Check only: answers 200 with what would be done (dryRun, model, and wouldCreate or "
        "wouldUpdate), or the error the request would get; writes nothing, starts nothing.",
    ),
]


class UpdateAnswer(RootModel[ModelChangeResponse | DryRunResponse]):
    """``PUT /models/{modelId}``'s 200: the model, or with ``?dryRun=true`` the plan."""


def _list_body(page: Page, principal: Principal) -> dict[str, Any]:
    body: dict[str, Any] = {"models": [model_view(principal, record) for record in page.models]}
    if page.next_token:
        body["nextToken"] = page.next_token
    return body


@app.post(
    "/models",
    summary="Register a model",
    description="Admins only. Stores the model in Creating and starts the create workflow. "
    "An apiKey goes to Secrets Manager; responses never include it. A self-hosted model whose "
    "instanceType is not offered in the model subnets' zones, or whose autoScalingConfig.maxCapacity "
    "the account's On-Demand vCPU quota cannot hold, is refused with 400 at once. Each fallbacks entry "
    "must name an existing model of the same modelType (400 naming the entry otherwise); a fallback not "
    "open to every group the model is open to is accepted with a warning. A model whose id other models "
    "still list as a fallback is created with a warning about each of them whose callers it is not open "
    "to or whose modelType it does not have. ?dryRun=true: checks only.",
    responses={
        **ok_docs("The model, in Creating (and warnings about its fallbacks)", ModelChangeResponse, 201),
        **ok_docs("?dryRun=true: what would be created", DryRunResponse),
        **error_docs(400, 401, 403, 409, 422, 502, 503),
    },
)
def create_model(body: CreateModelRequest, dry_run: DryRun = False) -> Response[dict[str, Any]]:
    if dry_run:
        return json_response(HTTPStatus.OK, service().plan_create(caller(), body))
    change = service().create(caller(), body)
    metrics.add_metric(name="ModelCreateStarted", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.CREATED, change.body())


@app.get(
    "/models",
    summary="List models",
    description="Any authenticated user; non-admins see only models open to their groups, and only "
    "their summary (ModelSummary: no deployment details). Without limit, every such model (from "
    "nextToken on) in one answer, as LISA lists them; with limit, one page, and nextToken is absent on "
    "the last page. "
    "A stored model that is not a valid record is skipped (and counted in MalformedModelRecords).",
    responses={**ok_docs("One page of models", ModelListResponse), **error_docs(400, 401, 422)},
)
def list_models(
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_LIMIT, description="Page size (absent: every model)")
    ] = None,
    next_token: Annotated[
        str | None, Query(alias="nextToken", description="The nextToken of the previous page")
    ] = None,
) -> Response[dict[str, Any]]:
    principal = caller()
    page = service().list_models(principal, limit, next_token)
    if page.skipped:
        metrics.add_metric(name="MalformedModelRecords", unit=MetricUnit.Count, value=page.skipped)
    return json_response(HTTPStatus.OK, _list_body(page, principal))


@app.get(
    "/models/<modelId>",
    summary="Get a model",
    description="Any authenticated user; a model not open to the caller's groups is reported as 404. "
    "Admins see the full record with its statusHistory (oldest first; the list leaves it out); "
    "non-admins see the model's summary (ModelSummary: no deployment details).",
    responses={**ok_docs("The model", ModelDetailResponse), **error_docs(401, 404, 422)},
)
def get_model(modelId: Annotated[ModelId, Path()]) -> Response[dict[str, Any]]:
    return json_response(HTTPStatus.OK, {"model": service().detail(caller(), modelId)})


@app.put(
    "/models/<modelId>",
    summary="Update, stop or start a model",
    description="Admins only. {'enabled': false} stops (from InService), {'enabled': true} starts "
    "(from Stopped); other changes from InService or Stopped. Starts the update workflow. An "
    "allowedGroups change that takes access away applies at once; additions when the workflow finishes. "
    "A fallbacks change is metadata only (no redeployment); its entries are checked as on create.",
    responses={
        **ok_docs(
            "The model, in Updating, Stopping or Starting; with ?dryRun=true, what would be updated",
            UpdateAnswer,
        ),
        **error_docs(400, 401, 403, 404, 409, 422, 502, 503),
    },
)
def update_model(
    modelId: Annotated[ModelId, Path()], body: UpdateModelRequest, dry_run: DryRun = False
) -> Response[dict[str, Any]]:
    if dry_run:
        return json_response(HTTPStatus.OK, service().plan_update(caller(), modelId, body))
    change = service().update(caller(), modelId, body)
    metrics.add_metric(name="ModelUpdateStarted", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, change.body())


@app.delete(
    "/models/<modelId>",
    summary="Delete a model",
    description="Admins only; from InService, Stopped or Failed. Answers 200 with the model in "
    "Deleting; the delete workflow removes it. Models that name it as a fallback keep the entry "
    "(requests skip it); the answer's warnings name them.",
    responses={
        **ok_docs(
            "The model, in Deleting (and warnings about models that fall back to it)", ModelChangeResponse
        ),
        **error_docs(401, 403, 404, 409, 422, 502, 503),
    },
)
def delete_model(modelId: Annotated[ModelId, Path()]) -> Response[dict[str, Any]]:
    change = service().delete(caller(), modelId)
    metrics.add_metric(name="ModelDeleteStarted", unit=MetricUnit.Count, value=1)
    return json_response(HTTPStatus.OK, change.body())
