"""Data flows one way (issue 11 items 5 and 7).

* Status transitions have one owner: the admin API moves a model into its action's transient status
  (``lisa_domain.lifecycle.TRANSITIONS``, the one action -> status table); the workflow steps verify
  that move and never repeat it.
* The registry returns typed records (``StoredModel``: record, registration, status history).
* Admin cold start: importing the handler loads neither the X-Ray SDK (tracing off), nor the OpenAPI
  validation, nor the route modules and the domain behind them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from admin_api import handler
from lisa_domain.lifecycle import TRANSITIONS, Action
from lisa_domain.registry import LITELLM_PARAMS, ModelRegistry, StatusChange
from lisa_domain.schema import TRANSIENT_STATES, ModelStatus
from lisa_domain.secrets import ModelSecrets
from local_mode.resources import LocalResources
from tests.unit.conftest import Workflows
from tests.unit.test_admin_api import call, seed
from workflow_steps import delete, failure, update
from workflow_steps.common import WrongStatus
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState

ROOT = Path(__file__).resolve().parents[2]

#: The admin API request of each action (on ``/models/m1``).
REQUESTS: dict[Action, tuple[str, dict[str, Any] | None]] = {
    Action.UPDATE: ("PUT", {"modelDescription": "new"}),
    Action.STOP: ("PUT", {"enabled": False}),
    Action.START: ("PUT", {"enabled": True}),
    Action.DELETE: ("DELETE", None),
}


def _services(resources: LocalResources) -> Services:
    return Services(ModelRegistry(resources.models_table), ModelSecrets("lisa/test/models/"))


# ---- one owner for status transitions ----------------------------------------------------------
def test_the_schemas_transient_states_are_the_tables() -> None:
    assert {transition.transient for transition in TRANSITIONS.values()} == TRANSIENT_STATES
    assert set(TRANSITIONS) == set(Action)


@pytest.mark.parametrize("action", list(REQUESTS))
@pytest.mark.parametrize("status", list(ModelStatus))
def test_the_admin_api_moves_models_as_the_lifecycle_table_says(
    resources: LocalResources, workflows: Workflows, action: Action, status: ModelStatus
) -> None:
    seed(resources, "m1", status)
    method, body = REQUESTS[action]
    code, answer = call(method, "/models/m1", body=body)
    transition = TRANSITIONS[action]
    stored = ModelRegistry(resources.models_table).stored("m1")
    if status in transition.sources:
        assert code == 200, answer
        assert answer["model"]["status"] == stored.record.status == transition.transient
        assert [change.status for change in stored.history] == [status, transition.transient]
    else:
        assert code == 409, answer
        assert answer["message"] == (
            f"model 'm1' is {status.value}; {action.value} is allowed only from: {transition.allowed_from()}"
        )
        assert stored.record.status == status and len(stored.history) == 1


@pytest.mark.parametrize("action", list(REQUESTS))
def test_the_workflow_accepts_the_admin_apis_move_and_verifies_it(
    resources: LocalResources, workflows: Workflows, action: Action
) -> None:
    """The execution input the admin API wrote names the status the admin API moved the model to."""
    source = min(TRANSITIONS[action].sources)
    seed(resources, "m1", source)
    method, body = REQUESTS[action]
    assert call(method, "/models/m1", body=body)[0] == 200
    workflow = "delete" if action == Action.DELETE else "update"
    (execution,) = workflows.executions(workflow)
    state = ExecutionState.model_validate(execution["input"])
    assert state.lifecycle_action() == action
    assert state.transient_status() == ModelRegistry(resources.models_table).get("m1").status
    step = delete.start_delete if action == Action.DELETE else update.start_update
    step(_services(resources), state)  # verifies; raises WrongStatus otherwise


@pytest.mark.parametrize("action", [Action.UPDATE, Action.STOP, Action.START])
def test_start_update_does_not_repeat_the_admin_apis_transition(
    resources: LocalResources, action: Action
) -> None:
    """A workflow started on a model the admin API did not move fails and leaves the model alone."""
    source = min(TRANSITIONS[action].sources)
    seed(resources, "m1", source)
    registry = ModelRegistry(resources.models_table)
    if source == ModelStatus.IN_SERVICE:
        registry.register("m1", {"model": "bedrock/x"}, allowed_from=[source])
    before = registry.get_item("m1")
    state = ExecutionState(modelId="m1", operation="update", action=action.value, previousStatus=source)
    with pytest.raises(WrongStatus, match=f"is {source.value}, not {TRANSITIONS[action].transient.value}"):
        update.start_update(_services(resources), state)
    assert registry.get_item("m1") == before


def test_start_delete_does_not_repeat_the_admin_apis_transition(resources: LocalResources) -> None:
    seed(resources, "m1", ModelStatus.IN_SERVICE)
    registry = ModelRegistry(resources.models_table)
    registry.register("m1", {"model": "bedrock/x"}, allowed_from=[ModelStatus.IN_SERVICE])
    before = registry.get_item("m1")
    state = ExecutionState(modelId="m1", operation="delete", previousStatus=ModelStatus.IN_SERVICE)
    with pytest.raises(WrongStatus, match="is InService, not Deleting"):
        delete.start_delete(_services(resources), state)
    assert registry.get_item("m1") == before  # still served, still InService
    assert registry.stored("m1").registered


def test_a_stop_unregisters_the_model_the_admin_api_moved(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "m1", ModelStatus.IN_SERVICE)
    registry = ModelRegistry(resources.models_table)
    registry.register("m1", {"model": "bedrock/x"}, allowed_from=[ModelStatus.IN_SERVICE])
    assert call("PUT", "/models/m1", body={"enabled": False})[0] == 200
    assert registry.stored("m1").registered  # the admin API only moves the status
    (execution,) = workflows.executions("update")
    update.start_update(_services(resources), ExecutionState.model_validate(execution["input"]))
    stored = registry.stored("m1")
    assert stored.record.status == ModelStatus.STOPPING and not stored.registered
    assert LITELLM_PARAMS not in registry.get_item("m1")


def test_the_failure_path_uses_the_same_table(resources: LocalResources) -> None:
    """MarkFailed fails only a model still in the execution's transient status."""
    for action in (Action.CREATE, Action.UPDATE, Action.STOP, Action.START, Action.DELETE):
        operation = action.value if action in (Action.CREATE, Action.DELETE) else "update"
        state = ExecutionState(
            modelId=f"m-{action.value}",
            operation=operation,
            action=None if operation != "update" else action.value,
            error={"Error": "StepError", "Cause": "boom"},
        )
        assert state.transient_status() == TRANSITIONS[action].transient
        assert failure.failure_reason(state).startswith(f"{action.value.capitalize()} failed: boom")


# ---- typed records ---------------------------------------------------------------------------
def test_stored_returns_the_record_its_registration_and_typed_history(resources: LocalResources) -> None:
    seed(resources, "m1", ModelStatus.IN_SERVICE)
    registry = ModelRegistry(resources.models_table)
    assert not registry.stored("m1").registered
    registry.register("m1", {"model": "bedrock/x"}, allowed_from=[ModelStatus.IN_SERVICE])
    registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.UPDATING, reason="why")
    stored = registry.stored("m1")
    assert stored.registered and stored.record.status == ModelStatus.UPDATING
    assert all(isinstance(change, StatusChange) for change in stored.history)
    assert [(change.status, change.reason) for change in stored.history] == [
        (ModelStatus.IN_SERVICE, None),
        (ModelStatus.IN_SERVICE, None),
        (ModelStatus.UPDATING, "why"),
    ]
    assert stored.entered_status_at() == stored.history[-1].at


def test_entered_status_at_is_the_start_of_the_latest_run_of_the_current_status(
    resources: LocalResources,
) -> None:
    seed(resources, "m1", ModelStatus.DELETING)
    registry = ModelRegistry(resources.models_table)
    registry.transition("m1", allowed_from=[ModelStatus.DELETING], to=ModelStatus.DELETING, reason="again")
    stored = registry.stored("m1")
    assert len(stored.history) == 2 and stored.entered_status_at() == stored.history[0].at


# ---- admin cold start ------------------------------------------------------------------------
DEFERRED = (
    "aws_xray_sdk.core",
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation",
    "admin_api.routes.models",
    "admin_api.models",
    "lisa_domain.schema",
    "boto3",
)
PROBE = """
import json, sys
deferred = sys.argv[1:]
import admin_api.handler as h
loaded = {module: module in sys.modules for module in deferred}
provider = type(h.tracer.provider).__module__
h.load_routes()
routes = len(h.app._static_routes) + len(h.app._dynamic_routes)
print(json.dumps({"loaded": loaded, "provider": provider, "routes": routes}))
"""


def _probe(env: dict[str, str]) -> dict[str, Any]:
    """Import the handler in a fresh interpreter with ``env``: which modules it loaded, its tracer."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("POWERTOOLS_TRACE_DISABLED", "LAMBDA_TASK_ROOT", "AWS_SAM_LOCAL")
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *DEFERRED],
        env={**environment, "PYTHONPATH": str(ROOT / "lambdas"), **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_importing_the_handler_defers_xray_validation_and_the_routes() -> None:
    probed = _probe({"POWERTOOLS_TRACE_DISABLED": "true"})
    assert probed["loaded"] == dict.fromkeys(DEFERRED, False)
    assert probed["provider"] == "admin_api.tracing"
    assert probed["routes"] >= 9  # every route module registered on the first request


def test_in_lambda_with_tracing_on_the_handler_traces_with_xray() -> None:
    probed = _probe({"LAMBDA_TASK_ROOT": "/var/task"})
    assert probed["loaded"]["aws_xray_sdk.core"]
    assert probed["provider"].startswith("aws_xray_sdk")


def test_the_route_modules_are_loaded_by_the_first_request(resources: LocalResources) -> None:
    assert handler.ROUTE_MODULES[0] == "admin_api.routes.models"
    code, answer = call("GET", "/models", query={"limit": "0"})
    assert code == 422 and answer["errors"][0]["field"] == "query.limit"  # validation still on
