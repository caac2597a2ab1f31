"""Models put straight into the registry, as the create workflow leaves them: created, then
registered (``litellmParams`` set, ``InService``), for tests of what the serve app follows."""

from __future__ import annotations

from typing import Any

from lisa_domain.registry import ModelRegistry, now
from lisa_domain.schema import ModelRecord, ModelStatus, ModelType


def create_model(
    registry: ModelRegistry,
    model_id: str,
    model_name: str | None = None,
    *,
    model_type: ModelType = ModelType.TEXTGEN,
    groups: list[str] | None = None,
    streaming: bool = False,
    created_at: int | None = None,
) -> ModelRecord:
    """A ``Creating`` record (not served until ``register``)."""
    record = ModelRecord(
        modelId=model_id,
        modelName=model_name or model_id,
        modelType=model_type,
        streaming=streaming,
        allowedGroups=groups or [],
        status=ModelStatus.CREATING,
        createdAt=now() if created_at is None else created_at,
        updatedAt=now(),
    )
    registry.create(record)
    return record


def echo_params(backend_url: str, backend_model: str = "echo") -> dict[str, Any]:
    """LiteLLM parameters of a model answered by the stand-in backend at ``backend_url``."""
    return {"model": f"openai/{backend_model}", "api_base": backend_url, "api_key": "unused"}


def serve_model(
    registry: ModelRegistry,
    model_id: str,
    litellm_params: dict[str, Any],
    model_name: str | None = None,
    *,
    model_type: ModelType = ModelType.TEXTGEN,
    groups: list[str] | None = None,
    created_at: int | None = None,
) -> ModelRecord:
    """A model created and registered with ``litellm_params`` (text models stream)."""
    record = create_model(
        registry,
        model_id,
        model_name,
        model_type=model_type,
        groups=groups,
        streaming=model_type is ModelType.TEXTGEN,
        created_at=created_at,
    )
    registry.register(model_id, litellm_params, allowed_from=[ModelStatus.CREATING])
    return record
