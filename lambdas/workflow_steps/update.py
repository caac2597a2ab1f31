"""Update: metadata, autoscaling, container settings, stop (``enabled: false``), start (``enabled: true``).

* metadata only (``schema.METADATA_UPDATE_FIELDS``: description, allowed groups, features,
  streaming, fallbacks, ...): no infrastructure is touched; the fields are written when the workflow
  finishes.
* autoscaling / container changes of a self-hosted model: the stack is updated (a new task
  definition revision for container changes), then the service must be steady and healthy again.
* stop: unregistered from serving first (StartUpdate), then scaled to zero -> ``Stopped``.
* start: scaled up, healthy, then registered -> ``InService``.

The model record keeps its old settings until ``FinishUpdate``, which writes the new ones together
with the final status in one conditional write; every step derives "the model as it should be"
from the record and the execution's ``changes`` (``desired_model``).
"""

from __future__ import annotations

from typing import Any

from lisa_domain.lifecycle import Action
from lisa_domain.litellm_params import litellm_params
from lisa_domain.registry import LITELLM_PARAMS
from lisa_domain.schema import (
    METADATA_UPDATE_FIELDS,
    AutoScalingConfig,
    ContainerConfigUpdate,
    ModelRecord,
    ModelStatus,
    merge_container_config,
)
from workflow_steps.common import expect_status, model_in_transit, poll
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState


def desired_model(record: ModelRecord, state: ExecutionState) -> ModelRecord:
    """The model as it should be once the update is done."""
    changes = state.changes
    update: dict[str, Any] = {field: changes[field] for field in METADATA_UPDATE_FIELDS if field in changes}
    action = state.lifecycle_action()
    if action != Action.UPDATE:
        update["enabled"] = action == Action.START
    if changes.get("autoScalingInstanceConfig") and record.autoScalingConfig:
        merged = record.autoScalingConfig.model_dump() | {
            key: value for key, value in changes["autoScalingInstanceConfig"].items() if value is not None
        }
        update["autoScalingConfig"] = AutoScalingConfig.model_validate(merged)
    if changes.get("containerConfig") and record.containerConfig:
        update["containerConfig"] = merge_container_config(
            record.containerConfig, ContainerConfigUpdate.model_validate(changes["containerConfig"])
        )
    desired = record.model_copy(update=update)
    return ModelRecord.model_validate(desired.model_dump() | {"apiKeySecretArn": record.apiKeySecretArn})


def touches_infrastructure(record: ModelRecord, state: ExecutionState) -> bool:
    """Whether the update changes running infrastructure (else it only rewrites the record)."""
    if not record.self_hosted:
        return False
    return state.lifecycle_action() != Action.UPDATE or bool(
        state.changes.get("autoScalingInstanceConfig") or state.changes.get("containerConfig")
    )


def start_update(services: Services, state: ExecutionState) -> ExecutionState:
    """Verify the admin API's transition (the model is in the action's transient status, not
    repeated here); a stop unregisters the model now."""
    transient = state.transient_status()
    stored = services.registry.stored(state.modelId)
    record = stored.record
    expect_status(record, transient)
    if state.lifecycle_action() == Action.STOP and stored.registered:
        services.registry.deregister(
            state.modelId,
            allowed_from=[transient],
            to=transient,
            reason="unregistered from serving; scaling to zero",
        )
    if not record.self_hosted and (
        state.changes.get("autoScalingInstanceConfig") or state.changes.get("containerConfig")
    ):
        raise ValueError(
            f"model '{record.modelId}' is not self-hosted: it has no autoscaling or container settings"
        )
    state.infrastructure = touches_infrastructure(record, state)
    return state


def update_infrastructure(services: Services, state: ExecutionState) -> ExecutionState:
    record = model_in_transit(services, state)
    state.undo = services.hosting.start_update(
        desired_model(record, state), container_changed=bool(state.changes.get("containerConfig"))
    )
    state.done = state.undo is None
    return state


def poll_update(services: Services, state: ExecutionState) -> ExecutionState:
    model = desired_model(model_in_transit(services, state), state)
    return poll(state, "update", "updating the model's stack", lambda: services.hosting.poll_update(model))


def poll_service(services: Services, state: ExecutionState) -> ExecutionState:
    model = desired_model(model_in_transit(services, state), state)
    what = "starting the model's containers" if model.enabled else "stopping the model's containers"
    return poll(state, "service", what, lambda: services.hosting.poll_service(model))


def finish_update(services: Services, state: ExecutionState) -> ExecutionState:
    """Write the new settings with the final status; register the model if it ends InService."""
    record = model_in_transit(services, state)
    model = desired_model(record, state)
    fields: dict[str, Any] = {
        field: value
        for field, value in model.model_dump(mode="json").items()
        if field in (*METADATA_UPDATE_FIELDS, "autoScalingConfig", "containerConfig", "enabled")
    }
    if model.enabled:
        fields[LITELLM_PARAMS] = litellm_params(
            model,
            endpoint_url=services.hosting.endpoint_url(model) if model.self_hosted else None,
            api_key_secret_arn=model.apiKeySecretArn,
        )
        final = ModelStatus.IN_SERVICE
    else:
        fields[LITELLM_PARAMS] = None  # removed: a stopped model is not served
        final = ModelStatus.STOPPED
    if state.undo and model.self_hosted:  # the previous task definition revision is no longer used
        services.hosting.finish_update(model, state.undo)
    services.registry.transition(state.modelId, allowed_from=[record.status], to=final, changes=fields)
    return state
