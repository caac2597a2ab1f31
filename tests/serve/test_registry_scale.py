"""Registry following at scale: the change log, incremental reads, one Router changed by difference,
and consistency under churn (issue 20)."""

from __future__ import annotations

import asyncio
import copy
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

import lisa_domain.registry as registry_module
from lisa_domain.change_log import ChangeLog
from lisa_domain.registry import ModelRegistry, now
from lisa_domain.schema import ModelRecord, ModelStatus
from local_mode.resources import create_resources
from serve._litellm import Router, SharedRouter
from serve.app import router_factory
from serve.config import ServeConfig
from serve.follower import RegistryFollower
from tests.support.lisa_payloads import VLLM_MODEL
from tests.support.served_models import create_model

HELLO = [{"role": "user", "content": "hi"}]


class CallCounter:
    """Counts the DynamoDB calls a client makes (botocore's ``provide-client-params`` event), and the
    keys its BatchGetItem calls ask for."""

    def __init__(self, client: Any) -> None:
        self.calls: dict[str, int] = {}
        self.keys = 0
        client.meta.events.register("provide-client-params.dynamodb", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1
        if model.name == "BatchGetItem":
            self.keys += sum(len(request["Keys"]) for request in params["RequestItems"].values())

    def reset(self) -> None:
        self.calls, self.keys = {}, 0


@pytest.fixture
def table(moto_url: str) -> Iterator[tuple[ModelRegistry, Any]]:
    name = f"scale-{time.monotonic_ns()}"
    resources = create_resources(name, endpoint_url=moto_url)
    client = boto3.client("dynamodb", endpoint_url=moto_url)
    yield ModelRegistry(resources.models_table, client), client


def _params(model_id: str, revision: int) -> dict[str, Any]:
    """Parameters that answer without a backend: the reply names the model and its revision."""
    return {"model": f"openai/{model_id}", "mock_response": f"{model_id}:{revision}", "api_key": "unused"}


def _follower(registry: ModelRegistry, **kwargs: Any) -> RegistryFollower:
    from serve.activity import startable_groups

    return RegistryFollower(
        registry,
        router_factory(ServeConfig(models_table=registry.table_name)),
        secrets=None,
        poll_seconds=0.01,
        startable=startable_groups,
        **kwargs,
    )


# ---- the change log ------------------------------------------------------------------------------
def test_change_log_names_what_each_version_changed() -> None:
    log = ChangeLog(0)
    for key in ["a", "b", "a", "c"]:
        log = log.after(key, keep=3)
    assert log == ChangeLog(4, ("b", "a", "c"))
    assert log.changed_since(4) == ()
    assert log.changed_since(2) == ("a", "c")
    assert log.changed_since(1) == ("b", "a", "c")
    assert log.changed_since(0) is None  # no longer listed: reload everything
    assert log.changed_since(5) is None  # ahead: another table
    assert ChangeLog.from_item({"modelId": {"S": "#registry"}, **log.attributes()}) == log
    bumped = {**log.attributes(), "version": {"N": "5"}}  # bumped without the log (by hand)
    assert ChangeLog.from_item(bumped) == ChangeLog(5)
    assert ChangeLog.from_item(bumped).changed_since(4) is None


def test_registry_writes_log_each_change_in_the_same_transaction(table: tuple[ModelRegistry, Any]) -> None:
    registry, _ = table
    create_model(registry, "m1")
    registry.register("m1", _params("m1", 1), allowed_from=[ModelStatus.CREATING])
    create_model(registry, "m2")
    registry.delete("m2", allowed_from=[ModelStatus.CREATING])
    assert registry.change_log() == ChangeLog(4, ("m1", "m1", "m2", "m2"))
    assert registry.version() == 4


def test_concurrent_writes_of_different_models_all_land_with_dense_versions(
    table: tuple[ModelRegistry, Any],
) -> None:
    registry, _ = table
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def create(index: int) -> None:
        barrier.wait()
        try:
            create_model(registry, f"c{index}")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=create, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    log = registry.change_log()
    assert log.version == 8
    assert sorted(log.changes) == [f"c{index}" for index in range(8)]


def test_log_keeps_only_the_latest_changes(table: tuple[ModelRegistry, Any], monkeypatch: Any) -> None:
    registry, _ = table
    monkeypatch.setattr(registry_module, "RECENT_CHANGES", 3)
    for index in range(5):
        create_model(registry, f"k{index}")
    assert registry.change_log() == ChangeLog(5, ("k2", "k3", "k4"))


# ---- incremental following -------------------------------------------------------------------------
def test_a_change_reads_only_the_changed_model_and_never_rebuilds_the_router(
    table: tuple[ModelRegistry, Any], monkeypatch: Any
) -> None:
    registry, client = table
    for index in range(30):
        create_model(registry, f"m{index}")
        registry.register(f"m{index}", _params(f"m{index}", 1), allowed_from=[ModelStatus.CREATING])
    own_client = boto3.client("dynamodb", endpoint_url=client.meta.endpoint_url)
    counting = CallCounter(own_client)
    follower = _follower(ModelRegistry(registry.table_name, own_client))
    assert follower.refresh() is True
    assert counting.calls.get("Scan", 0) >= 1 and follower.stats.full_loads == 1
    first = follower.snapshot
    assert first is not None and len(first.models) == 30

    counting.reset()
    registry.register("m7", _params("m7", 2), allowed_from=[ModelStatus.IN_SERVICE])
    registry.deregister("m8", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
    assert follower.refresh() is True
    # one version read, one BatchGetItem of the two changed models, no Scan
    assert counting.calls == {"GetItem": 1, "BatchGetItem": 1}
    assert counting.keys == 2
    assert follower._router.builds == 1  # changed by difference, never rebuilt
    second = follower.snapshot
    assert second is not None and "m8" not in second.models and len(second.models) == 29
    assert second.models["m1"] is first.models["m1"]  # unchanged entries are kept as they were

    # A request of each snapshot sees all of its version: the old one m7 revision 1, the new one 2.
    async def replies() -> list[str]:
        answers = []
        for snapshot in (first, second):
            assert snapshot.router is not None
            response = await snapshot.router.acompletion(model="m7", messages=HELLO)
            answers.append(response.choices[0].message.content)
        return answers

    assert asyncio.run(replies()) == ["m7:1", "m7:2"]

    counting.reset()
    assert follower.refresh() is False  # nothing changed: the version item only
    assert counting.calls == {"GetItem": 1}

    # More changes than the log lists: one full load.
    monkeypatch.setattr(registry_module, "RECENT_CHANGES", 2)
    for index in range(3):
        registry.register(f"m{index}", _params(f"m{index}", 3), allowed_from=[ModelStatus.IN_SERVICE])
    counting.reset()
    assert follower.refresh() is True
    assert counting.calls.get("Scan", 0) >= 1 and "BatchGetItem" not in counting.calls
    assert follower.stats.full_loads == 2 and follower._router.builds == 1


def test_start_on_request_models_are_followed_incrementally(table: tuple[ModelRegistry, Any]) -> None:
    registry, _ = table
    body: dict[str, Any] = {**copy.deepcopy(VLLM_MODEL), "modelId": "sleepy", "startOnRequest": True}
    registry.create(
        ModelRecord.model_validate(
            {**body, "status": ModelStatus.CREATING, "createdAt": now(), "updatedAt": now()}
        )
    )
    registry.register("sleepy", _params("sleepy", 1), allowed_from=[ModelStatus.CREATING])
    follower = _follower(registry)
    follower.refresh()
    assert follower.snapshot is not None and follower.snapshot.startable == {}
    registry.deregister("sleepy", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
    follower.refresh()
    assert follower.stats.full_loads == 1
    assert dict(follower.snapshot.startable) == {"sleepy": ()}
    assert "sleepy" not in follower.snapshot.models


# ---- the shared Router -----------------------------------------------------------------------------
def _factory(model_list: list[dict[str, Any]]) -> Router:
    return Router(model_list=model_list, num_retries=0, ignore_invalid_deployments=True)


def test_replaced_deployments_are_deleted_only_when_unused() -> None:
    clock = [0.0]
    shared = SharedRouter(_factory, retire_after=5.0, clock=lambda: clock[0])
    old, _ = shared.apply({"a": _params("a", 1)})
    new, _ = shared.apply({"a": _params("a", 2)})
    assert old is not None and new is not None
    router = new.router
    assert old.names["a"] != new.names["a"]
    assert shared.retire_unused() == 0  # too soon: a request that read the old snapshot may be on its way
    clock[0] = 10.0
    old.calls[old.names["a"]] += 1  # a call through the old deployment is in flight
    assert shared.retire_unused() == 0
    assert router.registry().has_deployment(old.names["a"])
    old.calls[old.names["a"]] -= 1
    assert shared.retire_unused() == 1
    assert not router.registry().has_deployment(old.names["a"])
    assert router.registry().has_deployment(new.names["a"])


def test_parameters_litellm_refuses_leave_that_model_out_only() -> None:
    shared = SharedRouter(_factory)
    _, refused = shared.apply({"a": _params("a", 1)})
    assert refused == frozenset()
    bad = {"model": "openai/echo", "max_parallel_requests": "a"}
    view, refused = shared.apply({"a": _params("a", 1), "bad": bad})
    assert refused == {"bad"}
    assert view is not None and set(view.names) == {"a"}
    view, refused = shared.apply({"a": _params("a", 1), "bad": bad})  # not offered again
    assert refused == {"bad"} and shared.builds == 1


# ---- churn -----------------------------------------------------------------------------------------
# A few hundred real DynamoDB (moto) changes with requests running: about 2 minutes on a quiet
# 2-core machine, so the default 300 s bound is too close on a busy one.
@pytest.mark.timeout(900)
def test_churn_every_replica_ends_equal_to_a_full_read_and_no_request_sees_a_mixed_state(
    table: tuple[ModelRegistry, Any],
) -> None:
    """A few hundred random creates, updates, stops, starts and deletes while requests run against
    two followers (each polling in its own thread, as on a replica)."""
    registry, _ = table
    rng = random.Random(20)
    # No periodic full reload (default every 300 s) during a run that can last longer on a busy
    # machine: the test checks that every change after the first load is applied incrementally.
    followers = [_follower(registry, resync_seconds=3600.0), _follower(registry, resync_seconds=3600.0)]
    #: registry version -> the served revision of each model at that version
    served_at: dict[int, dict[str, int]] = {0: {}}
    served: dict[str, int] = {}
    status: dict[str, ModelStatus] = {}
    revision = 0
    stop = threading.Event()
    seen: list[tuple[int, str, str, str]] = []  # (snapshot version, model id, its deployment's reply, reply)
    errors: list[BaseException] = []

    def follow(follower: RegistryFollower) -> None:
        while not stop.is_set():
            try:
                follower.refresh()
            except BaseException as error:
                errors.append(error)
            time.sleep(0.005)

    async def request_loop() -> None:
        async def one() -> None:
            while not stop.is_set():
                follower = rng.choice(followers)
                snapshot = follower.snapshot
                if snapshot is None or snapshot.router is None or not snapshot.models:
                    await asyncio.sleep(0.002)
                    continue
                model_id = rng.choice(list(snapshot.models))
                response = await snapshot.router.acompletion(model=model_id, messages=HELLO)
                expected = str(snapshot.deployments[model_id]["mock_response"])
                seen.append((snapshot.version, model_id, expected, response.choices[0].message.content))

        await asyncio.gather(*(one() for _ in range(4)))

    threads = [threading.Thread(target=follow, args=(follower,)) for follower in followers]
    threads.append(threading.Thread(target=lambda: asyncio.run(request_loop())))
    for thread in threads:
        thread.start()
    try:
        for step in range(240):
            revision += 1
            ids = sorted(status)
            operation = (
                rng.choice(["create", "create", "update", "stop", "start", "delete"]) if ids else "create"
            )
            model_id = rng.choice(ids) if ids else ""
            if operation == "create" or not ids:
                model_id = f"churn-{step}"
                create_model(registry, model_id)
                served_at[registry.version()] = dict(served)  # created, not served yet
                registry.register(model_id, _params(model_id, revision), allowed_from=[ModelStatus.CREATING])
                status[model_id] = ModelStatus.IN_SERVICE
                served[model_id] = revision
            elif operation == "update" and status[model_id] is ModelStatus.IN_SERVICE:
                registry.register(
                    model_id, _params(model_id, revision), allowed_from=[ModelStatus.IN_SERVICE]
                )
                served[model_id] = revision
            elif operation == "stop" and status[model_id] is ModelStatus.IN_SERVICE:
                registry.deregister(model_id, allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
                status[model_id] = ModelStatus.STOPPED
                del served[model_id]
            elif operation == "start" and status[model_id] is ModelStatus.STOPPED:
                registry.register(model_id, _params(model_id, revision), allowed_from=[ModelStatus.STOPPED])
                status[model_id] = ModelStatus.IN_SERVICE
                served[model_id] = revision
            elif operation == "delete":
                registry.delete(model_id, allowed_from=[status.pop(model_id)])
                served.pop(model_id, None)
            else:
                continue
            served_at[registry.version()] = dict(served)  # one writer: the version of this state
        final = registry.version()
        deadline = time.monotonic() + 10
        while any(f.snapshot is None or f.snapshot.version != final for f in followers):
            assert time.monotonic() < deadline, "the followers did not catch up"
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    fresh = registry.followed_models()
    for follower in followers:
        snapshot = follower.snapshot
        assert snapshot is not None and snapshot.router is not None
        assert dict(snapshot.followed) == fresh.models
        assert set(snapshot.models) == set(served)
        assert {m: p["mock_response"] for m, p in snapshot.deployments.items()} == {
            m: f"{m}:{r}" for m, r in served.items()
        }
        assert follower.stats.full_loads == 1  # every change after the first load was incremental
    assert len(seen) > 100
    had = {(m, f"{m}:{r}", version) for version, state in served_at.items() for m, r in state.items()}
    for version, model_id, expected, reply in seen:
        # The request got what its snapshot says (never another revision of the Router's) ...
        assert reply == expected, (version, model_id, reply)
        # ... and that is a state the model had, at the snapshot's version or after it (a snapshot
        # holds every change up to its version, and may hold some read while it was built).
        assert any((model_id, reply, v) in had for v in served_at if v >= version), (version, model_id, reply)
