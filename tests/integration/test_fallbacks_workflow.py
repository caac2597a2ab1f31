"""A ``fallbacks`` update through the real update workflow (real ASL, real steps, moto): metadata
only, like a description change (no stack update, no new deployment), written with the final status."""

from __future__ import annotations

from lisa_domain.registry import LITELLM_PARAMS
from tests.integration.conftest import BEDROCK_MODEL, VLLM_MODEL, Lisa

MODEL = VLLM_MODEL["modelId"]
SPARE = {**BEDROCK_MODEL, "modelId": "spare"}


def test_a_fallbacks_update_is_metadata_only(lisa: Lisa) -> None:
    assert lisa.create(VLLM_MODEL).status == "SUCCEEDED"
    assert lisa.create(SPARE).status == "SUCCEEDED"
    stack_before = lisa.stack(MODEL)
    params_before = lisa.item(MODEL)[LITELLM_PARAMS]

    execution = lisa.update(MODEL, {"fallbacks": ["spare"]})

    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.states == ["StartUpdate", "TouchesInfrastructure?", "FinishUpdate", "Updated"]
    item = lisa.item(MODEL)
    assert item["fallbacks"] == ["spare"] and item["status"] == "InService"
    assert item[LITELLM_PARAMS] == params_before
    assert lisa.stack(MODEL) == stack_before

    assert lisa.update(MODEL, {"fallbacks": []}).status == "SUCCEEDED"
    assert lisa.item(MODEL)["fallbacks"] == []
