"""The registry's conditional writes and version bumps, against moto's DynamoDB."""

from __future__ import annotations

import threading

import pytest

from lisa_domain.errors import Conflict, NotFound
from lisa_domain.registry import ModelRegistry, now
from lisa_domain.schema import ModelRecord, ModelStatus


def _record(model_id: str = "m1") -> ModelRecord:
    return ModelRecord(
        modelId=model_id,
        modelName="bedrock/x",
        modelType="textgen",
        status=ModelStatus.CREATING,
        createdAt=now(),
        updatedAt=now(),
    )


def test_create_is_conditional_and_bumps_version(resources) -> None:
    registry = ModelRegistry(resources.models_table)
    assert registry.version() == 0
    registry.create(_record())
    assert registry.version() == 1
    with pytest.raises(Conflict, match="already exists"):
        registry.create(_record())
    assert registry.version() == 1


def test_twenty_concurrent_creates_give_one_success(resources) -> None:
    registry = ModelRegistry(resources.models_table)
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def create() -> None:
        barrier.wait()
        try:
            registry.create(_record("race"))
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 1
    assert outcomes.count("conflict") == 19


def test_transition_only_from_allowed_states(resources) -> None:
    registry = ModelRegistry(resources.models_table)
    registry.create(_record())
    with pytest.raises(Conflict, match="is Creating"):
        registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.DELETING)
    registry.register("m1", {"model": "bedrock/x"}, allowed_from=[ModelStatus.CREATING])
    assert [m.record.modelId for m in registry.served_models()] == ["m1"]
    record = registry.deregister(
        "m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.FAILED, reason="x"
    )
    assert record.status == ModelStatus.FAILED and record.statusReason == "x"
    assert registry.served_models() == []
    assert [h["status"] for h in registry.get_item("m1")["statusHistory"]] == [
        "Creating",
        "InService",
        "Failed",
    ]
    with pytest.raises(NotFound):
        registry.transition("nope", allowed_from=[ModelStatus.FAILED], to=ModelStatus.DELETING)


def test_pagination_walks_every_model_once(resources) -> None:
    registry = ModelRegistry(resources.models_table)
    for index in range(7):
        registry.create(_record(f"m{index}"))
    seen: list[str] = []
    token = None
    while True:
        page = registry.list_visible(3, token)
        seen.extend(m.modelId for m in page.models)
        token = page.next_token
        if token is None:
            break
    assert sorted(seen) == [f"m{i}" for i in range(7)]
