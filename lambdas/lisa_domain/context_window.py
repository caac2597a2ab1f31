"""A model's context window (maximum input tokens), filled in when the model is registered.

* self-hosted models: the first positive integer among the container environment's
  ``CONTEXT_WINDOW_VARIABLES`` (what the inference server is told to accept);
* Bedrock and external models: ``KNOWN_CONTEXT_WINDOWS``, a small table of LiteLLM's
  ``max_input_tokens`` for common models (LiteLLM itself is not importable in the admin Lambda);
* otherwise unknown (None): an administrator sets it with ``PUT /models/{modelId}/context-window``.
"""

from __future__ import annotations

import re

from lisa_domain.schema import ModelDefinition

#: Environment variables that bound a self-hosted server's context, in order of preference.
CONTEXT_WINDOW_VARIABLES = ("VLLM_MAX_MODEL_LEN", "MAX_MODEL_LEN", "MAX_TOTAL_TOKENS")

#: LiteLLM's ``max_input_tokens`` for common Bedrock and external models, keyed by model name
#: (LiteLLM provider prefix included, Bedrock cross-region prefix such as ``us.`` removed).
KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    **dict.fromkeys(
        [
            "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
            "bedrock/anthropic.claude-3-sonnet-20240229-v1:0",
            "bedrock/anthropic.claude-3-opus-20240229-v1:0",
            "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
            "bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0",
            "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
            "bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0",
            "bedrock/anthropic.claude-sonnet-4-20250514-v1:0",
            "openai/o3-mini",
        ],
        200_000,
    ),
    "bedrock/amazon.nova-micro-v1:0": 128_000,
    "bedrock/amazon.nova-lite-v1:0": 300_000,
    "bedrock/amazon.nova-pro-v1:0": 300_000,
    "bedrock/amazon.titan-embed-text-v1": 8192,
    "bedrock/amazon.titan-embed-text-v2:0": 8192,
    "bedrock/cohere.embed-english-v3": 512,
    "bedrock/meta.llama3-1-8b-instruct-v1:0": 128_000,
    "bedrock/meta.llama3-1-70b-instruct-v1:0": 128_000,
    "openai/gpt-4o": 128_000,
    "openai/gpt-4o-mini": 128_000,
    "openai/gpt-4.1": 1_047_576,
    "openai/gpt-4.1-mini": 1_047_576,
    "openai/text-embedding-3-small": 8191,
    "openai/text-embedding-3-large": 8191,
}

#: ``bedrock/us.anthropic...`` (a cross-region inference profile) has its model's context window.
_BEDROCK_REGION_PREFIX = re.compile(r"^bedrock/(?:converse/)?(?:us|eu|apac|us-gov|global)\.")


def _positive_int(value: str) -> int | None:
    text = value.strip()
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) and int(text) > 0 else None


def known_context_window(model_name: str) -> int | None:
    """The table's value for a Bedrock or external model name (None when not in the table)."""
    name = _BEDROCK_REGION_PREFIX.sub("bedrock/", model_name).replace("bedrock/converse/", "bedrock/")
    return KNOWN_CONTEXT_WINDOWS.get(name)


def context_window_of(model: ModelDefinition) -> int | None:
    """The context window registration can tell for ``model`` (None when unknown)."""
    if model.containerConfig is not None:
        environment = model.containerConfig.environment
        for name in CONTEXT_WINDOW_VARIABLES:
            if name in environment and (value := _positive_int(environment[name])) is not None:
                return value
        return None
    return known_context_window(model.modelName)
