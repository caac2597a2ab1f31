"""Delete: ``Deleting`` -> unregistered (no more routing) -> stack gone -> task definitions
deregistered -> secret deleted -> record deleted."""

from __future__ import annotations

from lisa_domain.registry import LITELLM_PARAMS
from lisa_domain.schema import DELETABLE_STATES, ModelRecord, ModelStatus
from workflow_steps.common import expect_status, poll
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState


def _model(services: Services, state: ExecutionState) -> ModelRecord:
    record = services.registry.get(state.modelId)
    expect_status(record, ModelStatus.DELETING)
    return record


def start_delete(services: Services, state: ExecutionState) -> ExecutionState:
    """Stop routing first. The admin API normally moved the model to Deleting already."""
    item = services.registry.get_item(state.modelId)
    record = ModelRecord.model_validate(item)
    if record.status in DELETABLE_STATES:
        services.registry.deregister(
            state.modelId, allowed_from=[record.status], to=ModelStatus.DELETING, reason=record.statusReason
        )
    else:
        expect_status(record, ModelStatus.DELETING)
        if item.get(LITELLM_PARAMS):
            services.registry.deregister(
                state.modelId,
                allowed_from=[ModelStatus.DELETING],
                to=ModelStatus.DELETING,
                reason="unregistered from serving; deleting its resources",
            )
    return state


def delete_infrastructure(services: Services, state: ExecutionState) -> ExecutionState:
    model = _model(services, state)
    state.done = not (model.self_hosted and services.hosting.start_delete(model))
    return state


def poll_delete(services: Services, state: ExecutionState) -> ExecutionState:
    model = _model(services, state)
    return poll(state, "delete", "deleting the model's stack", lambda: services.hosting.poll_delete(model))


def release_infrastructure(services: Services, state: ExecutionState) -> ExecutionState:
    model = _model(services, state)
    if model.self_hosted:
        services.hosting.release(model)
    return state


def delete_secret(services: Services, state: ExecutionState) -> ExecutionState:
    model = _model(services, state)
    delete_model_secret(services, model)
    return state


def delete_model_secret(services: Services, model: ModelRecord) -> None:
    if model.apiKeySecretArn:
        services.secrets.delete(model.apiKeySecretArn)
    # Also by name: covers a secret stored by the API whose ARN never reached the record.
    services.secrets.delete(services.secrets.name_for(model.modelId))


def delete_record(services: Services, state: ExecutionState) -> ExecutionState:
    services.registry.delete(state.modelId, allowed_from=[ModelStatus.DELETING])
    return state
