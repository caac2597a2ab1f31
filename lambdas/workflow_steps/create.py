"""Create: ``Creating`` -> (self-hosted: task definition, stack, healthy service) -> registered, ``InService``."""

from __future__ import annotations

from lisa_domain.litellm_params import litellm_params
from workflow_steps.common import model_in_transit, poll
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState


def start_create(services: Services, state: ExecutionState) -> ExecutionState:
    state.selfHosted = model_in_transit(services, state).self_hosted
    return state


def create_infrastructure(services: Services, state: ExecutionState) -> ExecutionState:
    services.hosting.start_create(model_in_transit(services, state))
    state.done = False
    return state


def poll_create(services: Services, state: ExecutionState) -> ExecutionState:
    model = model_in_transit(services, state)
    return poll(state, "create", "creating the model's stack", lambda: services.hosting.poll_create(model))


def poll_service(services: Services, state: ExecutionState) -> ExecutionState:
    model = model_in_transit(services, state)
    return poll(
        state, "service", "starting the model's containers", lambda: services.hosting.poll_service(model)
    )


def register_model(services: Services, state: ExecutionState) -> ExecutionState:
    model = model_in_transit(services, state)
    params = litellm_params(
        model,
        endpoint_url=services.hosting.endpoint_url(model) if model.self_hosted else None,
        api_key_secret_arn=model.apiKeySecretArn,
    )
    services.registry.register(model.modelId, params, allowed_from=[state.transient_status()])
    return state
