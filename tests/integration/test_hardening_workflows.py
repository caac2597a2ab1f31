"""Issue 10 hardening through the real ASL in moto: transient step errors are retried (not Failed),
a failed metadata-only update restores the previous status, container secrets reach the
registered task definition as references."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lisa_domain.errors import Unavailable
from lisa_domain.registry import LITELLM_PARAMS, ModelRegistry
from tests.integration.conftest import BEDROCK_MODEL, SECRET_PREFIX, VLLM_MODEL, Lisa, fail_once
from workflow_steps.hosting.ecs import EcsHostingBackend

MODEL = "mistral-7b"


def test_a_busy_registry_at_registration_is_retried_and_the_model_ends_in_service(
    lisa: Lisa, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fail_once(monkeypatch, ModelRegistry, "register", Unavailable("the registry stayed busy"))

    execution = lisa.create(VLLM_MODEL)

    assert execution.status == "SUCCEEDED", execution.cause
    assert calls() == 2
    assert "Cleanup" not in execution.states and "MarkFailed" not in execution.states
    item = lisa.item(MODEL)
    assert item["status"] == "InService" and item[LITELLM_PARAMS]
    assert lisa.stack(MODEL) is not None  # the stack that was built is kept


def test_throttling_while_polling_the_stack_is_retried(lisa: Lisa, monkeypatch: pytest.MonkeyPatch) -> None:
    throttled = ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeStacks")
    calls = fail_once(monkeypatch, EcsHostingBackend, "poll_create", throttled)

    execution = lisa.create(VLLM_MODEL)

    assert execution.status == "SUCCEEDED", execution.cause
    assert calls() >= 2 and lisa.item(MODEL)["status"] == "InService"


def test_a_failed_metadata_only_update_leaves_the_model_in_service_and_served(
    lisa: Lisa, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lisa.create(BEDROCK_MODEL).status == "SUCCEEDED"
    model_id = BEDROCK_MODEL["modelId"]
    params = lisa.item(model_id)[LITELLM_PARAMS]

    def broken(*_: Any, **__: Any) -> dict[str, Any]:
        raise ValueError("parameters could not be built")

    monkeypatch.setattr("workflow_steps.update.litellm_params", broken)
    execution = lisa.update(model_id, {"modelDescription": "changed"})

    assert execution.status == "FAILED" and "MarkFailed" in execution.states
    item = lisa.item(model_id)
    assert item["status"] == "InService" and item[LITELLM_PARAMS] == params
    assert item.get("modelDescription", "") == BEDROCK_MODEL.get("modelDescription", "")
    assert "parameters could not be built" in item["statusReason"]
    assert "InService again" in item["statusReason"]
    # The second Creating is the canary's recorded skip (Bedrock models are not probed).
    assert lisa.history(model_id) == ["Creating", "Creating", "InService", "Updating", "InService"]


def test_container_secrets_reach_the_registered_task_definition(lisa: Lisa) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET_PREFIX}shared/hf-token-AbCdEf"
    body = copy.deepcopy(VLLM_MODEL)
    body["containerConfig"]["secrets"] = {"HF_TOKEN": arn}

    assert lisa.create(body).status == "SUCCEEDED"

    (task_definition_arn,) = lisa.task_definitions(MODEL)
    container = lisa.client("ecs").describe_task_definition(taskDefinition=task_definition_arn)[
        "taskDefinition"
    ]["containerDefinitions"][0]
    assert container["secrets"] == [{"name": "HF_TOKEN", "valueFrom": arn}]
    assert "HF_TOKEN" not in {variable["name"] for variable in container["environment"]}
