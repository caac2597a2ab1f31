"""LISA drop-in, admin side: LISA's routes and fields (instances, context window, hosting type, model
types, null as absent, ids, docs, unsupported fields) through the real admin handler on moto."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

import litellm
import pytest

from admin_api import handler, openapi
from lisa_domain.context_window import KNOWN_CONTEXT_WINDOWS, known_context_window
from lisa_domain.instance_types import GPU_COUNTS, instance_types
from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import CreateModelRequest, ModelStatus
from local_mode.resources import LocalResources
from tests.support.lisa_payloads import BEDROCK_MODEL, LISAPY_BEDROCK_MODEL, VLLM_MODEL
from tests.unit.conftest import Workflows
from tests.unit.helpers import USER_A, FakeContext, rest_event
from tests.unit.test_admin_api import assert_nothing_written, call, seed
from workflow_steps.hosting.task_definition import (
    STACK_NAME_MAX_LENGTH,
    resource_name,
    task_definition_request,
)


def _vllm(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VLLM_MODEL)
    body.update(changes)
    return body


def _with_environment(environment: dict[str, str]) -> dict[str, Any]:
    body = _vllm()
    body["containerConfig"]["environment"] = environment
    return body


# ---- GET /models/metadata/instances ------------------------------------------------------------------
def test_instances_lists_every_ec2_type_and_any_caller_may_read_it(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, body = call("GET", "/models/metadata/instances", principal=USER_A)
    assert status == 200
    assert isinstance(body, list) and body == list(instance_types())
    assert {"g5.xlarge", "p5.48xlarge", "m5.large", "c7i.2xlarge"} <= set(body)
    assert len(body) > 500


def test_every_listed_instance_type_is_accepted_by_instance_type() -> None:
    for name in instance_types():
        assert CreateModelRequest.model_validate(_vllm(instanceType=name)).instanceType == name


def test_every_gpu_count_names_a_real_instance_type() -> None:
    assert set(GPU_COUNTS) <= set(instance_types())


def test_a_cpu_instance_type_is_created_and_its_task_asks_for_no_gpu(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, body = call("POST", "/models", body=_vllm(instanceType="c7i.2xlarge"))
    assert status == 201, body
    record = ModelRegistry(resources.models_table).get("mistral-7b-instruct")
    container = task_definition_request(
        record, family="f", execution_role_arn="arn:e", task_role_arn="arn:t"
    )["containerDefinitions"][0]
    assert "resourceRequirements" not in container
    gpu = task_definition_request(
        record.model_copy(update={"instanceType": "g6e.12xlarge"}),
        family="f",
        execution_role_arn="arn:e",
        task_role_arn="arn:t",
    )["containerDefinitions"][0]
    assert gpu["resourceRequirements"] == [{"type": "GPU", "value": "4"}]


def test_a_name_that_is_not_an_instance_type_is_422_without_echo(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, body = call("POST", "/models", body=_vllm(instanceType="<b>g5.huge</b>"))
    assert status == 422
    assert body["errors"][0]["field"] == "body.instanceType"
    assert "g5.huge" not in json.dumps(body)
    assert_nothing_written(resources, workflows)


# ---- contextWindow -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"MAX_MODEL_LEN": "8192"}, 8192),
        ({"VLLM_MAX_MODEL_LEN": "32768", "MAX_MODEL_LEN": "8192"}, 32768),
        ({"MAX_TOTAL_TOKENS": "4096"}, 4096),
        ({"VLLM_MAX_MODEL_LEN": "0", "MAX_TOTAL_TOKENS": "2048"}, 2048),
        ({"MAX_MODEL_LEN": "lots"}, None),
        ({}, None),
    ],
)
def test_registration_fills_the_context_window_from_the_container_environment(
    resources: LocalResources, workflows: Workflows, environment: dict[str, str], expected: int | None
) -> None:
    status, body = call("POST", "/models", body=_with_environment(environment))
    assert status == 201, body
    assert body["model"]["contextWindow"] == expected
    assert ModelRegistry(resources.models_table).get("mistral-7b-instruct").contextWindow == expected


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", 200_000),
        ("bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0", 200_000),
        ("bedrock/converse/eu.amazon.nova-pro-v1:0", 300_000),
        ("openai/gpt-4o-mini", 128_000),
        ("bedrock/some.unknown-model-v1:0", None),
    ],
)
def test_registration_fills_the_context_window_of_known_bedrock_and_external_models(
    resources: LocalResources, workflows: Workflows, model_name: str, expected: int | None
) -> None:
    status, body = call("POST", "/models", body={**BEDROCK_MODEL, "modelName": model_name})
    assert status == 201, body
    assert body["model"]["contextWindow"] == expected


def test_a_context_window_given_at_registration_wins(resources: LocalResources, workflows: Workflows) -> None:
    status, body = call("POST", "/models", body={**BEDROCK_MODEL, "contextWindow": 1000})
    assert status == 201 and body["model"]["contextWindow"] == 1000


@pytest.mark.parametrize("name", sorted(KNOWN_CONTEXT_WINDOWS))
def test_known_context_windows_agree_with_litellm(name: str) -> None:
    try:
        info = litellm.get_model_info(name)
    except Exception:
        pytest.skip(f"LiteLLM does not map {name}")
    assert known_context_window(name) == info["max_input_tokens"]


def test_put_context_window_sets_it_without_a_workflow(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "Stopped-Model", ModelStatus.STOPPED, reason="stopped by alice")
    status, body = call("PUT", "/models/Stopped-Model/context-window", body={"contextWindow": 65536})
    assert status == 200, body
    assert body["model"]["contextWindow"] == 65536 and body["model"]["status"] == "Stopped"
    record = ModelRegistry(resources.models_table).get("Stopped-Model")
    assert record.contextWindow == 65536
    assert record.status == ModelStatus.STOPPED and record.statusReason == "stopped by alice"
    assert workflows.count() == 0
    status, body = call("GET", "/models/Stopped-Model", principal=USER_A)
    assert status == 200 and body["model"]["contextWindow"] == 65536  # callers see it too


@pytest.mark.parametrize(
    "body",
    [{"contextWindow": 0}, {"contextWindow": -5}, {"contextWindow": "big"}, {}, {"contextWindow": None}],
    ids=["zero", "negative", "string", "missing", "null"],
)
def test_put_context_window_rejects_a_bad_value(
    resources: LocalResources, workflows: Workflows, body: dict[str, Any]
) -> None:
    seed(resources, "m1")
    status, answer = call("PUT", "/models/m1/context-window", body=body)
    assert status == 422
    assert answer["errors"][0]["field"] == "body.contextWindow"
    assert ModelRegistry(resources.models_table).get("m1").contextWindow is None


def test_put_context_window_is_for_admins_on_existing_models_not_being_deleted(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "m1")
    seed(resources, "gone", ModelStatus.DELETING)
    status, _ = call("PUT", "/models/m1/context-window", body={"contextWindow": 10}, principal=USER_A)
    assert status == 403
    status, answer = call("PUT", "/models/missing/context-window", body={"contextWindow": 10})
    assert status == 404, answer
    status, answer = call("PUT", "/models/gone/context-window", body={"contextWindow": 10})
    assert status == 409 and "Deleting" in answer["message"]
    assert ModelRegistry(resources.models_table).get("m1").contextWindow is None


# ---- hostingType, model types ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (BEDROCK_MODEL, "third_party"),
        (VLLM_MODEL, "lisa_hosted"),
        ({**BEDROCK_MODEL, "hostingType": "third_party"}, "third_party"),
        (_vllm(hostingType="third_party"), "third_party"),
        (
            {**BEDROCK_MODEL, "modelUrl": "https://93.184.216.34/v1", "hostingType": "internal_hosted"},
            "internal_hosted",
        ),
    ],
    ids=["bedrock-absent", "self-hosted-absent", "given", "given-self-hosted", "internal"],
)
def test_hosting_type_is_accepted_and_returned(
    resources: LocalResources, workflows: Workflows, body: dict[str, Any], expected: str
) -> None:
    status, answer = call("POST", "/models", body=body)
    assert status == 201, answer
    assert answer["model"]["hostingType"] == expected
    assert ModelRegistry(resources.models_table).get(body["modelId"]).hostingType == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {**BEDROCK_MODEL, "hostingType": "internal_hosted"},
            "hostingType: internal_hosted models need modelUrl",
        ),
        (
            {**BEDROCK_MODEL, "hostingType": "lisa_hosted"},
            "hostingType: lisa_hosted models need instanceType",
        ),
        ({**BEDROCK_MODEL, "hostingType": "on_prem"}, "body.hostingType"),
    ],
    ids=["internal-without-url", "lisa-hosted-without-hosting", "unknown"],
)
def test_inconsistent_hosting_type_is_422(
    resources: LocalResources, workflows: Workflows, body: dict[str, Any], message: str
) -> None:
    status, answer = call("POST", "/models", body=body)
    assert status == 422
    assert message in answer["message"]
    assert_nothing_written(resources, workflows)


@pytest.mark.parametrize("model_type", ["imagegen", "videogen"])
def test_image_and_video_models_are_accepted(
    resources: LocalResources, workflows: Workflows, model_type: str
) -> None:
    body = {
        "modelId": f"{model_type}-1",
        "modelName": "bedrock/amazon.nova-canvas-v1:0",
        "modelType": model_type,
    }
    status, answer = call("POST", "/models", body=body)
    assert status == 201, answer
    assert answer["model"]["modelType"] == model_type


# ---- null means absent -------------------------------------------------------------------------------
def test_lisapy_bedrock_payload_with_nulls_is_accepted_as_absent(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, answer = call("POST", "/models", body=LISAPY_BEDROCK_MODEL)
    assert status == 201, answer
    model = answer["model"]
    assert model["modelId"] == "Claude-3-Haiku_Bedrock"
    assert model["allowedGroups"] == [] and model["modelUrl"] is None
    assert model["hostingType"] == "third_party" and model["contextWindow"] == 200_000
    assert "guardrailsConfig" not in model
    stored = ModelRegistry(resources.models_table).get_item("Claude-3-Haiku_Bedrock")
    assert stored["streaming"] is True and "guardrailsConfig" not in stored


@pytest.mark.parametrize(
    ("field", "default"),
    [("streaming", False), ("features", []), ("allowedGroups", []), ("modelDescription", "")],
)
def test_null_optional_field_takes_its_default(
    resources: LocalResources, workflows: Workflows, field: str, default: Any
) -> None:
    status, answer = call("POST", "/models", body={**BEDROCK_MODEL, field: None})
    assert status == 201, answer
    assert answer["model"][field] == default
    assert ModelRegistry(resources.models_table).get_item("claude-haiku")[field] == default


def test_update_with_nulls_changes_only_the_fields_given(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "m1")
    body = {"modelDescription": "new", "streaming": None, "allowedGroups": None, "enabled": None}
    status, answer = call("PUT", "/models/m1", body=body)
    assert status == 200, answer
    assert workflows.executions("update")[0]["input"]["changes"] == {"modelDescription": "new"}
    status, answer = call("PUT", "/models/m1", body={"streaming": None})
    assert status == 422 and "an update needs at least one field" in answer["message"]


# ---- model ids and the AWS names derived from them ---------------------------------------------------
@pytest.mark.parametrize("model_id", ["Claude-Sonnet", "x" * 100, "A" + "b.c_d-" * 21])
def test_lisa_model_ids_are_accepted(resources: LocalResources, workflows: Workflows, model_id: str) -> None:
    status, answer = call("POST", "/models", body={**BEDROCK_MODEL, "modelId": model_id})
    assert status == 201, answer
    status, answer = call("GET", f"/models/{model_id}")
    assert status == 200 and answer["model"]["modelId"] == model_id


def test_resource_names_fit_the_limits_and_never_collide() -> None:
    prefix = "lisa-prod-model-"
    ids = ["model-a", "Model-A", "model.a", "model_a", "m" * 128, "m" * 127 + "M", "m" * 127 + "n"]
    names = [resource_name(prefix, model_id) for model_id in ids]
    assert len(set(names)) == len(ids)
    for name in names:
        assert len(name) <= STACK_NAME_MAX_LENGTH
        assert re.fullmatch(r"[a-zA-Z][-a-zA-Z0-9]*", name)
    # Names of ids that were valid before (lower case, up to 63) do not change: their stacks exist.
    assert resource_name(prefix, "mistral-7b") == "lisa-prod-model-mistral-7b"
    assert resource_name(prefix, "a.b") == f"{prefix}a-b-{hashlib.sha256(b'a.b').hexdigest()[:6]}"


# ---- LISA fields that are not supported yet ----------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "field", "message"),
    [
        (
            "POST",
            "/models",
            {**BEDROCK_MODEL, "guardrailsConfig": {"guardrails": {}}},
            "body.guardrailsConfig",
            "guardrails are not supported yet",
        ),
        (
            "PUT",
            "/models/m1",
            {"guardrailsConfig": {"guardrails": {}}},
            "body.guardrailsConfig",
            "guardrails are not supported yet",
        ),
    ],
    ids=["create-guardrails", "update-guardrails"],
)
def test_guardrails_are_rejected_with_a_clear_422(
    resources: LocalResources,
    workflows: Workflows,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    if method == "PUT":
        seed(resources, "m1")
    status, answer = call(method, path, body=body)
    assert status == 422
    assert answer["errors"] == [{"field": field, "message": f"{message}; remove guardrailsConfig"}]
    assert workflows.count() == 0


# ---- GET /docs ---------------------------------------------------------------------------------------
def test_docs_is_a_self_contained_html_page_of_every_route(
    resources: LocalResources, workflows: Workflows
) -> None:
    response = handler.lambda_handler(rest_event("GET", "/docs", principal=USER_A), FakeContext())
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Content-Type"] == ["text/html; charset=utf-8"]
    page = response["body"]
    assert page.startswith("<!DOCTYPE html>")
    document = json.loads(openapi.document())
    for path, item in document["paths"].items():
        for method in item:
            assert f'<span class="method">{method.upper()}</span> <code>{path}</code>' in page
    assert 'id="schema-CreateModelRequest"' in page and "contextWindow" in page
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert not re.search(r"(href|src)=\"(https?:)?//", page)
