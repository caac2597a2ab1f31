"""LISA's schedule routes (``/models/{modelId}/schedule``): ``scheduler.schedules.ScheduleService``.

Writes (PUT, POST, DELETE) are for administrators; reads for anyone who may see the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from scheduler.schedules import (
    GetScheduleResponse,
    GetScheduleStatusResponse,
    ScheduleService,
    UpdateScheduleResponse,
)

from admin_api.resolver import app
from admin_api.responses import json_response
from admin_api.routes.common import caller, error_docs, ok_docs
from admin_api.wiring import service
from lisa_domain.schedule import SchedulingConfig
from lisa_domain.schema import ModelId

_SET_DESCRIPTION = (
    "Admins only. Creates or replaces the model's schedule (LISA's SchedulingConfig): DAILY "
    "(dailySchedule: monday ... sunday, at least one) or RECURRING (recurringSchedule), each window "
    "{startTime, stopTime} in HH:MM, stopTime at least 2 hours after startTime (earlier: the next day), "
    "timezone an IANA name (default UTC). Only a self-hosted model that is InService or Stopped. Within "
    "two minutes of each window's start the model is started, of its end stopped (docs/cost-control.md)."
)


def schedules() -> ScheduleService:
    return ScheduleService(service().registry)


def _now() -> datetime:
    return datetime.now(UTC)


def _set(model_id: str, body: Any) -> Response[dict[str, Any]]:
    answer = schedules().set(caller(), model_id, body, _now())
    return json_response(HTTPStatus.OK, answer.model_dump(mode="json"))


_SET_RESPONSES = {
    **ok_docs("The schedule is set", UpdateScheduleResponse),
    **error_docs(400, 401, 403, 404, 409, 422, 503),
}
ScheduleBody = Annotated[SchedulingConfig, Body(description="LISA's SchedulingConfig")]


@app.put(
    "/models/<modelId>/schedule",
    summary="Set a model's schedule",
    description=_SET_DESCRIPTION,
    responses=_SET_RESPONSES,
)
def put_schedule(modelId: Annotated[ModelId, Path()], body: ScheduleBody) -> Response[dict[str, Any]]:
    return _set(modelId, body)


@app.post(
    "/models/<modelId>/schedule",
    summary="Set a model's schedule (as PUT)",
    description=_SET_DESCRIPTION,
    responses=_SET_RESPONSES,
)
def post_schedule(modelId: Annotated[ModelId, Path()], body: ScheduleBody) -> Response[dict[str, Any]]:
    return _set(modelId, body)


@app.get(
    "/models/<modelId>/schedule",
    summary="Get a model's schedule",
    description="Any authenticated user who may see the model. scheduling is {} when none is set.",
    responses={**ok_docs("The schedule", GetScheduleResponse), **error_docs(401, 404, 422)},
)
def get_schedule(modelId: Annotated[ModelId, Path()]) -> Response[dict[str, Any]]:
    answer = schedules().get(caller(), modelId, _now())
    return json_response(HTTPStatus.OK, answer.model_dump(mode="json"))


@app.get(
    "/models/<modelId>/schedule/status",
    summary="Get a model's schedule status",
    description="Any authenticated user who may see the model. scheduleStatus: ACTIVE, FAILED (the last "
    "scheduled start or stop failed; it is retried every minute) or DISABLED (no schedule).",
    responses={**ok_docs("The schedule's status", GetScheduleStatusResponse), **error_docs(401, 404, 422)},
)
def get_schedule_status(modelId: Annotated[ModelId, Path()]) -> Response[dict[str, Any]]:
    answer = schedules().status(caller(), modelId, _now())
    return json_response(HTTPStatus.OK, answer.model_dump(mode="json"))


@app.delete(
    "/models/<modelId>/schedule",
    summary="Delete a model's schedule",
    description="Admins only. The model stays as it is (running or stopped).",
    responses={
        **ok_docs("The schedule is gone", UpdateScheduleResponse),
        **error_docs(401, 403, 404, 409, 422, 503),
    },
)
def delete_schedule(modelId: Annotated[ModelId, Path()]) -> Response[dict[str, Any]]:
    answer = schedules().delete(caller(), modelId, _now())
    return json_response(HTTPStatus.OK, answer.model_dump(mode="json"))
