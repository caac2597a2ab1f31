"""The LiteLLM deployment parameters of a model, per kind (written to the registry when it is served).

The serve app builds one LiteLLM Router entry per served model::

    {"model_name": record.modelId, "litellm_params": item["litellmParams"]}

The parameters are plain JSON and never carry a secret. For an external provider whose key sits in
Secrets Manager they carry ``api_key_secret_arn`` instead of ``api_key``: that key is not a LiteLLM
parameter, so the serve app must resolve it (read the secret, put its value in ``api_key``, drop
``api_key_secret_arn``) before it hands the entry to the Router.

| kind | ``model`` | ``api_base`` | key |
| --- | --- | --- | --- |
| vLLM | ``hosted_vllm/<modelName>`` | load balancer + ``/v1`` | none (``api_key`` placeholder) |
| TGI, TEI | ``openai/<modelName>`` (OpenAI-compatible) | load balancer + ``/v1`` | none (placeholder) |
| TEI reranker | ``huggingface/<modelName>`` (TEI's own ``/rerank``) | load balancer | none (placeholder) |
| Bedrock | ``bedrock/<modelName>`` (prefix not doubled) | none | the serve task's IAM role |
| external | ``modelName`` as given (``openai/gpt-4o-mini``) | ``modelUrl`` when set | ``api_key_secret_arn`` |
"""

from __future__ import annotations

from typing import Any

from lisa_domain.schema import InferenceContainer, ModelDefinition, ModelType

BEDROCK_PREFIX = "bedrock/"
API_KEY_SECRET_ARN = "api_key_secret_arn"
#: Self-hosted containers need no key, but OpenAI-compatible clients insist on one.
SELF_HOSTED_API_KEY = "not-used"


class LiteLLMParamsError(ValueError):
    """The model lacks what its kind needs to be served (for example a self-hosted model without endpoint)."""


def is_bedrock(model: ModelDefinition) -> bool:
    return not model.self_hosted and model.modelName.startswith(BEDROCK_PREFIX)


def openai_base(endpoint_url: str) -> str:
    """``http://host[:port][/]`` -> ``http://host[:port]/v1`` (idempotent)."""
    base = endpoint_url.rstrip("/")
    return base if base.endswith("/v1") else f"{base}/v1"


def litellm_params(
    model: ModelDefinition,
    *,
    endpoint_url: str | None = None,
    api_key_secret_arn: str | None = None,
) -> dict[str, Any]:
    """The ``litellm_params`` of ``model``'s Router entry.

    ``endpoint_url`` is the self-hosted model's load balancer URL (the per-model stack's
    ``EndpointUrl`` output); ``api_key_secret_arn`` the external provider key's secret.
    """
    if model.self_hosted:
        if not endpoint_url:
            raise LiteLLMParamsError(f"model '{model.modelId}' is self-hosted but has no endpoint URL")
        if model.inferenceContainer == InferenceContainer.TEI and model.modelType == ModelType.RERANK:
            # TEI serves rerankers on /rerank only (no OpenAI-compatible route); LiteLLM's Hugging
            # Face rerank provider speaks TEI's API and posts to <api_base>/rerank.
            return {
                "model": f"huggingface/{model.modelName}",
                "api_base": endpoint_url.rstrip("/").removesuffix("/v1"),
                "api_key": SELF_HOSTED_API_KEY,
            }
        prefix = "hosted_vllm" if model.inferenceContainer == InferenceContainer.VLLM else "openai"
        return {
            "model": f"{prefix}/{model.modelName}",
            "api_base": openai_base(endpoint_url),
            "api_key": SELF_HOSTED_API_KEY,
        }
    if is_bedrock(model):
        return {"model": model.modelName}
    params: dict[str, Any] = {"model": model.modelName}
    if model.modelUrl:
        params["api_base"] = model.modelUrl.rstrip("/")
    if api_key_secret_arn:
        params[API_KEY_SECRET_ARN] = api_key_secret_arn
    return params
