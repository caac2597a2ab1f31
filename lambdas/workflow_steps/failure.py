"""The failure path every workflow shares: clean up what the execution created, then ``Failed``.

* create and delete (``Cleanup`` then ``PollCleanup``): the model's stack is deleted (bounded
  polling), its task definitions deregistered and its provider-key secret deleted, so nothing is
  left behind; the record stays, ``Failed``, so the API can show why (a Failed model can always be
  deleted).
* update (``CleanupUpdate``): a new task definition revision is deregistered and the stack is
  returned to the previous settings if the update had already been applied.
* ``MarkFailed``: unregister (a Failed model is never served) and set ``Failed`` with a
  ``statusReason`` built from the error, in one conditional write. Except after a failed
  metadata-only update (no infrastructure touched, nothing unregistered): the model goes back to
  the status it had before (``previousStatus``), still served if it was, with the reason.

Cleanup only ever touches a model that is still in the status this execution put it in, so a
stray execution cannot tear down a model someone else owns.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from lisa_domain.errors import Conflict, NotFound
from lisa_domain.lifecycle import TRANSITIONS, Action
from lisa_domain.schema import ModelRecord, ModelStatus
from workflow_steps import update
from workflow_steps.common import poll, readable
from workflow_steps.delete import delete_model_secret
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState

TERMINAL_EXECUTION_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


def _owned_model(services: Services, state: ExecutionState) -> ModelRecord | None:
    """The model if it is still in this execution's transient status, else None (leave it alone)."""
    try:
        record = services.registry.get(state.modelId)
    except NotFound:
        state.cleanupNotes.append("the model record no longer exists")
        return None
    if record.status != state.transient_status():
        state.cleanupNotes.append(f"the model is {record.status.value}; cleanup left it alone")
        return None
    return record


def cleanup(services: Services, state: ExecutionState) -> ExecutionState:
    """Create/delete failure: start removing everything the model has (stack, secret)."""
    state.done = True
    record = _owned_model(services, state)
    if record is None:
        return state
    if record.self_hosted:
        try:
            state.done = not services.hosting.start_delete(record)
            # Deregistering at once is harmless while the stack is deleted (running tasks are not
            # affected) and leaves nothing behind even if no one polls (the timeout backstop).
            services.hosting.release(record)
        except Exception as error:
            state.cleanupNotes.append(f"could not delete the model's infrastructure: {readable(error)}")
    try:
        delete_model_secret(services, record)
    except Exception as error:
        state.cleanupNotes.append(f"could not delete the model's secret: {readable(error)}")
    return state


def poll_cleanup(services: Services, state: ExecutionState) -> ExecutionState:
    record = _owned_model(services, state)
    if record is None or not record.self_hosted:
        state.done = True
        return state
    poll(
        state,
        "cleanup",
        "deleting the model's stack after the failure",
        lambda: services.hosting.poll_delete(record),
    )
    if state.done:
        services.hosting.release(record)
    return state


def cleanup_update(services: Services, state: ExecutionState) -> ExecutionState:
    record = _owned_model(services, state)
    if record is not None and record.self_hosted and state.undo:
        state.cleanupNotes.extend(services.hosting.revert_update(record, state.undo))
    return state


def _error_message(error: dict[str, Any] | None) -> str:
    if not error:
        return "unknown error"
    cause = error.get("Cause")
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            return cause or str(error.get("Error", "unknown error"))
        if isinstance(parsed, dict) and parsed.get("errorMessage"):
            return str(parsed["errorMessage"])
        return cause
    return str(error.get("Error", "unknown error"))


def failure_reason(state: ExecutionState, restored: ModelStatus | None = None) -> str:
    """Why the model failed and what to do; ``restored``: the status a metadata-only update's
    failure put the model back in (see ``restorable_status``)."""
    action = state.lifecycle_action()
    reason = f"{action.value.capitalize()} failed: {_error_message(state.error)}"
    cleanup_error = state.cleanupError
    if cleanup_error:
        reason += f". Cleanup failed too: {_error_message(cleanup_error)}"
    if state.cleanupNotes:
        reason += ". Cleanup: " + "; ".join(state.cleanupNotes)
    if action == Action.CREATE:
        hint = (
            "Delete the model to remove what is left, then create it again"
            if cleanup_error
            else "What the workflow had created was removed; fix the cause, delete the model and create it again"
        )
    elif action == Action.DELETE:
        hint = "Delete the model again to retry"
    elif restored is not None:
        hint = f"The update was not applied and the model is {restored.value} again; fix the cause and retry"
    else:
        hint = "The model is not served; delete it (and create it again), or fix the cause and delete it"
    return f"{reason.rstrip('.')}. {hint}."


def restorable_status(services: Services, state: ExecutionState) -> ModelStatus | None:
    """The status to put the model back in instead of Failed, or None.

    Only after a metadata-only update (action ``update`` that touches no infrastructure; derived
    from the record and the changes, so the execution-status backstop gets it right too): such an
    update wrote nothing before it failed, and a served model stayed registered.
    """
    if state.lifecycle_action() != Action.UPDATE:
        return None
    if state.previousStatus not in TRANSITIONS[Action.UPDATE].sources:
        return None
    try:
        record = services.registry.get(state.modelId)
    except NotFound:
        return None
    return None if update.touches_infrastructure(record, state) else state.previousStatus


def mark_failed(services: Services, state: ExecutionState) -> ExecutionState:
    restored = restorable_status(services, state)
    reason = failure_reason(state, restored)
    state.statusReason = reason
    if restored is not None:
        with contextlib.suppress(NotFound, Conflict):
            services.registry.transition(
                state.modelId, allowed_from=[state.transient_status()], to=restored, reason=reason
            )
        return state
    # NotFound: gone; Conflict: no longer this execution's to fail (see _owned_model).
    with contextlib.suppress(NotFound, Conflict):
        services.registry.deregister(
            state.modelId, allowed_from=[state.transient_status()], to=ModelStatus.FAILED, reason=reason
        )
    return state


def on_execution_ended(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """Backstop for executions that end without their own failure path (execution timeout, abort).

    Wired to EventBridge's "Step Functions Execution Status Change" events of the three state
    machines. A model still in its transient status since before the execution started is cleaned
    up (stack deletion started, secret deleted for create/delete) and marked Failed.
    """
    detail = event.get("detail", {})
    status = str(detail.get("status", ""))
    if status not in TERMINAL_EXECUTION_STATUSES:
        return {"ignored": f"execution status {status}"}
    state = ExecutionState.model_validate(json.loads(detail.get("input") or "{}"))
    try:
        stored = services.registry.stored(state.modelId)
    except NotFound:
        return {"ignored": "model gone"}
    if stored.record.status != state.transient_status():
        return {"ignored": f"model is {stored.record.status.value}"}
    if stored.entered_status_at() > int(detail.get("startDate", 0)) / 1000 + 1:
        return {"ignored": "a later execution owns the model"}
    if state.operation in ("create", "delete"):
        cleanup(services, state)
    ended = status.replace("_", " ").lower()
    state.error = {
        "Error": status,
        "Cause": f"the workflow execution {ended} before it finished ({detail.get('executionArn', '')})",
    }
    mark_failed(services, state)
    return {"failed": state.modelId}
