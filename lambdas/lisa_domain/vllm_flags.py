"""vLLM's command-line flags from a model's container environment (LISA's variable names).

vLLM's OpenAI server reads tool calling, context length, quantization and tensor parallelism from
flags, not from the environment, so these variables of ``containerConfig.environment`` become
flags of the container command the workflow registers (``task_definition``):

===============================  ===========================================================
variable                         flag
===============================  ===========================================================
``VLLM_ENABLE_AUTO_TOOL_CHOICE``  ``--enable-auto-tool-choice`` when ``true`` (``1``, ``yes``)
``VLLM_TOOL_CALL_PARSER``         ``--tool-call-parser <value>``
``VLLM_MAX_MODEL_LEN``            ``--max-model-len <n>``: the model's context window from its
                                  environment (``context_window.CONTEXT_WINDOW_VARIABLES``: this,
                                  ``MAX_MODEL_LEN`` or LISA's legacy ``MAX_TOTAL_TOKENS``), so the
                                  server accepts what the registry says it does
``VLLM_QUANTIZATION``             ``--quantization <value>``
``VLLM_TENSOR_PARALLEL_SIZE``     ``--tensor-parallel-size <n>``; unset: the instance type's GPU
                                  count when it has more than one
===============================  ===========================================================

Auto tool choice needs a parser (vLLM refuses to start without one), so that combination is an
error here rather than a task that never becomes healthy.
"""

from __future__ import annotations

from collections.abc import Mapping

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")
#: Variables whose value is the flag's argument, and whether it must be a positive integer.
_VALUE_FLAGS: dict[str, tuple[str, bool]] = {
    "VLLM_TOOL_CALL_PARSER": ("--tool-call-parser", False),
    "VLLM_QUANTIZATION": ("--quantization", False),
    "VLLM_TENSOR_PARALLEL_SIZE": ("--tensor-parallel-size", True),
}


class VllmSettingError(ValueError):
    """A container variable that cannot become a vLLM flag (the message names it)."""


def _positive(name: str, value: str) -> str:
    if not value.strip().isdigit() or int(value) < 1:
        raise VllmSettingError(
            f"containerConfig.environment.{name} must be a positive integer, not {value!r}"
        )
    return str(int(value))


def vllm_flags(environment: Mapping[str, str], gpus: int, max_model_len: int | None = None) -> list[str]:
    """The flags for ``environment`` on an instance with ``gpus`` GPUs and the context window
    ``max_model_len`` (``context_window.context_window_of``; see the module docstring)."""
    values = dict(environment)
    if not values.get("VLLM_TENSOR_PARALLEL_SIZE") and gpus > 1:
        values["VLLM_TENSOR_PARALLEL_SIZE"] = str(gpus)
    flags: list[str] = []
    choice = values.get("VLLM_ENABLE_AUTO_TOOL_CHOICE", "").strip().lower()
    if choice not in _TRUE + _FALSE:
        raise VllmSettingError(
            f"containerConfig.environment.VLLM_ENABLE_AUTO_TOOL_CHOICE must be true or false, not {choice!r}"
        )
    if choice in _TRUE:
        if not values.get("VLLM_TOOL_CALL_PARSER", "").strip():
            raise VllmSettingError(
                "containerConfig.environment.VLLM_TOOL_CALL_PARSER is required with VLLM_ENABLE_AUTO_TOOL_CHOICE"
            )
        flags.append("--enable-auto-tool-choice")
    for name, (flag, integer) in _VALUE_FLAGS.items():
        value = values.get(name, "").strip()
        if value:
            flags += [flag, _positive(name, value) if integer else value]
    if max_model_len is not None:
        flags += ["--max-model-len", str(max_model_len)]
    return flags
