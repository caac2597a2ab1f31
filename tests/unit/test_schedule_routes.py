"""LISA's schedule routes through the real admin handler on moto: shapes, rules, auth."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lisa_domain.cost_control import CostControlStore, ScheduleState
from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import ModelStatus
from local_mode.resources import LocalResources
from tests.support.lisa_payloads import BEDROCK_MODEL, VLLM_MODEL
from tests.unit.conftest import Workflows
from tests.unit.helpers import USER_A, USER_B
from tests.unit.test_admin_api import call, seed, table_items

MODEL = "scheduled-llm"
SCHEDULE = {
    "scheduleType": "RECURRING",
    "recurringSchedule": {"startTime": "08:00", "stopTime": "18:00"},
    "timezone": "Europe/Berlin",
}
DAILY = {"scheduleType": "DAILY", "dailySchedule": {"monday": {"startTime": "22:00", "stopTime": "02:00"}}}


def _seed_vllm(resources: LocalResources, status: ModelStatus = ModelStatus.IN_SERVICE) -> None:
    seed(resources, MODEL, status, body=copy.deepcopy(VLLM_MODEL), allowed_groups=["team-a"])


def _item(resources: LocalResources) -> dict[str, Any]:
    return ModelRegistry(resources.models_table).get_item(MODEL)


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_admin_sets_a_schedule_and_everyone_who_sees_the_model_reads_it(
    resources: LocalResources, workflows: Workflows, method: str
) -> None:
    _seed_vllm(resources)
    status, body = call(method, f"/models/{MODEL}/schedule", body=SCHEDULE)
    assert (status, body) == (
        200,
        {"message": "Schedule updated successfully", "modelId": MODEL, "scheduleEnabled": True},
    )
    assert workflows.count() == 0  # a schedule starts nothing by itself; the evaluator acts
    stored = _item(resources)
    assert stored["autoScalingConfig"]["scheduling"] == SCHEDULE
    assert stored["status"] == "InService" and stored["scheduleState"]["failed"] is False

    status, body = call("GET", f"/models/{MODEL}/schedule", principal=USER_A)
    assert status == 200 and body["modelId"] == MODEL
    assert body["scheduling"]["recurringSchedule"] == SCHEDULE["recurringSchedule"]
    assert body["scheduling"]["scheduleEnabled"] is True
    assert body["nextScheduledAction"]["action"] in {"START", "STOP"}
    assert body["nextScheduledAction"]["scheduledTime"].endswith("Z")

    status, body = call("GET", f"/models/{MODEL}/schedule/status", principal=USER_A)
    assert status == 200
    assert {
        key: body[key]
        for key in (
            "scheduleEnabled",
            "scheduleConfigured",
            "lastScheduleFailed",
            "scheduleStatus",
            "scheduleType",
            "timezone",
        )
    } == {
        "scheduleEnabled": True,
        "scheduleConfigured": True,
        "lastScheduleFailed": False,
        "scheduleStatus": "ACTIVE",
        "scheduleType": "RECURRING",
        "timezone": "Europe/Berlin",
    }
    assert body["lastScheduleUpdate"] and body["lastScheduleFailure"] is None

    # The model itself shows it where LISA keeps it.
    status, body = call("GET", f"/models/{MODEL}")
    assert body["model"]["autoScalingConfig"]["scheduling"]["scheduleType"] == "RECURRING"


def test_writes_are_for_admins_only_and_reads_follow_model_visibility(
    resources: LocalResources, workflows: Workflows
) -> None:
    _seed_vllm(resources)
    before = table_items(resources)
    for method in ("PUT", "POST"):
        assert call(method, f"/models/{MODEL}/schedule", body=SCHEDULE, principal=USER_A)[0] == 403
    assert call("DELETE", f"/models/{MODEL}/schedule", principal=USER_A)[0] == 403
    assert table_items(resources) == before
    for path in (f"/models/{MODEL}/schedule", f"/models/{MODEL}/schedule/status"):
        assert call("GET", path, principal=USER_B)[0] == 404  # not in team-a: no existence leak
        assert call("GET", path, principal=None)[0] == 401


def test_unknown_model_is_404_and_wrong_kind_or_status_is_409(
    resources: LocalResources, workflows: Workflows
) -> None:
    assert call("PUT", "/models/nope/schedule", body=SCHEDULE)[0] == 404
    assert call("GET", "/models/nope/schedule/status")[0] == 404
    seed(resources, "bedrock", body=BEDROCK_MODEL)
    status, body = call("PUT", "/models/bedrock/schedule", body=SCHEDULE)
    assert status == 409 and "not self-hosted" in body["message"]
    for state in (ModelStatus.CREATING, ModelStatus.STARTING, ModelStatus.FAILED):
        seed(resources, f"m-{state.value.lower()}", state, body=copy.deepcopy(VLLM_MODEL))
        status, body = call("PUT", f"/models/m-{state.value.lower()}/schedule", body=SCHEDULE)
        assert status == 409 and "InService or Stopped" in body["message"]
    seed(resources, "stopped", ModelStatus.STOPPED, body=copy.deepcopy(VLLM_MODEL))
    assert call("PUT", "/models/stopped/schedule", body=DAILY)[0] == 200


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (
            {**SCHEDULE, "recurringSchedule": {"startTime": "8:00", "stopTime": "09:59"}},
            "body.RECURRING.recurringSchedule",
        ),
        (
            {**SCHEDULE, "recurringSchedule": {"startTime": "25:00", "stopTime": "09:00"}},
            "body.RECURRING.recurringSchedule.startTime",
        ),
        ({**SCHEDULE, "timezone": "Nowhere/City"}, "body.RECURRING.timezone"),
        ({"scheduleType": "DAILY", "dailySchedule": {}}, "body.DAILY.dailySchedule"),
        (
            {"scheduleType": "DAILY", "dailySchedule": {"monday": {"startTime": "09:00"}}},
            "body.DAILY.dailySchedule.monday.stopTime",
        ),
    ],
)
def test_invalid_schedules_are_422_naming_the_field_and_write_nothing(
    resources: LocalResources, workflows: Workflows, schedule: dict[str, Any], field: str
) -> None:
    _seed_vllm(resources)
    before = table_items(resources)
    status, body = call("PUT", f"/models/{MODEL}/schedule", body=schedule)
    assert status == 422
    assert field in {problem["field"] for problem in body["errors"]}, body
    assert table_items(resources) == before


def test_delete_removes_the_schedule_and_leaves_the_model_as_it_is(
    resources: LocalResources, workflows: Workflows
) -> None:
    _seed_vllm(resources, ModelStatus.STOPPED)
    assert call("PUT", f"/models/{MODEL}/schedule", body=DAILY)[0] == 200
    status, body = call("DELETE", f"/models/{MODEL}/schedule")
    assert (status, body) == (
        200,
        {"message": "Schedule deleted successfully", "modelId": MODEL, "scheduleEnabled": False},
    )
    assert _item(resources)["autoScalingConfig"].get("scheduling") is None
    assert _item(resources)["status"] == "Stopped" and workflows.count() == 0
    status, body = call("GET", f"/models/{MODEL}/schedule/status")
    assert (body["scheduleStatus"], body["scheduleEnabled"], body["nextScheduledAction"]) == (
        "DISABLED",
        False,
        None,
    )
    assert call("GET", f"/models/{MODEL}/schedule")[1] == {
        "modelId": MODEL,
        "scheduling": {},
        "nextScheduledAction": None,
    }


def test_the_evaluator_never_overwrites_the_state_of_a_schedule_replaced_meanwhile(
    resources: LocalResources, workflows: Workflows
) -> None:
    _seed_vllm(resources)
    store = CostControlStore(resources.models_table)
    assert store.save_schedule_state(MODEL, ScheduleState(handledAt=1))  # a create-time schedule
    assert call("PUT", f"/models/{MODEL}/schedule", body=SCHEDULE)[0] == 200
    fresh = _item(resources)["scheduleState"]
    assert "handledAt" not in fresh and fresh["updatedAt"]
    assert not store.save_schedule_state(MODEL, ScheduleState(handledAt=2))  # read before the PUT
    assert _item(resources)["scheduleState"] == fresh
    assert store.save_schedule_state(MODEL, ScheduleState(updatedAt=fresh["updatedAt"], handledAt=3))
    assert _item(resources)["scheduleState"]["handledAt"] == 3
