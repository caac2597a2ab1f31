"""The start-up path at scale (issue 20 item 3): a Router of many deployments built without LiteLLM's
per-parameter JSON round trips, and provider keys read concurrently, with the same results."""

from __future__ import annotations

import datetime
import inspect
import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from lisa_domain.change_log import ChangeLog
from lisa_domain.registry import FollowedModel, ModelRegistry
from lisa_domain.schema import ModelRecord, ModelStatus, ModelType
from local_mode.resources import create_resources
from serve._litellm import Router, fast_round_trip_check, incremental_cost_key_map, litellm
from serve.app import router_factory
from serve.config import ServeConfig
from serve.first_load import FirstLoad
from serve.follower import RegistryFollower, SecretCache, Snapshot
from serve.provider_keys import SECRET_READ_THREADS, ReadKeys
from tests.support.served_models import create_model

litellm_registry = pytest.importorskip("litellm.router_rust.surface.registry")

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -7,
    2**63,
    10**5000,  # more digits than ``int`` converts to text: JSON cannot write it
    "",
    "text",
    "\ud800",
    1.5,
    float("nan"),
    float("inf"),
    {"a": 1},
    {1: "a"},
    [1, (2,)],
    (1,),
    {1, 2},
    datetime.datetime(2026, 1, 1),
    b"bytes",
]


def test_the_fast_check_answers_what_litellms_round_trip_answers() -> None:
    assert fast_round_trip_check() is True
    assert fast_round_trip_check() is True  # idempotent: wrapped once
    check = litellm_registry._round_trips
    original = check.__wrapped__
    assert not getattr(original, "_lisa_fast", False)
    for value in VALUES:
        assert check(value) == original(value), value


def _deployments(count: int) -> list[dict[str, Any]]:
    return [
        {
            "model_name": f"m{index}#1",
            "litellm_params": {
                "model": "openai/echo",
                "api_base": "http://127.0.0.1:9/v1",
                "api_key": "unused",
                "timeout": 12.5,
                "max_retries": 0,
                "extra_body": {"tags": ["a", index], "nested": {"x": None}},
            },
            "model_info": {"id": f"m{index}#1"},
        }
        for index in range(count)
    ]


def _built(monkeypatch: pytest.MonkeyPatch, fast: bool) -> Router:
    check = litellm_registry._round_trips
    monkeypatch.setattr(litellm_registry, "_round_trips", check if fast else check.__wrapped__)
    return router_factory(ServeConfig(models_table="t"))(_deployments(5))


def test_a_router_built_with_the_fast_check_holds_the_same_deployments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_round_trip_check()
    with_fast, without = _built(monkeypatch, True), _built(monkeypatch, False)
    deployments = with_fast.registry().deployments()
    assert deployments == without.registry().deployments()
    assert deployments is not None and len(deployments) == 5


# ---- provider keys ------------------------------------------------------------------------------
class GatedSecrets:
    """A Secrets Manager client whose reads wait until ``parties`` reads are in flight at once (a
    ``threading.Barrier``): sequential reads break the barrier. Keys under ``down`` fail."""

    def __init__(self, parties: int, down: frozenset[str] = frozenset()) -> None:
        self.barrier = threading.Barrier(parties, timeout=10)
        self.down = down
        self.reads: list[str] = []
        self._lock = threading.Lock()

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        with self._lock:
            self.reads.append(SecretId)
            first_round = len(self.reads) <= self.barrier.parties
        if first_round:
            self.barrier.wait()
        if SecretId in self.down:
            raise ConnectionError("simulated outage")
        return {"SecretString": "sk-" + SecretId}


def _followed(count: int, shared: int = 0) -> dict[str, FollowedModel]:
    """``count`` external models, each with its own key, and ``shared`` more all using ``arn:shared``."""
    followed = {}
    for index in range(count + shared):
        model_id = f"ext-{index:03d}"
        arn = f"arn:{model_id}" if index < count else "arn:shared"
        record = ModelRecord(
            modelId=model_id,
            modelName=model_id,
            modelType=ModelType.TEXTGEN,
            status=ModelStatus.IN_SERVICE,
            createdAt=1,
            updatedAt=1,
        )
        params = {"model": "openai/echo", "api_base": "http://127.0.0.1:9/v1", "api_key_secret_arn": arn}
        followed[model_id] = FollowedModel(record, params)
    return followed


def _follower(secrets: Any) -> RegistryFollower:
    return RegistryFollower(
        None,  # type: ignore[arg-type]  # build() never reads the registry
        router_factory(ServeConfig(models_table="t")),
        secrets=SecretCache(secrets, ttl=0),
        poll_seconds=1,
    )


def test_a_full_build_reads_the_provider_keys_concurrently_each_once() -> None:
    count = 40
    secrets = GatedSecrets(parties=min(SECRET_READ_THREADS, count))
    snapshot = _follower(secrets).build(1, _followed(count, shared=5))
    assert sorted(secrets.reads) == sorted(
        {f"arn:ext-{index:03d}" for index in range(count)} | {"arn:shared"}
    )
    assert len(snapshot.models) == count + 5 and snapshot.incomplete == frozenset()
    assert snapshot.deployments["ext-007"]["api_key"] == "sk-arn:ext-007"
    assert snapshot.deployments["ext-042"]["api_key"] == "sk-arn:shared"
    assert "api_key_secret_arn" not in snapshot.deployments["ext-007"]


def test_keys_that_cannot_be_read_leave_only_their_models_out_read_once() -> None:
    down = frozenset({"arn:ext-003", "arn:shared"})
    secrets = GatedSecrets(parties=2, down=down)
    snapshot = _follower(secrets).build(1, _followed(6, shared=2))
    assert snapshot.incomplete == {"ext-003", "ext-006", "ext-007"}
    assert set(snapshot.models) == {"ext-000", "ext-001", "ext-002", "ext-004", "ext-005"}
    assert sorted(secrets.reads) == sorted({f"arn:ext-{index:03d}" for index in range(6)} | {"arn:shared"})


def test_an_incremental_build_reads_only_the_changed_models_keys() -> None:
    secrets = GatedSecrets(parties=2)
    follower = _follower(secrets)
    followed = _followed(10)
    first = follower.build(1, followed)
    secrets.reads, secrets.barrier = [], threading.Barrier(1)
    params = {**(followed["ext-004"].litellm_params or {}), "timeout": 5}
    changed = {**followed, "ext-004": FollowedModel(followed["ext-004"].record, params)}
    second = follower.build(2, changed, previous=first, changed=("ext-004",))
    assert secrets.reads == ["arn:ext-004"]
    assert second.deployments["ext-004"]["timeout"] == 5
    assert second.deployments["ext-001"] is first.deployments["ext-001"]


# ---- LiteLLM's lowercase index of its cost map ----------------------------------------------------
def test_the_cost_key_index_grows_with_the_keys_added_and_equals_litellms_rebuild(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from litellm import utils

    assert incremental_cost_key_map() is True
    assert incremental_cost_key_map() is True  # idempotent: wrapped once
    rebuild = utils._rebuild_model_cost_lowercase_map
    original = inspect.unwrap(rebuild)
    cost_map = dict(litellm.model_cost)
    monkeypatch.setattr(litellm, "model_cost", cost_map)

    def same_as_litellm() -> dict[str, str]:
        index = rebuild()
        assert utils._model_cost_lowercase_map is index
        assert index == original()
        return index

    first = same_as_litellm()
    cost_map["Lisa-Model#1"] = {}
    cost_map["lisa-model#1"] = {}  # a later key wins a lowercase collision
    grown = same_as_litellm()
    assert grown["lisa-model#1"] == "lisa-model#1" and first is not grown
    assert "lisa-model#1" not in first  # the index handed out before is never changed
    del cost_map["Lisa-Model#1"]
    cost_map["Lisa-Model#1"] = {}  # re-inserted: now the later key
    assert same_as_litellm()["lisa-model#1"] == "Lisa-Model#1"
    del cost_map[next(iter(cost_map))]
    cost_map["another#2"] = {}  # an earlier key gone, one added: same length, different keys
    same_as_litellm()
    monkeypatch.setattr(litellm, "model_cost", {"Only": {}})  # a reloaded map: a new dict
    assert same_as_litellm() == {"only": "Only"}


def test_a_router_built_after_many_registrations_finds_every_deployment_by_any_case() -> None:
    from litellm import utils

    router = router_factory(ServeConfig(models_table="t"))(_deployments(30))
    for index in range(30):
        assert utils.get_model_cost_key(f"M{index}#1".upper()) == f"m{index}#1"
    assert len(router.registry().deployments() or []) == 30


# ---- the first read, made while the worker imports LiteLLM --------------------------------------
def _registry_with_models(moto_url: str, count: int) -> tuple[ModelRegistry, Any]:
    """A models table with ``count`` external models, each key in its own secret."""
    resources = create_resources(f"first-{time.monotonic_ns()}", endpoint_url=moto_url)
    registry = ModelRegistry(resources.models_table, boto3.client("dynamodb", endpoint_url=moto_url))
    secretsmanager = boto3.client("secretsmanager", endpoint_url=moto_url)
    for index in range(count):
        model_id = f"ext-{index}"
        create_model(registry, model_id)
        arn = secretsmanager.create_secret(
            Name=f"{resources.models_table}/{model_id}", SecretString=f"sk-{index}"
        )
        params = {
            "model": "openai/echo",
            "api_base": "http://127.0.0.1:9/v1",
            "api_key_secret_arn": arn["ARN"],
        }
        registry.register(model_id, params, allowed_from=[ModelStatus.CREATING])
    return registry, secretsmanager


class Counted:
    """Counts a client's calls by operation (botocore's ``provide-client-params`` event)."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        client.meta.events.register(
            "provide-client-params", lambda model, **_: self.calls.update([model.name])
        )


def test_the_first_refresh_builds_from_the_read_made_while_importing_and_reads_again_after(
    moto_url: str,
) -> None:
    registry, secretsmanager = _registry_with_models(moto_url, 3)
    first_load = FirstLoad.start(registry, SecretCache(secretsmanager, ttl=0))
    plain = _follower(secretsmanager)
    expected = plain.build(registry.version(), registry.followed_models().models)
    dynamodb, secrets = (
        boto3.client("dynamodb", endpoint_url=moto_url),
        boto3.client("secretsmanager", endpoint_url=moto_url),
    )
    reads, key_reads = Counted(dynamodb), Counted(secrets)
    follower = RegistryFollower(
        ModelRegistry(registry.table_name, dynamodb),
        router_factory(ServeConfig(models_table="t")),
        secrets=SecretCache(secrets, ttl=0),
        poll_seconds=1,
        first_load=first_load,
    )
    assert follower.refresh() is True
    snapshot = follower.snapshot
    assert snapshot is not None and (reads.calls, key_reads.calls) == (Counter(), Counter())
    assert snapshot.version == expected.version and snapshot.deployments == expected.deployments
    assert list(snapshot.models) == ["ext-0", "ext-1", "ext-2"] and follower.stats.full_loads == 1
    registry.deregister("ext-1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
    assert follower.refresh() is True  # the next poll reads as always: only what changed
    assert follower.snapshot is not None and list(follower.snapshot.models) == ["ext-0", "ext-2"]
    assert reads.calls == Counter({"GetItem": 1, "BatchGetItem": 1}) and key_reads.calls == Counter()
    assert first_load.take() is None  # taken once


class Unreachable:
    def change_log(self) -> ChangeLog:
        raise ConnectionError("simulated outage")


def test_a_first_read_that_failed_is_not_used(moto_url: str) -> None:
    registry, secretsmanager = _registry_with_models(moto_url, 2)
    failed = FirstLoad.start(Unreachable(), None)  # type: ignore[arg-type]
    follower = RegistryFollower(
        registry,
        router_factory(ServeConfig(models_table="t")),
        secrets=SecretCache(secretsmanager, ttl=0),
        poll_seconds=1,
        first_load=failed,
    )
    assert follower.refresh() is True  # read by the follower itself
    assert follower.snapshot is not None and list(follower.snapshot.models) == ["ext-0", "ext-1"]
    assert follower.snapshot.deployments["ext-1"]["api_key"] == "sk-1"


def test_the_keys_read_are_in_no_repr() -> None:
    keys = ReadKeys({"arn:aws:secretsmanager:us-east-1:1:secret:k": "sk-do-not-log"})
    assert keys.get("arn:aws:secretsmanager:us-east-1:1:secret:k") == "sk-do-not-log"
    assert "sk-do-not-log" not in repr(keys)


def test_a_snapshots_resolved_keys_are_in_no_repr() -> None:
    deployments = {"ext": {"model": "openai/echo", "api_key": "sk-do-not-log"}}
    snapshot = Snapshot(version=1, models={}, router=None, deployments=deployments)
    assert snapshot.deployments["ext"]["api_key"] == "sk-do-not-log"
    assert "sk-do-not-log" not in repr(snapshot)
