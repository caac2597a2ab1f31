"""Create workflow: the real create_model ASL with the real steps, in moto."""

from __future__ import annotations

import copy

from lisa_domain.instance_types import gpu_count
from lisa_domain.registry import LITELLM_PARAMS
from tests.integration.conftest import BEDROCK_MODEL, EXTERNAL_MODEL, STACK_PREFIX, VLLM_MODEL, Lisa
from workflow_steps.hosting.task_definition import resource_name


def test_self_hosted_create_builds_stack_task_definition_and_registers(lisa: Lisa) -> None:
    version_before = lisa.registry.version()
    execution = lisa.create(VLLM_MODEL)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states[:6] == [
        "StartCreate",
        "SelfHosted?",
        "CreateInfrastructure",
        "WaitForStack",
        "PollCreate",
        "StackCreated?",
    ]
    assert "PollCreateService" in execution.states and execution.states[-2:] == ["RegisterModel", "Created"]

    item = lisa.item("mistral-7b")
    assert item["status"] == "InService"
    assert lisa.history("mistral-7b") == ["Creating", "InService"]
    assert lisa.registry.version() > version_before

    stack = lisa.stack("mistral-7b")
    assert stack is not None and stack["StackStatus"] == "CREATE_COMPLETE"
    parameters = lisa.stack_parameters("mistral-7b")
    (task_definition_arn,) = lisa.task_definitions("mistral-7b")
    assert parameters["TaskDefinitionArn"] == task_definition_arn
    assert (
        parameters.items()
        >= {
            "ModelId": "mistral-7b",
            "InstanceType": "g5.12xlarge",
            "MinCapacity": "1",
            "MaxCapacity": "3",
            "DesiredCapacity": "1",
            "HealthCheckPath": "/health",
            "UnhealthyThresholdCount": "5",
            "ScalingMetric": "RequestCountPerTarget",
            "ScalingTargetValue": "40",
            "VpcId": lisa.vpc_id,
        }.items()
    )

    endpoint = lisa.stack_outputs("mistral-7b")["EndpointUrl"]
    assert item[LITELLM_PARAMS] == {
        "model": "hosted_vllm/mistralai/Mistral-7B-Instruct-v0.3",
        "api_base": f"{endpoint}/v1",
        "api_key": "not-used",
    }

    task = lisa.client("ecs").describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
    assert task["family"] == STACK_PREFIX + "mistral-7b"
    assert task["networkMode"] == "bridge"
    assert task["executionRoleArn"].endswith("lisa-test-model-execution")
    assert task["taskRoleArn"].endswith("lisa-test-model-task")
    (container,) = task["containerDefinitions"]
    assert container["name"] == "model"
    assert container["image"] == "vllm/vllm-openai:v0.9.1"
    assert (
        container["portMappings"][0]["containerPort"] == 8080
        and container["portMappings"][0]["hostPort"] == 0
    )
    assert container["resourceRequirements"] == [{"type": "GPU", "value": str(gpu_count("g5.12xlarge"))}]
    assert container["linuxParameters"]["sharedMemorySize"] == 4096
    assert container["healthCheck"]["command"] == [
        "CMD-SHELL",
        "curl -f http://localhost:8080/health || exit 1",
    ]
    assert container["healthCheck"]["startPeriod"] == 300  # clamped to ECS's maximum
    environment = {pair["name"]: pair["value"] for pair in container["environment"]}
    assert environment["MAX_MODEL_LEN"] == "8192"
    assert "--served-model-name" in container["command"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/lisa/test/models"

    service = lisa.service("mistral-7b")
    assert service["desiredCount"] == 1 and service["runningCount"] == 1
    assert service["taskDefinition"] == task_definition_arn


def test_bedrock_create_registers_without_infrastructure(lisa: Lisa) -> None:
    execution = lisa.create(BEDROCK_MODEL)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states == [
        "StartCreate",
        "SelfHosted?",
        "Canary",  # skipped for Bedrock, and the skip recorded (tests/integration/test_canary.py)
        "CanaryAnswered?",
        "RegisterModel",
        "Created",
    ]
    item = lisa.item("claude-haiku")
    assert item["status"] == "InService"
    assert item[LITELLM_PARAMS] == {"model": "bedrock/anthropic.claude-3-haiku-20240307-v1:0"}
    assert lisa.history("claude-haiku") == ["Creating", "Creating", "InService"]
    assert lisa.stack("claude-haiku") is None
    assert lisa.task_definitions("claude-haiku") == []


def test_external_create_references_the_key_by_secret_arn(lisa: Lisa) -> None:
    execution = lisa.create(copy.deepcopy(EXTERNAL_MODEL))

    assert execution.status == "SUCCEEDED", execution.cause
    item = lisa.item("gpt-4o-mini")
    arn = lisa.client("secretsmanager").describe_secret(SecretId="lisa/test/models/gpt-4o-mini")["ARN"]
    assert item[LITELLM_PARAMS] == {
        "model": "openai/gpt-4o-mini",
        "api_base": "https://llm.example.com/v1",
        "api_key_secret_arn": arn,
    }
    assert "sk-test" not in str(item) and "sk-test" not in str(execution.output)


def test_a_long_mixed_case_id_gets_a_hashed_stack_and_family_within_the_limits(lisa: Lisa) -> None:
    model_id = "Mistral-7B_Instruct.v0-3-" + "x" * 103  # 128 characters, as LISA's ids may be
    execution = lisa.create({**VLLM_MODEL, "modelId": model_id})

    assert execution.status == "SUCCEEDED", execution.cause
    assert lisa.item(model_id)["status"] == "InService"
    name = resource_name(STACK_PREFIX, model_id)
    assert len(name) == 128 and name.startswith(STACK_PREFIX + "mistral-7b-instruct-v0-3-")
    (stack,) = lisa.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["ModelId"] == model_id
    families = lisa.client("ecs").list_task_definitions(familyPrefix=name, status="ACTIVE")
    assert len(families["taskDefinitionArns"]) == 1
