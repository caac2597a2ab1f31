"""The canary request: built as LiteLLM's Router sends it; error bodies read; answers checked."""

from __future__ import annotations

import pytest

from lisa_domain.litellm_params import litellm_params
from lisa_domain.schema import ModelRecord, ModelType
from tests.support import lisa_payloads as payloads
from workflow_steps.canary import (
    CanaryFailed,
    answer_problem,
    backend_message,
    canary_request,
    skip_reason,
)


def record(body: dict[str, object], **changes: object) -> ModelRecord:
    return ModelRecord.model_validate(
        {**body, "status": "Creating", "createdAt": 1, "updatedAt": 1, **changes}
    )


def test_textgen_request_is_a_one_token_chat_completion_to_the_model_name() -> None:
    model = record(payloads.VLLM_MODEL)
    request = canary_request(model, litellm_params(model, endpoint_url="http://internal-alb:80/"))
    assert request.url == "http://internal-alb:80/v1/chat/completions"
    assert request.body["model"] == model.modelName and request.body["max_tokens"] == 1
    assert request.headers["Authorization"] == "Bearer not-used"


def test_embedding_request_is_one_input() -> None:
    model = record(payloads.VLLM_MODEL, modelType="embedding", inferenceContainer="tei", streaming=False)
    request = canary_request(model, litellm_params(model, endpoint_url="https://alb"))
    assert request.url == "https://alb/v1/embeddings"
    assert request.body == {"model": model.modelName, "input": ["LISA canary"]}


def test_a_non_http_endpoint_is_refused() -> None:
    model = record(payloads.VLLM_MODEL)
    with pytest.raises(CanaryFailed, match="not an http"):
        canary_request(model, litellm_params(model, endpoint_url="file:///etc"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"error": {"message": "Invalid model name"}}', "Invalid model name"),
        (b'{"object": "error", "message": "The model `x` does not exist."}', "The model `x` does not exist."),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b"upstream connect error", "upstream connect error"),
        (b"", "(empty body)"),
    ],
)
def test_backend_message_reads_the_error_text(raw: bytes, expected: str) -> None:
    assert backend_message(raw) == expected


def test_answers_without_choices_or_embedding_are_problems() -> None:
    assert answer_problem(ModelType.TEXTGEN, {"choices": [{"message": {}}]}) is None
    assert answer_problem(ModelType.TEXTGEN, {"choices": []}) == "the answer has no choices"
    assert answer_problem(ModelType.EMBEDDING, {"data": [{"embedding": [0.1]}]}) is None
    assert answer_problem(ModelType.EMBEDDING, {"data": []}) is not None


def test_bedrock_external_and_imagegen_models_are_skipped_with_a_reason() -> None:
    bedrock = skip_reason(record(payloads.BEDROCK_MODEL))
    assert bedrock and "Bedrock" in bedrock
    external = skip_reason(record(payloads.EXTERNAL_MODEL))
    assert external and "external" in external
    imagegen = skip_reason(record(payloads.VLLM_MODEL, modelType="imagegen"))
    assert imagegen and "imagegen" in imagegen
    assert skip_reason(record(payloads.VLLM_MODEL)) is None
