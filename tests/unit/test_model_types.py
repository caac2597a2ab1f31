"""The tts, stt and rerank model types: which containers may serve them, streaming, and the LiteLLM
parameters the registry gives them (issue 16 item 3)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lisa_domain.litellm_params import SELF_HOSTED_API_KEY, litellm_params
from lisa_domain.schema import CreateModelRequest, ModelDefinition
from local_mode.resources import LocalResources
from tests.support.lisa_payloads import EXTERNAL_MODEL, VLLM_MODEL
from tests.unit.conftest import Workflows
from tests.unit.test_admin_api import assert_nothing_written, call, seed, table_items

ENDPOINT = "http://model-alb.internal"


def self_hosted(model_type: str, container: str, **changes: Any) -> dict[str, Any]:
    return {
        **VLLM_MODEL,
        "modelId": f"{model_type}-{container}",
        "modelName": "org/model",
        "modelType": model_type,
        "inferenceContainer": container,
        "streaming": False,
        **changes,
    }


@pytest.mark.parametrize(
    ("model_type", "container"), [("stt", "vllm"), ("rerank", "tei"), ("rerank", "vllm")]
)
def test_self_hosted_audio_and_rerank_models_on_the_containers_that_serve_them(
    model_type: str, container: str
) -> None:
    assert CreateModelRequest.model_validate(self_hosted(model_type, container)).modelType == model_type


@pytest.mark.parametrize(
    ("model_type", "container", "served_by"),
    [
        ("tts", "vllm", "no self-hosted container"),
        ("tts", "tei", "no self-hosted container"),
        ("stt", "tei", "vllm"),
        ("stt", "tgi", "vllm"),
        ("rerank", "tgi", "tei or vllm"),
    ],
)
def test_other_containers_are_refused_naming_the_field(
    model_type: str, container: str, served_by: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        CreateModelRequest.model_validate(self_hosted(model_type, container))
    assert f"inferenceContainer: {model_type} models are served by {served_by}" in str(raised.value)


def test_third_party_audio_and_rerank_models_need_no_container() -> None:
    for model_type, name in (
        ("tts", "openai/tts-1"),
        ("stt", "openai/whisper-1"),
        ("rerank", "cohere/rerank-v3.5"),
    ):
        body = {
            **EXTERNAL_MODEL,
            "modelId": model_type,
            "modelName": name,
            "modelType": model_type,
            "streaming": False,
        }
        assert not CreateModelRequest.model_validate(body).self_hosted


def test_a_reranker_cannot_stream() -> None:
    with pytest.raises(ValidationError, match="streaming: rerank models cannot stream"):
        CreateModelRequest.model_validate(self_hosted("rerank", "tei", streaming=True))


def test_the_admin_api_refuses_a_self_hosted_speech_model_and_writes_nothing(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, answer = call("POST", "/models", body=self_hosted("tts", "vllm"))
    assert status == 422, answer
    assert "inferenceContainer" in answer["message"]
    assert_nothing_written(resources, workflows)


def test_a_tei_reranker_is_served_through_litellms_tei_rerank_provider() -> None:
    """TEI has no OpenAI-compatible rerank route: LiteLLM's Hugging Face provider posts TEI's own
    request to ``<api_base>/rerank`` (checked end to end in tests/serve/test_surface_rerank.py)."""
    model = ModelDefinition.model_validate(self_hosted("rerank", "tei"))
    assert litellm_params(model, endpoint_url=ENDPOINT + "/") == {
        "model": "huggingface/org/model",
        "api_base": ENDPOINT,
        "api_key": SELF_HOSTED_API_KEY,
    }


@pytest.mark.parametrize("model_type", ["stt", "rerank", "textgen"])
def test_vllm_models_keep_the_openai_compatible_v1_base(model_type: str) -> None:
    model = ModelDefinition.model_validate(self_hosted(model_type, "vllm"))
    params = litellm_params(model, endpoint_url=ENDPOINT)
    assert params["model"] == "hosted_vllm/org/model" and params["api_base"] == ENDPOINT + "/v1"


def test_a_tei_embedding_model_keeps_the_openai_provider() -> None:
    model = ModelDefinition.model_validate(self_hosted("embedding", "tei"))
    assert litellm_params(model, endpoint_url=ENDPOINT)["model"] == "openai/org/model"


def test_an_update_cannot_make_a_reranker_stream(resources: LocalResources, workflows: Workflows) -> None:
    seed(
        resources,
        "ranker",
        body={**EXTERNAL_MODEL, "modelName": "cohere/rerank-v3.5", "modelType": "rerank", "streaming": False},
    )
    before = table_items(resources)
    status, answer = call("PUT", "/models/ranker", body={"streaming": True})
    assert status == 400, answer
    assert answer["message"] == "streaming: rerank models cannot stream"
    assert table_items(resources) == before and workflows.count() == 0
