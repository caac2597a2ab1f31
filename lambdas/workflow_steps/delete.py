"""Delete: ``Deleting`` -> unregistered (no more routing) -> stack gone -> task definitions
deregistered -> secret deleted -> record deleted."""

from __future__ import annotations

from lisa_domain.schema import ModelRecord
from workflow_steps.common import expect_status, model_in_transit, poll
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState


def start_delete(services: Services, state: ExecutionState) -> ExecutionState:
    """Stop routing first. The admin API moved the model to Deleting (verified here, not repeated)."""
    deleting = state.transient_status()
    stored = services.registry.stored(state.modelId)
    expect_status(stored.record, deleting)
    if stored.registered:
        services.registry.deregister(
            state.modelId,
            allowed_from=[deleting],
            to=deleting,
            reason="unregistered from serving; deleting its resources",
        )
    return state


def delete_infrastructure(services: Services, state: ExecutionState) -> ExecutionState:
    model = model_in_transit(services, state)
    state.done = not (model.self_hosted and services.hosting.start_delete(model))
    return state


def poll_delete(services: Services, state: ExecutionState) -> ExecutionState:
    model = model_in_transit(services, state)
    return poll(state, "delete", "deleting the model's stack", lambda: services.hosting.poll_delete(model))


def release_infrastructure(services: Services, state: ExecutionState) -> ExecutionState:
    model = model_in_transit(services, state)
    if model.self_hosted:
        services.hosting.release(model)
    return state


def delete_secret(services: Services, state: ExecutionState) -> ExecutionState:
    model = model_in_transit(services, state)
    delete_model_secret(services, model)
    return state


def delete_model_secret(services: Services, model: ModelRecord) -> None:
    if model.apiKeySecretArn:
        services.secrets.delete(model.apiKeySecretArn)
    # Also by name: covers a secret stored by the API whose ARN never reached the record.
    services.secrets.delete(services.secrets.name_for(model.modelId))


def delete_record(services: Services, state: ExecutionState) -> ExecutionState:
    services.registry.delete(state.modelId, allowed_from=[state.transient_status()])
    return state
