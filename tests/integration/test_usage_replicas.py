"""Three serve replicas (separate processes, the container's entry point) on one moto server:
a caller limited to 60 rpm gets between 60 and 66 requests a minute across them, and the usage
table's counts are exact after the flushes (periodic and at shutdown)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from lisa_domain.registry import ModelRegistry
from lisa_domain.tokens import TokenStore
from lisa_domain.usage import UsageKey, UsageStore, day_of
from local_mode.resources import create_resources
from tests.serve.test_replicas import Replica, layout_app, replica_env
from tests.support.fake_backend import FakeBackend
from tests.support.served_models import echo_params, serve_model
from tests.support.servers import ServerThread

RPM = 60
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "one two three"}]}


@dataclass
class Cluster:
    replicas: list[Replica]
    tokens: dict[str, str]
    usage: UsageStore

    def post(self, index: int, who: str) -> httpx.Response:
        replica = self.replicas[index % len(self.replicas)]
        return httpx.post(
            replica.url + "/v2/serve/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
            timeout=20,
        )

    def counted(self, username: str) -> tuple[int, int]:
        rows = self.usage.read([day_of(time.time())], username)
        counts = rows.get(UsageKey(day_of(time.time()), username, "chat"))
        return (counts.requests, counts.tokens) if counts else (0, 0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    backend = ServerThread(FakeBackend().app).start()
    resources = create_resources("lisa-usage-replicas", endpoint_url=moto_url)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
    store = TokenStore(resources.tokens_table, dynamodb)
    tokens = {who: store.create(username=who, groups=["team-a"])[0] for who in ("limited", "counted")}
    registry = ModelRegistry(resources.models_table, dynamodb)
    serve_model(registry, "chat", echo_params(backend.url + "/v1"), "echo")
    app_dir, command, _ = layout_app(tmp_path_factory.mktemp("image"))
    env = replica_env(
        moto_url,
        resources,
        USAGE_TABLE_NAME=resources.usage_table,
        LISA_USAGE_LIMITS=json.dumps({"users": {"limited": {"rateLimit": {"rpm": RPM}}}}),
        LISA_SERVE_ACCESS_LOG="false",
        LISA_SERVE_WORKERS="1",
    )
    logs: Path = tmp_path_factory.mktemp("logs")
    started: list[Replica] = []
    try:
        # One after the other: three LiteLLM imports at once can outlast a replica's start timeout
        # on a small machine.
        for index in range(3):
            started.append(Replica(command, app_dir, env, logs / f"r{index}.log"))
        yield Cluster(started, tokens, UsageStore(resources.usage_table, dynamodb))
    finally:
        for replica in started:
            replica.stop()
        backend.stop()
        moto.stop()


def test_a_60_rpm_limit_holds_across_three_replicas(cluster: Cluster) -> None:
    if time.time() % 60 > 30:  # all requests inside one minute window
        time.sleep(60 - time.time() % 60 + 0.5)
    answers = [cluster.post(index, "limited") for index in range(RPM + 30)]
    admitted = sum(answer.status_code == 200 for answer in answers)
    refused = [answer for answer in answers if answer.status_code == 429]
    print(f"admitted {admitted} of {len(answers)} requests at {RPM} rpm across 3 replicas")
    assert RPM <= admitted <= RPM * 1.1
    assert len(refused) == len(answers) - admitted
    assert all(answer.json()["error"]["code"] == "rate_limit_exceeded" for answer in refused)
    assert all("Retry-After" in answer.headers for answer in refused)
    assert all(answer.headers["x-ratelimit-limit-requests"] == str(RPM) for answer in answers)


def test_counts_are_exact_after_the_flushes_and_the_shutdown_flush(cluster: Cluster) -> None:
    answers = [cluster.post(index, "counted") for index in range(30)]
    assert all(answer.status_code == 200 for answer in answers)
    tokens = sum(answer.json()["usage"]["total_tokens"] for answer in answers)
    deadline = time.monotonic() + 30  # each replica flushes every 10 s
    while cluster.counted("counted") != (30, tokens) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert cluster.counted("counted") == (30, tokens)

    more = [cluster.post(index, "counted") for index in range(6)]
    tokens += sum(answer.json()["usage"]["total_tokens"] for answer in more)
    for replica in cluster.replicas:  # SIGTERM: each replica flushes what it has before exiting
        replica.stop()
    assert cluster.counted("counted") == (36, tokens)
