"""vLLM flags from container settings (``lisa_domain.vllm_flags``) in the registered task definition."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest

from lisa_domain.schema import CreateModelRequest, ModelRecord, ModelStatus
from lisa_domain.vllm_flags import VllmSettingError, vllm_flags
from tests.support.lisa_payloads import VLLM_MODEL
from workflow_steps.hosting.task_definition import task_definition_request

TOOLS = {"VLLM_ENABLE_AUTO_TOOL_CHOICE": "true", "VLLM_TOOL_CALL_PARSER": "hermes"}


def test_tool_calling_quantization_and_context_window_become_flags() -> None:
    flags = vllm_flags({**TOOLS, "VLLM_QUANTIZATION": "awq"}, 1, 8192)
    assert flags == [
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--quantization",
        "awq",
        "--max-model-len",
        "8192",
    ]


def test_tensor_parallelism_follows_the_gpu_count_unless_set() -> None:
    assert vllm_flags({}, 4) == ["--tensor-parallel-size", "4"]
    assert vllm_flags({}, 1) == []
    assert vllm_flags({"VLLM_TENSOR_PARALLEL_SIZE": "2"}, 4) == ["--tensor-parallel-size", "2"]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"VLLM_MAX_MODEL_LEN": "8192"}, "8192"),
        ({"MAX_TOTAL_TOKENS": "4096"}, "4096"),  # LISA's legacy name
        ({"VLLM_MAX_MODEL_LEN": "0", "MAX_TOTAL_TOKENS": "2048"}, "2048"),  # as the registry reads it
    ],
)
def test_max_model_len_is_the_context_window_the_registry_records(
    environment: dict[str, str], expected: str
) -> None:
    container = _container(environment, "g6.2xlarge")
    assert container["command"][-2:] == ["--max-model-len", expected]


def test_auto_tool_choice_false_adds_nothing() -> None:
    assert vllm_flags({"VLLM_ENABLE_AUTO_TOOL_CHOICE": "false"}, 0) == []


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"VLLM_ENABLE_AUTO_TOOL_CHOICE": "true"}, "VLLM_TOOL_CALL_PARSER"),
        (
            {"VLLM_ENABLE_AUTO_TOOL_CHOICE": "maybe", "VLLM_TOOL_CALL_PARSER": "hermes"},
            "VLLM_ENABLE_AUTO_TOOL_CHOICE",
        ),
        ({"VLLM_TENSOR_PARALLEL_SIZE": "0"}, "VLLM_TENSOR_PARALLEL_SIZE"),
    ],
)
def test_settings_that_make_no_valid_flag_are_refused_naming_them(
    environment: dict[str, str], named: str
) -> None:
    with pytest.raises(VllmSettingError, match=f"containerConfig.environment.{named}"):
        vllm_flags(environment, 0)


def _vllm(environment: dict[str, str], instance_type: str = "g6e.12xlarge") -> dict[str, Any]:
    body = copy.deepcopy(VLLM_MODEL)
    body["instanceType"] = instance_type
    body["containerConfig"]["environment"] = environment
    return body


def _container(environment: dict[str, str], instance_type: str = "g6e.12xlarge") -> dict[str, Any]:
    definition = CreateModelRequest.model_validate(_vllm(environment, instance_type)).definition()
    record = ModelRecord.model_validate(
        {**definition.model_dump(), "status": ModelStatus.CREATING, "createdAt": 1, "updatedAt": 1}
    )
    request = task_definition_request(record, family="f", execution_role_arn="arn:e", task_role_arn="arn:t")
    container: dict[str, Any] = request["containerDefinitions"][0]
    return container


def test_the_registered_task_definition_runs_vllm_with_the_flags() -> None:
    command = _container({**TOOLS, "VLLM_MAX_MODEL_LEN": "8192"})["command"]
    assert command[:2] == ["--model", VLLM_MODEL["modelName"]]
    assert command[command.index("--enable-auto-tool-choice") :] == [
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--tensor-parallel-size",
        "4",  # g6e.12xlarge has 4 GPUs
        "--max-model-len",
        "8192",
    ]


def test_a_create_request_with_an_invalid_vllm_setting_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="VLLM_TOOL_CALL_PARSER"):
        CreateModelRequest.model_validate(_vllm({"VLLM_ENABLE_AUTO_TOOL_CHOICE": "true"}))
