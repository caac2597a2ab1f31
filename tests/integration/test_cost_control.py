"""Cost control through the real update workflow (ASL in moto, real steps): schedules, idle stop,
start on request, failure recording. The evaluator runs as the Lambda would, at a chosen time."""

from __future__ import annotations

import copy
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scheduler import handler as scheduler_handler
from scheduler.evaluator import Change, Evaluator

from admin_api.models import ModelService
from lisa_domain.cost_control import LAST_USED_AT, START_REQUESTED, CostControlStore
from lisa_domain.workflows import Workflow
from local_mode.cost_control import EvaluatorLoop
from tests.integration.conftest import URL_POLICY, VLLM_MODEL, Lisa, RecordingStarter
from tests.support.waiting import wait_for

MODEL = "mistral-7b"
#: 09:00-17:00 UTC every day; 2027-01-04 is a Monday.
NINE_TO_FIVE = {"scheduleType": "RECURRING", "recurringSchedule": {"startTime": "09:00", "stopTime": "17:00"}}
EVENING = datetime(2027, 1, 4, 20, 0, tzinfo=UTC)
NEXT_MORNING = datetime(2027, 1, 5, 9, 1, tzinfo=UTC)
NEXT_NOON = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)


def _model(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VLLM_MODEL)
    scheduling = changes.pop("scheduling", None)
    if scheduling is not None:
        body["autoScalingConfig"]["scheduling"] = scheduling
    return body | changes


class Runner:
    """Runs the evaluator like the Lambda does and waits for the workflows it started."""

    def __init__(self, lisa: Lisa, starter: RecordingStarter | None = None) -> None:
        self.lisa = lisa
        self.starter = starter or lisa.starter()
        self.store = CostControlStore(lisa.registry.table_name, lisa.client("dynamodb"))
        service = ModelService(lisa.registry, lisa.secrets, self.starter, url_policy=URL_POLICY)
        self.evaluator = Evaluator(lisa.registry, service, self.store)

    def run(self, now: datetime) -> list[Change]:
        done = len(self.starter.started)
        changes = self.evaluator.run(now)
        for arn in self.starter.started[done:]:
            assert self.lisa.wait(arn).status == "SUCCEEDED"
        return changes


class FailingStarter(RecordingStarter):
    """The update workflow cannot be started while ``broken`` is set."""

    broken = True

    def start(self, workflow: Workflow, model_id: str, **details: Any) -> str:
        if self.broken:
            raise RuntimeError("Step Functions is unavailable")
        return super().start(workflow, model_id, **details)


def _reasons(lisa: Lisa) -> list[tuple[str, str | None]]:
    return [(entry["status"], entry.get("reason")) for entry in lisa.item(MODEL)["statusHistory"]]


def test_a_model_created_outside_its_window_is_stopped_then_started_at_the_window(lisa: Lisa) -> None:
    assert lisa.create(_model(scheduling=NINE_TO_FIVE)).status == "SUCCEEDED"
    runner = Runner(lisa)

    assert runner.run(EVENING) == [Change(MODEL, "stop", "schedule")]
    item = lisa.item(MODEL)
    assert item["status"] == "Stopped" and "litellmParams" not in item
    assert ("Stopping", "scheduled stop (2027-01-04T17:00:00Z)") in _reasons(lisa)
    assert runner.run(EVENING + timedelta(minutes=1)) == []  # handled once

    assert runner.run(NEXT_MORNING) == [Change(MODEL, "start", "schedule")]
    item = lisa.item(MODEL)
    assert item["status"] == "InService" and item["litellmParams"]
    assert runner.starter.started and len(runner.starter.started) == 2


def test_a_model_created_inside_its_window_keeps_running(lisa: Lisa) -> None:
    assert lisa.create(_model(scheduling=NINE_TO_FIVE)).status == "SUCCEEDED"
    runner = Runner(lisa)
    assert runner.run(NEXT_NOON) == []
    assert lisa.item(MODEL)["scheduleState"]["handledAt"] == int(NEXT_MORNING.replace(minute=0).timestamp())


def test_a_manual_stop_inside_the_window_stands_until_the_next_window(lisa: Lisa) -> None:
    assert lisa.create(_model(scheduling=NINE_TO_FIVE)).status == "SUCCEEDED"
    runner = Runner(lisa)
    assert runner.run(NEXT_MORNING) == []  # already running: the start is handled
    assert lisa.update(MODEL, {"enabled": False}).status == "SUCCEEDED"

    assert runner.run(NEXT_NOON) == []
    assert lisa.item(MODEL)["status"] == "Stopped"
    assert runner.run(NEXT_MORNING.replace(hour=17, minute=1)) == []  # the stop: already stopped
    assert runner.run(NEXT_MORNING + timedelta(days=1)) == [Change(MODEL, "start", "schedule")]
    assert lisa.item(MODEL)["status"] == "InService"


def test_a_failed_scheduled_stop_is_recorded_and_retried_without_a_transitional_status(lisa: Lisa) -> None:
    assert lisa.create(_model(scheduling=NINE_TO_FIVE)).status == "SUCCEEDED"
    starter = FailingStarter(
        {Workflow(name): arn for name, arn in lisa.machines.items()},
        poll_seconds=0,
        max_polls=4,
        client=lisa.client("stepfunctions"),
    )
    runner = Runner(lisa, starter)

    (change,) = runner.run(EVENING)
    assert change.error and "could not start the update workflow" in change.error
    item = lisa.item(MODEL)
    assert item["status"] == "InService"  # put back, never left Stopping
    state = item["scheduleState"]
    assert state["failed"] is True and state["failure"]["retryCount"] == 0
    assert "could not start the update workflow" in state["failure"]["error"]
    assert "handledAt" not in state

    runner.run(EVENING + timedelta(minutes=1))
    assert lisa.item(MODEL)["scheduleState"]["failure"]["retryCount"] == 1

    starter.broken = False
    assert runner.run(EVENING + timedelta(minutes=2)) == [Change(MODEL, "stop", "schedule")]
    state = lisa.item(MODEL)["scheduleState"]
    assert lisa.item(MODEL)["status"] == "Stopped" and state["failed"] is False
    assert state["handledAt"] == int(EVENING.replace(hour=17).timestamp())


def test_an_idle_model_is_stopped_with_its_reason_in_the_history(lisa: Lisa) -> None:
    assert lisa.create(_model(idleStopMinutes=5)).status == "SUCCEEDED"
    runner = Runner(lisa)
    now = datetime.now(UTC)
    assert runner.run(now + timedelta(minutes=4)) == []
    assert runner.store.record_use(MODEL, int((now + timedelta(minutes=4)).timestamp()))
    assert not runner.store.record_use(MODEL, int(now.timestamp()))  # never moves back
    assert runner.run(now + timedelta(minutes=8)) == []  # used 4 minutes ago
    assert lisa.item(MODEL)[LAST_USED_AT] == int((now + timedelta(minutes=4)).timestamp())

    assert runner.run(now + timedelta(minutes=9, seconds=1)) == [Change(MODEL, "stop", "idle")]
    assert lisa.item(MODEL)["status"] == "Stopped"
    assert ("Stopping", "stopped after 5 minutes without an inference request (idleStopMinutes)") in _reasons(
        lisa
    )


def test_start_on_request_starts_the_model_once_however_many_ask(lisa: Lisa) -> None:
    assert lisa.create(_model(startOnRequest=True)).status == "SUCCEEDED"
    assert lisa.update(MODEL, {"enabled": False}).status == "SUCCEEDED"
    runner = Runner(lisa)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        store = CostControlStore(lisa.registry.table_name)
        barrier.wait()
        results.append(store.request_start(MODEL, int(datetime.now(UTC).timestamp())))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]

    now = datetime.now(UTC)
    assert runner.run(now) == [Change(MODEL, "start", "request")]
    item = lisa.item(MODEL)
    assert item["status"] == "InService" and START_REQUESTED not in item
    assert ("Starting", "started on request (startOnRequest)") in _reasons(lisa)
    runner.store.request_start(MODEL, int(now.timestamp()))  # a late request from a replica
    assert runner.run(now) == []
    assert START_REQUESTED not in lisa.item(MODEL) and len(runner.starter.started) == 1


def test_a_request_flag_on_a_model_without_start_on_request_starts_nothing(lisa: Lisa) -> None:
    assert lisa.create(_model()).status == "SUCCEEDED"
    assert lisa.update(MODEL, {"enabled": False}).status == "SUCCEEDED"
    runner = Runner(lisa)
    assert runner.store.request_start(MODEL, 1)
    assert runner.run(datetime.now(UTC)) == []
    item = lisa.item(MODEL)
    assert item["status"] == "Stopped" and START_REQUESTED not in item


@pytest.mark.parametrize("value", [None, 30])
def test_idle_stop_minutes_and_start_on_request_are_updated_through_the_workflow(
    lisa: Lisa, value: int | None
) -> None:
    assert lisa.create(_model(idleStopMinutes=10)).status == "SUCCEEDED"
    assert lisa.update(MODEL, {"idleStopMinutes": value, "startOnRequest": True}).status == "SUCCEEDED"
    item = lisa.item(MODEL)
    assert item.get("idleStopMinutes") == value and item["startOnRequest"] is True
    assert item["status"] == "InService"


def test_local_mode_runs_the_lambda_handler_in_a_loop_with_a_scaled_idle_minute(
    lisa: Lisa, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Lambda's handler, built from its settings (as in AWS), run by local mode's loop."""
    assert lisa.create(_model(idleStopMinutes=5)).status == "SUCCEEDED"
    monkeypatch.setenv("UPDATE_MODEL_STATE_MACHINE_ARN", lisa.machines["update"])
    monkeypatch.setenv("WORKFLOW_POLL_SECONDS", "0")
    monkeypatch.setenv("LISA_LOCAL_IDLE_MINUTE_SECONDS", "0.2")  # 5 idle minutes: one second
    loop = EvaluatorLoop(0.1)
    loop.start()
    try:
        wait_for(lambda: lisa.item(MODEL)["status"] == "Stopped", 60, "the idle model stopped by the loop")
    finally:
        loop.stop()
        scheduler_handler.evaluator.cache_clear()
    assert ("Stopping", "stopped after 5 minutes without an inference request (idleStopMinutes)") in _reasons(
        lisa
    )
