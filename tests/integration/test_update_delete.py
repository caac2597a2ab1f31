"""Update (metadata, autoscaling, container), stop, start and delete: real ASL, real steps, moto."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lisa_domain.registry import LITELLM_PARAMS
from tests.integration.conftest import BEDROCK_MODEL, EXTERNAL_MODEL, VLLM_MODEL, Lisa
from workflow_steps.hosting.ecs import EcsHostingBackend

MODEL = "mistral-7b"


@pytest.fixture
def served(lisa: Lisa) -> Lisa:
    assert lisa.create(VLLM_MODEL).status == "SUCCEEDED"
    return lisa


def test_metadata_update_touches_no_infrastructure(served: Lisa) -> None:
    stack_before = served.stack(MODEL)
    params_before = served.item(MODEL)[LITELLM_PARAMS]
    execution = served.update(
        MODEL,
        {"modelDescription": "Mistral for the help desk", "allowedGroups": ["support"], "streaming": False},
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states == ["StartUpdate", "TouchesInfrastructure?", "FinishUpdate", "Updated"]
    item = served.item(MODEL)
    assert item["modelDescription"] == "Mistral for the help desk"
    assert item["allowedGroups"] == ["support"] and item["streaming"] is False
    assert item[LITELLM_PARAMS] == params_before
    assert served.history(MODEL) == ["Creating", "InService", "Updating", "InService"]
    stack_after = served.stack(MODEL)
    assert stack_before and stack_after and stack_after["StackStatus"] == "CREATE_COMPLETE"


def test_autoscaling_update_changes_the_group(served: Lisa) -> None:
    execution = served.update(
        MODEL, {"autoScalingInstanceConfig": {"minCapacity": 2, "maxCapacity": 4, "cooldown": 120}}
    )

    assert execution.status == "SUCCEEDED", execution.cause
    assert "PollUpdate" in execution.states and "PollUpdateService" in execution.states
    parameters = served.stack_parameters(MODEL)
    assert (parameters["MinCapacity"], parameters["MaxCapacity"], parameters["DesiredCapacity"]) == (
        "2",
        "4",
        "2",
    )
    assert parameters["Cooldown"] == "120"
    group_name = served.stack_outputs(MODEL)["AutoScalingGroupName"]
    (group,) = served.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
        "AutoScalingGroups"
    ]
    assert (group["MinSize"], group["MaxSize"]) == (2, 4)
    assert served.service(MODEL)["desiredCount"] == 2
    item = served.item(MODEL)
    assert item["status"] == "InService" and item["autoScalingConfig"]["minCapacity"] == 2


def test_container_update_rolls_out_a_new_task_definition(served: Lisa) -> None:
    (old_arn,) = served.task_definitions(MODEL)
    execution = served.update(
        MODEL,
        {
            "containerConfig": {
                "environment": {"MAX_MODEL_LEN": "LISA_MARKED_FOR_DELETION", "NEW": "1"},
                "sharedMemorySize": 8192,
            }
        },
    )

    assert execution.status == "SUCCEEDED", execution.cause
    (new_arn,) = served.task_definitions(MODEL)  # the old revision was deregistered
    assert new_arn != old_arn
    assert served.stack_parameters(MODEL)["TaskDefinitionArn"] == new_arn
    assert served.service(MODEL)["taskDefinition"] == new_arn
    container = served.client("ecs").describe_task_definition(taskDefinition=new_arn)["taskDefinition"][
        "containerDefinitions"
    ][0]
    environment = {pair["name"]: pair["value"] for pair in container["environment"]}
    assert "MAX_MODEL_LEN" not in environment and environment["NEW"] == "1"
    assert container["linuxParameters"]["sharedMemorySize"] == 8192
    item = served.item(MODEL)
    assert item["status"] == "InService" and item["containerConfig"]["environment"] == {
        "VLLM_LOGGING_LEVEL": "INFO",
        "NEW": "1",
    }


def test_stop_unregisters_before_scaling_to_zero_and_start_brings_it_back(
    served: Lisa, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered_while_scaling: list[bool] = []
    original = EcsHostingBackend.start_update

    def spy(self: EcsHostingBackend, model: Any, *, container_changed: bool) -> Any:
        registered_while_scaling.append(LITELLM_PARAMS in served.item(MODEL))
        return original(self, model, container_changed=container_changed)

    monkeypatch.setattr(EcsHostingBackend, "start_update", spy)

    stopped = served.update(MODEL, {"enabled": False})
    assert stopped.status == "SUCCEEDED", stopped.cause
    assert registered_while_scaling == [False]
    item = served.item(MODEL)
    assert item["status"] == "Stopped" and item["enabled"] is False and LITELLM_PARAMS not in item
    parameters = served.stack_parameters(MODEL)
    assert (parameters["MinCapacity"], parameters["DesiredCapacity"]) == ("0", "0")
    service = served.service(MODEL)
    assert service["desiredCount"] == 0 and service["runningCount"] == 0

    started = served.update(MODEL, {"enabled": True})
    assert started.status == "SUCCEEDED", started.cause
    item = served.item(MODEL)
    assert item["status"] == "InService" and item["enabled"] is True
    assert item[LITELLM_PARAMS]["model"] == "hosted_vllm/mistralai/Mistral-7B-Instruct-v0.3"
    assert served.service(MODEL)["desiredCount"] == 1
    # The second Stopping entry is the unregistration (routing removed before scaling to zero).
    history = served.item(MODEL)["statusHistory"]
    assert [entry["status"] for entry in history] == [
        "Creating",
        "InService",
        "Stopping",
        "Stopping",
        "Stopped",
        "Starting",
        "InService",
    ]
    assert history[3]["reason"] == "unregistered from serving; scaling to zero"


def test_bedrock_stop_and_start_only_change_registration(lisa: Lisa) -> None:
    assert lisa.create(BEDROCK_MODEL).status == "SUCCEEDED"
    assert lisa.update("claude-haiku", {"enabled": False}).status == "SUCCEEDED"
    assert (
        LITELLM_PARAMS not in lisa.item("claude-haiku") and lisa.item("claude-haiku")["status"] == "Stopped"
    )
    assert lisa.update("claude-haiku", {"enabled": True}).status == "SUCCEEDED"
    assert lisa.item("claude-haiku")[LITELLM_PARAMS] == {
        "model": "bedrock/anthropic.claude-3-haiku-20240307-v1:0"
    }


def test_delete_removes_everything(served: Lisa) -> None:
    version = served.registry.version()
    execution = served.delete(MODEL)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states[0] == "StartDelete" and execution.states[-4:] == [
        "ReleaseInfrastructure",
        "DeleteSecret",
        "DeleteRecord",
        "Deleted",
    ]
    assert served.stack(MODEL) is None
    assert served.task_definitions(MODEL) == []
    assert MODEL not in [item["modelId"] for item in served.registry.all_items()]
    assert served.registry.version() > version


def test_delete_external_model_deletes_its_secret(lisa: Lisa) -> None:
    assert lisa.create(copy.deepcopy(EXTERNAL_MODEL)).status == "SUCCEEDED"
    assert lisa.secret_exists("gpt-4o-mini")
    assert lisa.delete("gpt-4o-mini").status == "SUCCEEDED"
    assert not lisa.secret_exists("gpt-4o-mini")
    assert lisa.registry.all_items() == []
