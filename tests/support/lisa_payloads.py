"""Model bodies as LISA's clients send them, accepted unchanged by the admin API (shared by the tiers)."""

from __future__ import annotations

from typing import Any

API_KEY = "sk-test-4f2a9c1e7b"

VLLM_MODEL: dict[str, Any] = {
    "modelId": "mistral-7b-instruct",
    "modelName": "mistralai/Mistral-7B-Instruct-v0.3",
    "modelType": "textgen",
    "streaming": True,
    "instanceType": "g6.2xlarge",
    "inferenceContainer": "vllm",
    "containerConfig": {
        "image": {"baseImage": "vllm/vllm-openai:v0.9.1", "type": "asset"},
        "sharedMemorySize": 4096,
        "environment": {"MAX_MODEL_LEN": "8192"},
        "healthCheckConfig": {
            "command": ["CMD-SHELL", "curl -f http://localhost:8080/health || exit 1"],
            "interval": 15,
            "startPeriod": 600,
            "timeout": 10,
            "retries": 5,
        },
    },
    "autoScalingConfig": {
        "minCapacity": 1,
        "maxCapacity": 3,
        "cooldown": 300,
        "defaultInstanceWarmup": 300,
        "metricConfig": {
            "albMetricName": "RequestCountPerTarget",
            "targetValue": 40,
            "duration": 120,
            "estimatedInstanceWarmup": 300,
        },
    },
    "loadBalancerConfig": {
        "healthCheckConfig": {
            "path": "/health",
            "interval": 30,
            "timeout": 10,
            "healthyThresholdCount": 3,
            "unhealthyThresholdCount": 5,
        }
    },
}
BEDROCK_MODEL: dict[str, Any] = {
    "modelId": "claude-haiku",
    "modelName": "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    "modelType": "textgen",
    "streaming": True,
}
EXTERNAL_MODEL: dict[str, Any] = {
    "modelId": "gpt-4o-mini",
    "modelName": "openai/gpt-4o-mini",
    "modelType": "textgen",
    "streaming": True,
    "apiKey": API_KEY,
}
#: A Bedrock model as LISA's own clients send it (its integration setup, through lisapy's
#: create_bedrock_model): every optional field present as null, modelUrl "", a mixed-case id.
LISAPY_BEDROCK_MODEL: dict[str, Any] = {
    "autoScalingConfig": None,
    "containerConfig": None,
    "inferenceContainer": None,
    "instanceType": None,
    "loadBalancerConfig": None,
    "modelId": "Claude-3-Haiku_Bedrock",
    "modelName": "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    "modelDescription": "Bedrock model bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    "modelType": "textgen",
    "modelUrl": "",
    "streaming": True,
    "features": [{"name": "summarization", "overview": ""}, {"name": "toolCalls", "overview": ""}],
    "allowedGroups": None,
    "guardrailsConfig": None,
    "hostingType": None,
}
