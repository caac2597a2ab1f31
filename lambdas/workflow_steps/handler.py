"""The task Lambda of the model workflows: a thin dispatcher on ``event["step"]``.

Step Functions invokes it with ``{"step": "<name>", "input": <execution state>}`` and uses the
returned state as the next one. An exception becomes a ``StepError`` whose message names what was
being done and why it failed; the state machine's Catch turns it into the model's ``statusReason``.
A transient one (throttling, a busy registry) becomes a ``TransientStepError``, which every Task
state retries (with jitter, bounded) before its Catch.
EventBridge "Step Functions Execution Status Change" events go to the timeout/abort backstop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from workflow_steps import canary, create, delete, failure, update
from workflow_steps.common import StepError, TransientStepError, is_transient, readable
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState

logger = Logger(service="lisa-workflow-steps")

Step = Callable[[Services, ExecutionState], ExecutionState]

#: step name -> (what it does, for messages; the function)
STEPS: dict[str, tuple[str, Step]] = {
    # create_model
    "StartCreate": ("reading the model", create.start_create),
    "CreateInfrastructure": ("creating the model's task definition and stack", create.create_infrastructure),
    "PollCreate": ("waiting for the model's stack", create.poll_create),
    "PollCreateService": ("waiting for the model's containers to become healthy", create.poll_service),
    "Canary": ("sending the model its canary request", canary.canary),  # also in update_model
    "RegisterModel": ("registering the model for serving", create.register_model),
    # update_model
    "StartUpdate": ("starting the update", update.start_update),
    "UpdateInfrastructure": ("updating the model's stack", update.update_infrastructure),
    "PollUpdate": ("waiting for the model's stack update", update.poll_update),
    "PollUpdateService": ("waiting for the model's containers", update.poll_service),
    "FinishUpdate": ("saving the update", update.finish_update),
    "CleanupUpdate": ("reverting the failed update", failure.cleanup_update),
    # delete_model
    "StartDelete": ("unregistering the model", delete.start_delete),
    "DeleteInfrastructure": ("deleting the model's stack", delete.delete_infrastructure),
    "PollDelete": ("waiting for the model's stack deletion", delete.poll_delete),
    "ReleaseInfrastructure": ("deregistering the model's task definitions", delete.release_infrastructure),
    "DeleteSecret": ("deleting the model's secret", delete.delete_secret),
    "DeleteRecord": ("deleting the model record", delete.delete_record),
    # failure path (create and delete)
    "Cleanup": ("cleaning up after the failure", failure.cleanup),
    "PollCleanup": ("waiting for the cleanup", failure.poll_cleanup),
    "MarkFailed": ("marking the model Failed", failure.mark_failed),
}

_services: Services | None = None


def services() -> Services:
    """Built once per warm Lambda (a test starts a cold one by setting ``_services`` to None)."""
    global _services
    if _services is None:
        _services = Services.from_env()
    return _services


def run_step(step: str, state: ExecutionState, using: Services) -> ExecutionState:
    try:
        description, function = STEPS[step]
    except KeyError:
        raise StepError(f"unknown workflow step {step!r}") from None
    try:
        return function(using, state)
    except Exception as error:
        logger.exception("workflow step failed", extra={"step": step, "model_id": state.modelId})
        kind = TransientStepError if is_transient(error) else StepError
        raise kind(f"{description}: {readable(error)}") from error


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("detail-type") == "Step Functions Execution Status Change":
        return failure.on_execution_ended(services(), event)
    step = str(event.get("step", ""))
    state = ExecutionState.model_validate(event.get("input") or {})
    logger.info(
        "workflow step", extra={"step": step, "model_id": state.modelId, "operation": state.operation}
    )
    return run_step(step, state, services()).dump()
