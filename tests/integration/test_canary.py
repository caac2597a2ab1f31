"""The canary before InService: the real create/update ASL and steps in moto, the canary request
sent over HTTP to a stand-in model server (``tests.support.fake_backend``, see ``model_network``)."""

from __future__ import annotations

from lisa_domain.registry import LITELLM_PARAMS
from tests.integration.conftest import BEDROCK_MODEL, VLLM_MODEL, Lisa
from workflow_steps.canary import CANARY_MAX_POLLS

MODEL = VLLM_MODEL["modelId"]
SERVED_NAME = VLLM_MODEL["modelName"]


def test_create_sends_one_completion_before_registering(lisa: Lisa) -> None:
    execution = lisa.create(VLLM_MODEL)

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states[-5:] == [
        "ServiceHealthy?",
        "Canary",
        "CanaryAnswered?",
        "RegisterModel",
        "Created",
    ]
    # The request LiteLLM sends for hosted_vllm/<name>: the name without the prefix, the placeholder key.
    assert lisa.backend.calls[SERVED_NAME] == 1
    assert lisa.backend.authorization[SERVED_NAME] == "Bearer not-used"
    assert lisa.item(MODEL)["status"] == "InService"


def test_a_model_that_answers_an_error_ends_failed_with_the_backends_reason_and_is_cleaned_up(
    lisa: Lisa,
) -> None:
    execution = lisa.create({**VLLM_MODEL, "modelName": "bad400"})

    assert execution.status == "FAILED"
    assert "Canary" in execution.states and "RegisterModel" not in execution.states
    assert lisa.backend.calls["bad400"] == 1  # an error answer is not retried
    item = lisa.item(MODEL)
    assert item["status"] == "Failed" and LITELLM_PARAMS not in item
    assert "HTTP 400: This model's maximum context length is 16 tokens" in item["statusReason"]
    assert "a one-token completion" in item["statusReason"]
    assert lisa.stack(MODEL) is None and lisa.task_definitions(MODEL) == []


def test_an_unreachable_model_is_retried_within_the_bound_then_fails(lisa: Lisa) -> None:
    lisa.max_polls = 50  # the canary's own bound applies
    execution = lisa.create({**VLLM_MODEL, "modelName": "fail503"})

    assert execution.status == "FAILED"
    assert execution.states.count("Canary") == CANARY_MAX_POLLS
    assert lisa.backend.calls["fail503"] == CANARY_MAX_POLLS
    item = lisa.item(MODEL)
    assert f"did not finish within {CANARY_MAX_POLLS} polls" in item["statusReason"]
    assert "HTTP 503" in item["statusReason"]
    assert lisa.stack(MODEL) is None


def test_start_sends_the_canary_before_registering(lisa: Lisa) -> None:
    served = lisa
    assert served.create(VLLM_MODEL).status == "SUCCEEDED"
    assert served.update(MODEL, {"enabled": False}).status == "SUCCEEDED"
    calls = served.backend.calls[SERVED_NAME]

    started = served.update(MODEL, {"enabled": True})

    assert started.status == "SUCCEEDED", started.cause
    assert started.states[-3:] == ["CanaryAnswered?", "FinishUpdate", "Updated"]
    assert served.backend.calls[SERVED_NAME] == calls + 1


def test_bedrock_models_skip_the_canary_and_the_skip_is_in_the_history(lisa: Lisa) -> None:
    execution = lisa.create(BEDROCK_MODEL)

    assert execution.status == "SUCCEEDED", execution.cause
    assert "Canary" in execution.states
    history = lisa.item(BEDROCK_MODEL["modelId"])["statusHistory"]
    assert [entry["status"] for entry in history] == ["Creating", "Creating", "InService"]
    assert history[1]["reason"].startswith("canary skipped: Bedrock models are not probed")
    assert sum(lisa.backend.calls.values()) == 0
