"""Two serve replicas (the container's real entry point, as separate processes) follow one registry.

The processes run from a folder laid out exactly as the Dockerfile's COPY lines lay out ``/app``,
with the Dockerfile's CMD, and its HEALTHCHECK command is run against them: this keeps the
Dockerfile honest on machines that cannot build images.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import httpx
import openai
import pytest

from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import ModelStatus
from lisa_domain.tokens import TokenStore
from local_mode.resources import LocalResources, create_resources
from tests.conftest import ADMIN_GROUP
from tests.support.fake_backend import SLOW_CHUNKS, FakeBackend
from tests.support.served_models import create_model

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "litellm_container" / "Dockerfile"
PROPAGATION_LIMIT = 1.0


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of every Dockerfile line, continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def test_dockerfile_runs_as_non_root_with_a_health_check() -> None:
    instructions = dict(dockerfile_instructions())
    assert instructions["FROM"].endswith("-slim")
    assert instructions["USER"] not in ("root", "0")
    assert "CMD" in instructions["HEALTHCHECK"]
    assert exec_form(instructions["CMD"]) == ["python", "-m", "serve"]


def layout_app(target: Path) -> tuple[Path, list[str], list[str]]:
    """``/app`` as the Dockerfile builds it (source folders only), its CMD and HEALTHCHECK command."""
    workdir, cmd, health = "/app", [], []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "WORKDIR":
            workdir = arguments
        elif instruction == "COPY":
            source, destination = arguments.split()
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source,
                    target / destination.lstrip("/"),
                    ignore=shutil.ignore_patterns("__pycache__"),
                )
        elif instruction == "CMD":
            cmd = exec_form(arguments)
        elif instruction == "HEALTHCHECK":
            health = exec_form(arguments.split(" CMD ", 1)[1])
    python = [sys.executable if part == "python" else part for part in cmd]
    health = [sys.executable if part == "python" else part for part in health]
    return target / workdir.lstrip("/"), python, health


def replica_env(moto_url: str, resources: LocalResources, **extra: str) -> dict[str, str]:
    """The container's environment for a replica on 127.0.0.1 (any port) following moto's registry."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "LISA_SERVE_PORT")}
    env.update(
        AWS_ENDPOINT_URL=moto_url,
        MODELS_TABLE_NAME=resources.models_table,
        TOKENS_TABLE_NAME=resources.tokens_table,
        MANAGEMENT_KEY_SECRET_ARN=resources.management_key_secret_arn,
        ADMIN_GROUP=ADMIN_GROUP,
        LISA_SERVE_HOST="127.0.0.1",
        LISA_SERVE_PORT="0",
        **extra,
    )
    return env


class Replica:
    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self._log = log.open("w")
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for line in self.process.stdout or []:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            raise AssertionError(f"replica did not start: {log.read_text()[-2000:]}") from None
        match = re.search(r"listening on (http://\S+)", line)
        assert match, line
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "replica never became ready"
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


@pytest.fixture(scope="module")
def replicas(
    moto_url: str, backend: tuple[FakeBackend, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Replica], ModelRegistry, dict[str, str], list[str]]]:
    resources = create_resources("lisa-replicas", endpoint_url=moto_url)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
    tokens = TokenStore(resources.tokens_table, dynamodb)
    token_values = {
        "admin": tokens.create(username="admin", groups=[ADMIN_GROUP])[0],
        "user": tokens.create(username="user", groups=["team-a"])[0],
    }
    app_dir, command, health = layout_app(tmp_path_factory.mktemp("image"))
    env = replica_env(
        moto_url,
        resources,
        LISA_SERVE_BACKEND_TIMEOUT_SECONDS="10",
        LISA_SERVE_ACCESS_LOG="false",
        LISA_SERVE_WORKERS="1",  # one process per replica: this test is about replicas, not workers
    )
    logs = tmp_path_factory.mktemp("logs")
    started: list[Replica] = []
    try:
        # Start both at once: importing LiteLLM takes a few seconds each.
        starters = [
            threading.Thread(
                target=lambda i=i: started.append(Replica(command, app_dir, env, logs / f"r{i}.log"))
            )
            for i in range(2)
        ]
        for thread in starters:
            thread.start()
        for thread in starters:
            thread.join()
        assert len(started) == 2
        for replica in started:
            # The Dockerfile's HEALTHCHECK command, against the running replica.
            check = subprocess.run(
                health, cwd=app_dir, env={**env, "LISA_SERVE_PORT": str(replica.port)}, check=False
            )
            assert check.returncode == 0
        yield started, ModelRegistry(resources.models_table, dynamodb), token_values, [backend[1]]
    finally:
        for replica in started:
            replica.stop()


def _until_both(replicas: list[Replica], check: Callable[[str], bool]) -> float:
    """Seconds until ``check(url)`` holds on every replica (polling each every 10 ms)."""
    started = time.monotonic()
    pending = {replica.url for replica in replicas}
    while pending:
        pending = {url for url in pending if not check(url)}
        assert time.monotonic() - started < 5, "replicas never converged"
        if pending:
            time.sleep(0.01)
    return time.monotonic() - started


def _visible(token: str, model_id: str, expected: bool) -> Callable[[str], bool]:
    def check(url: str) -> bool:
        response = httpx.get(
            f"{url}/v2/serve/models/{model_id}", headers={"Authorization": f"Bearer {token}"}
        )
        return (response.status_code == 200) is expected

    return check


def test_two_replicas_follow_the_registry_within_a_second(
    replicas: tuple[list[Replica], ModelRegistry, dict[str, str], list[str]],
) -> None:
    servers, registry, token_values, (backend_url,) = replicas
    admin, user = token_values["admin"], token_values["user"]
    times: dict[str, float] = {}

    def params(name: str) -> dict[str, str]:
        return {"model": f"openai/{name}", "api_base": backend_url, "api_key": "unused"}

    def create(model_id: str, name: str) -> None:
        create_model(registry, model_id, name, streaming=True)

    # A model becomes InService (registered): both replicas serve it.
    create("r-chat", "echo")
    create("r-slow", "slow")
    registry.register("r-slow", params("slow"), allowed_from=[ModelStatus.CREATING])
    registry.register("r-chat", params("echo"), allowed_from=[ModelStatus.CREATING])
    times["in service"] = _until_both(servers, _visible(user, "r-chat", True))
    _until_both(servers, _visible(user, "r-slow", True))
    for server in servers:
        client = openai.OpenAI(base_url=server.url + "/v2/serve", api_key=user, max_retries=0)
        assert client.chat.completions.create(model="r-chat", messages=[{"role": "user", "content": "hi"}])

    # A stream in flight on replica 0 while its model is stopped: it finishes.
    chunks: list[str] = []
    first = threading.Event()
    failure: list[BaseException] = []

    def stream() -> None:
        try:
            client = openai.OpenAI(base_url=servers[0].url + "/v2/serve", api_key=user, max_retries=0)
            for chunk in client.chat.completions.create(
                model="r-slow", messages=[{"role": "user", "content": "go"}], stream=True
            ):
                if chunk.choices and chunk.choices[0].delta.content:
                    chunks.append(chunk.choices[0].delta.content)
                    first.set()
        except BaseException as error:
            failure.append(error)
            first.set()

    streaming = threading.Thread(target=stream)
    streaming.start()
    assert first.wait(10)
    registry.deregister("r-slow", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
    times["stopped"] = _until_both(servers, _visible(user, "r-slow", False))
    assert streaming.is_alive(), "the stream should still be running when the change is served"
    for server in servers:
        response = httpx.post(
            server.url + "/v2/serve/chat/completions",
            headers={"Authorization": f"Bearer {user}"},
            json={"model": "r-slow", "messages": [{"role": "user", "content": "x"}]},
        )
        assert response.status_code == 404
    streaming.join(timeout=30)
    assert not failure, failure
    assert "".join(chunks) == "".join(f"{' ' if i else ''}w{i}" for i in range(SLOW_CHUNKS))

    # Started again with other parameters (an update of what it routes to).
    registry.transition("r-slow", allowed_from=[ModelStatus.STOPPED], to=ModelStatus.STARTING)
    registry.register("r-slow", params("echo"), allowed_from=[ModelStatus.STARTING])
    times["started"] = _until_both(servers, _visible(user, "r-slow", True))
    for server in servers:
        client = openai.OpenAI(base_url=server.url + "/v2/serve", api_key=user, max_retries=0)
        reply = client.chat.completions.create(model="r-slow", messages=[{"role": "user", "content": "back"}])
        assert reply.choices[0].message.content == "echo: back"

    # An update of who may use it: invisible to the user on both replicas, still there for admins.
    registry.transition(
        "r-chat",
        allowed_from=[ModelStatus.IN_SERVICE],
        to=ModelStatus.UPDATING,
        changes={"allowedGroups": ["team-x"]},
    )
    registry.transition("r-chat", allowed_from=[ModelStatus.UPDATING], to=ModelStatus.IN_SERVICE)
    times["updated"] = _until_both(servers, _visible(user, "r-chat", False))
    assert _until_both(servers, _visible(admin, "r-chat", True)) < PROPAGATION_LIMIT

    # Deleted: gone everywhere.
    registry.deregister("r-chat", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.DELETING)
    registry.delete("r-chat", allowed_from=[ModelStatus.DELETING])
    times["deleted"] = _until_both(servers, _visible(admin, "r-chat", False))
    for server in servers:
        listed = httpx.get(
            server.url + "/v2/serve/models", headers={"Authorization": f"Bearer {admin}"}
        ).json()
        assert [model["id"] for model in listed["data"]] == ["r-slow"]

    print("registry propagation to both replicas (s):", {k: round(v, 3) for k, v in times.items()})
    assert max(times.values()) < PROPAGATION_LIMIT, times
    for server in servers:
        assert server.process.poll() is None


def _children(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(child) for child in (task / "children").read_text().split()}
    return children


def test_several_workers_serve_and_stop_together(
    moto_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``LISA_SERVE_WORKERS=2``: one supervisor, two app processes; SIGTERM stops all three."""
    resources = create_resources("lisa-workers", endpoint_url=moto_url)
    app_dir, command, _ = layout_app(tmp_path_factory.mktemp("image"))
    env = replica_env(moto_url, resources, LISA_SERVE_WORKERS="2", LISA_SERVE_ALLOW_MANAGEMENT_KEY="true")
    replica = Replica(command, app_dir, env, tmp_path_factory.mktemp("logs") / "workers.log")
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(replica.process.pid)) < 2:
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.1)
        client = openai.OpenAI(base_url=replica.url + "/v2/serve", api_key=resources.management_key)
        for _ in range(6):  # requests spread over both workers; each answers from the registry
            assert client.models.list().data == []
    finally:
        replica.stop()
    assert replica.process.returncode is not None
    # multiprocessing's resource tracker (also a child) exits a moment after its parent.
    deadline = time.monotonic() + 10
    while left := [pid for pid in workers if _running(pid)]:
        assert time.monotonic() < deadline, f"children outlived the supervisor: {left}"
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
