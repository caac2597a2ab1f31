"""LISA's model metadata routes: the instance types a model may use, and setting a context window."""

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path

from admin_api.resolver import app
from admin_api.responses import json_response
from admin_api.routes.common import caller, error_docs, ok_docs
from admin_api.wiring import service
from lisa_domain.instance_types import instance_types
from lisa_domain.schema import ModelId, ModelResponse, UpdateContextWindowRequest


@app.get(
    "/models/metadata/instances",
    summary="List instance types",
    description="Any authenticated user. Every EC2 instance type a self-hosted model's instanceType "
    "accepts, as a JSON list of names (as LISA answers). Types with NVIDIA GPUs get all of them; "
    "the container of any other type runs without a GPU.",
    responses={
        200: {
            "description": "The instance type names",
            "content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}},
        },
        **error_docs(401),
    },
)
def list_instance_types() -> Response[list[str]]:
    return Response(
        status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=list(instance_types())
    )


@app.put(
    "/models/<modelId>/context-window",
    summary="Set a model's context window",
    description="Admins only. Sets contextWindow (maximum input tokens), for example when registration "
    "could not tell it. Any status except Deleting; no workflow runs and the status stays. The serve "
    "API's /model/info shows it as max_input_tokens.",
    responses={**ok_docs("The model", ModelResponse), **error_docs(401, 403, 404, 409, 422, 503)},
)
def set_context_window(
    modelId: Annotated[ModelId, Path()], body: UpdateContextWindowRequest
) -> Response[dict[str, Any]]:
    record = service().set_context_window(caller(), modelId, body.contextWindow)
    return json_response(HTTPStatus.OK, {"model": record.model_dump(mode="json")})
