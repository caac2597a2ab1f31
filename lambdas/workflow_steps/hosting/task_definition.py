"""How a model's container settings become its ECS task definition (rendered, then registered).

CloudFormation parameters cannot carry maps (environment) or lists (health-check commands), and a
template with a fixed set of container settings would make every new setting a template change.
So the workflow renders the whole task definition from the model record and registers it; the
per-model stack only receives its ARN (parameter ``TaskDefinitionArn``). Every container setting
of the API therefore reaches ECS unchanged, and a container update is "register a new revision,
update the stack parameter" — a normal ECS rolling deployment with the circuit breaker.
"""

from __future__ import annotations

import re
from hashlib import sha256
from typing import Any

from lisa_contracts.names import MODEL_CONTAINER_NAME
from lisa_domain.context_window import context_window_of
from lisa_domain.instance_types import gpu_count
from lisa_domain.schema import InferenceContainer, ModelRecord
from lisa_domain.vllm_flags import vllm_flags

CONTAINER_PORT = 8080
#: Soft memory limit when the model sets none (ECS needs one of memory/memoryReservation).
DEFAULT_MEMORY_RESERVATION = 4096
#: ECS's accepted ranges for container health checks (seconds, count).
HEALTH_LIMITS = {"interval": (5, 300), "timeout": (2, 120), "retries": (1, 10), "startPeriod": (0, 300)}


#: CloudFormation's stack-name limit (the task-definition family, the same name, may have 255).
STACK_NAME_MAX_LENGTH = 128


def resource_name(prefix: str, model_id: str) -> str:
    """Stack name and task-definition family of a model: ``<prefix><modelId>``.

    Stack names allow only letters, digits and ``-``, up to ``STACK_NAME_MAX_LENGTH``. An id with
    other characters (``.``, ``_``) or upper-case letters becomes lower case with ``-`` for those,
    plus ``-`` and a short hash of the id, so that ``a.b``, ``a-b`` and ``A-b`` never share a stack;
    an id too long for the limit is cut to fit before the hash.
    """
    cleaned = re.sub(r"[^a-z0-9-]", "-", model_id.lower())
    if cleaned == model_id and len(prefix) + len(cleaned) <= STACK_NAME_MAX_LENGTH:
        return f"{prefix}{cleaned}"
    digest = sha256(model_id.encode()).hexdigest()[:6]
    room = STACK_NAME_MAX_LENGTH - len(prefix) - len(digest) - 1
    return f"{prefix}{cleaned[:room]}-{digest}"


def _clamp(name: str, value: int) -> int:
    low, high = HEALTH_LIMITS[name]
    return max(low, min(high, value))


def server_defaults(model: ModelRecord) -> tuple[dict[str, str], list[str] | None]:
    """Environment and command each inference server needs to serve ``modelName`` on the port.

    vLLM's OpenAI image takes the model as arguments; TGI and TEI read ``MODEL_ID`` and ``PORT``.
    The model's own environment is applied on top and wins.
    """
    port = str(CONTAINER_PORT)
    if model.inferenceContainer == InferenceContainer.VLLM:
        command = ["--model", model.modelName, "--served-model-name", model.modelName]
        return {"VLLM_PORT": port}, [*command, "--host", "0.0.0.0", "--port", port]  # noqa: S104
    return {"MODEL_ID": model.modelName, "PORT": port, "HOSTNAME": "0.0.0.0"}, None  # noqa: S104


def task_definition_request(
    model: ModelRecord,
    *,
    family: str,
    execution_role_arn: str,
    task_role_arn: str,
    log_group_name: str | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``ecs.register_task_definition`` for a self-hosted model."""
    config, instance_type = model.containerConfig, model.instanceType
    if config is None or instance_type is None:
        raise ValueError(f"model '{model.modelId}' is not self-hosted")
    environment, command = server_defaults(model)
    environment.update(config.environment)
    if command is not None and model.inferenceContainer == InferenceContainer.VLLM:
        command += vllm_flags(environment, gpu_count(instance_type), context_window_of(model))
    health = config.healthCheckConfig
    container: dict[str, Any] = {
        "name": MODEL_CONTAINER_NAME,
        "image": config.image.baseImage,
        "essential": True,
        "portMappings": [{"containerPort": CONTAINER_PORT, "hostPort": 0, "protocol": "tcp"}],
        "environment": [{"name": name, "value": value} for name, value in sorted(environment.items())],
        "linuxParameters": {"sharedMemorySize": config.sharedMemorySize},
        "memoryReservation": config.memoryReservation or DEFAULT_MEMORY_RESERVATION,
        "healthCheck": {
            "command": list(health.command),
            "interval": _clamp("interval", health.interval),
            "timeout": _clamp("timeout", health.timeout),
            "retries": _clamp("retries", health.retries),
            "startPeriod": _clamp("startPeriod", health.startPeriod),
        },
    }
    if gpus := gpu_count(instance_type):
        container["resourceRequirements"] = [{"type": "GPU", "value": str(gpus)}]
    if config.secrets:
        # ECS reads these with the task execution role when the container starts: the values are
        # never in the task definition, the registry or the workflow input.
        container["secrets"] = [
            {"name": name, "valueFrom": arn} for name, arn in sorted(config.secrets.items())
        ]
    if command:
        container["command"] = command
    if log_group_name:
        if not region:
            raise ValueError("awslogs needs the region (AWS_REGION or AWS_DEFAULT_REGION)")
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group_name,
                "awslogs-region": region,
                "awslogs-stream-prefix": family,
            },
        }
    return {
        "family": family,
        "networkMode": "bridge",
        # No requiresCompatibilities: optional for the EC2 launch type (the service sets it), and
        # moto 5.2.5 wrongly demands container ``memory`` (not only memoryReservation) with ["EC2"].
        "executionRoleArn": execution_role_arn,
        "taskRoleArn": task_role_arn,
        "containerDefinitions": [container],
    }
