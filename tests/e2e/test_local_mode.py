"""End to end: local mode as a user meets it, over HTTP, with the real local models.

The tests share one local mode (``conftest.local_mode``, stopped when the module ends) and do
not depend on each other's order; the shutdown tests start local modes of their own.
Text-model cases need the llama.cpp build (``local_mode/install.sh``, run by ``make local`` and by
``.ci/run``); where it is absent they are skipped with that reason, never passed.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from local_mode.demo import EMBEDDING_MODEL_ID, TEXT_MODEL_ID, self_hosted_model
from tests.e2e.conftest import LOCAL_MODE_COMMAND, REPO_ROOT, LocalMode, instance_pids, start_local_mode
from tests.support.waiting import wait_for

# One local mode serves the module's tests in order: keep them on one xdist worker (--dist loadgroup).
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-mode")]

LLAMA_CPP_MISSING = importlib.util.find_spec("llama_cpp") is None
needs_llama_cpp = pytest.mark.skipif(
    LLAMA_CPP_MISSING,
    reason="llama-cpp-python is not installed, so local mode cannot run text models "
    "(local_mode/install.sh builds it; make local and .ci/run run that script)",
)
SETTLE_TIMEOUT = 240.0
#: decision 1 in docs/architecture.md: serve replicas follow the registry within a second; allow scheduling noise.
LISTING_TIMEOUT = 5.0


# ---- helpers ---------------------------------------------------------------------------------
def wait_for_status(
    admin: httpx.Client, model_id: str, wanted: str, timeout: float = SETTLE_TIMEOUT
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    model: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = admin.get(f"/models/{model_id}")
        assert response.status_code == 200, response.text
        model = response.json()["model"]
        if model["status"] == wanted:
            return model
        if model["status"] == "Failed" and wanted != "Failed":
            pytest.fail(f"{model_id} failed: {model.get('statusReason')}")
        time.sleep(0.5)
    pytest.fail(f"{model_id} did not reach {wanted} in {timeout:.0f} s; last seen: {model}")


def wait_for_gone(admin: httpx.Client, model_id: str, timeout: float = SETTLE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = admin.get(f"/models/{model_id}")
        if response.status_code == 404:
            return
        assert response.status_code == 200, response.text
        assert response.json()["model"]["status"] in ("Deleting", "InService", "Stopped", "Failed")
        time.sleep(0.5)
    pytest.fail(f"{model_id} was not deleted in {timeout:.0f} s")


def served_models(local: LocalMode, token: str | None = None) -> list[dict[str, Any]]:
    """``GET /v2/serve/models``, checked against the seed's shape."""
    response = httpx.get(
        f"{local.serve_url}/models",
        headers={"Authorization": f"Bearer {token or local.admin_token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "object"} and body["object"] == "list"
    for entry in body["data"]:
        assert set(entry) == {"id", "object", "created", "owned_by"}, entry
        assert entry["object"] == "model"
        assert isinstance(entry["created"], int) and isinstance(entry["owned_by"], str)
    return list(body["data"])


def token_accepted(local: LocalMode, token: str) -> bool:
    response = httpx.get(
        f"{local.serve_url}/models", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


def wait_for_listing(local: LocalMode, model_id: str, listed: bool) -> None:
    deadline = time.monotonic() + LISTING_TIMEOUT
    while True:
        ids = {entry["id"] for entry in served_models(local)}
        if (model_id in ids) == listed:
            return
        if time.monotonic() > deadline:
            state = "listed" if listed else "gone from the list"
            pytest.fail(f"{model_id} not {state} by GET /v2/serve/models within {LISTING_TIMEOUT} s: {ids}")
        time.sleep(0.1)


def openai_client(local: LocalMode) -> OpenAI:
    return OpenAI(base_url=local.serve_url, api_key=local.admin_token, max_retries=0, timeout=120)


def assert_embeds(local: LocalMode, model_id: str) -> None:
    result = openai_client(local).embeddings.create(model=model_id, input=["local mode", "modo local"])
    assert len(result.data) == 2
    vectors = [item.embedding for item in result.data]
    assert all(len(vector) == 384 for vector in vectors)  # multilingual-e5-small
    assert vectors[0] != vectors[1]


def assert_chats(local: LocalMode, model_id: str) -> None:
    client = openai_client(local)
    messages: Any = [{"role": "user", "content": "Name one colour."}]
    completion = client.chat.completions.create(model=model_id, messages=messages, max_tokens=12)
    assert completion.choices[0].message.content, completion
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model=model_id, messages=messages, max_tokens=12, stream=True
        )
        if chunk.choices
    ]
    assert len([piece for piece in pieces if piece]) > 1, pieces  # really streamed, token by token
    assert "".join(pieces).strip()


def lifecycle(local: LocalMode, body: dict[str, Any], use: Any) -> None:
    """create -> InService -> listed -> used -> stop -> not listed -> start -> listed -> used -> delete -> gone."""
    model_id = body["modelId"]
    with local.admin() as admin:
        created = admin.post("/models", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["model"]["status"] == "Creating"
        wait_for_status(admin, model_id, "InService")
        wait_for_listing(local, model_id, listed=True)
        use(local, model_id)

        stopped = admin.put(f"/models/{model_id}", json={"enabled": False})
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["model"]["status"] == "Stopping"
        wait_for_status(admin, model_id, "Stopped")
        wait_for_listing(local, model_id, listed=False)

        started = admin.put(f"/models/{model_id}", json={"enabled": True})
        assert started.status_code == 200, started.text
        assert started.json()["model"]["status"] == "Starting"
        wait_for_status(admin, model_id, "InService")
        wait_for_listing(local, model_id, listed=True)
        use(local, model_id)

        deleted = admin.delete(f"/models/{model_id}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["model"]["status"] == "Deleting"
        wait_for_gone(admin, model_id)
        wait_for_listing(local, model_id, listed=False)


# ---- the tests (any order) ---------------------------------------------------------------------
def test_the_readme_command_runs_what_these_tests_start() -> None:
    """``make local`` (the README's command) = install, then ``$(PY) -m local_mode``, as started here."""
    assert "make local" in (REPO_ROOT / "README.md").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    _, _, rest = makefile.partition("\nlocal:")
    assert rest, "the Makefile has no 'local' target"
    recipe = [line.strip() for line in rest.splitlines()[1:] if line.startswith("\t")][:1]
    assert recipe == ["$(PY) -m local_mode"], recipe
    assert LOCAL_MODE_COMMAND[1:] == ["-m", "local_mode"]


def test_starts_with_the_demo_models_and_writes_local_json(local_mode: LocalMode) -> None:
    assert local_mode.admin_url.startswith("http://127.0.0.1:")
    assert local_mode.serve_url.startswith("http://127.0.0.1:") and local_mode.serve_url.endswith("/v2/serve")
    log = local_mode.log()
    assert local_mode.admin_token in log and "curl" in log and "from openai import OpenAI" in log
    with local_mode.admin() as admin:
        embedding = admin.get(f"/models/{EMBEDDING_MODEL_ID}").json()["model"]
        text = admin.get(f"/models/{TEXT_MODEL_ID}").json()["model"]
    assert embedding["status"] == "InService"
    served = {entry["id"] for entry in served_models(local_mode)}
    assert EMBEDDING_MODEL_ID in served
    if LLAMA_CPP_MISSING:
        assert text["status"] == "Failed" and "llama-cpp-python" in text["statusReason"], text
    else:
        assert text["status"] == "InService", text
        assert TEXT_MODEL_ID in served


def test_embedding_model_lifecycle(local_mode: LocalMode) -> None:
    lifecycle(local_mode, self_hosted_model("e2e-embed", "embedding"), assert_embeds)


@needs_llama_cpp
def test_text_model_lifecycle_chat_streaming_and_not(local_mode: LocalMode) -> None:
    lifecycle(local_mode, self_hosted_model("e2e-text", "textgen"), assert_chats)


def test_a_non_admin_cannot_create(local_mode: LocalMode) -> None:
    with local_mode.admin() as admin:
        issued = admin.post(
            "/api-tokens", json={"username": "e2e-user", "groups": ["e2e-users"], "name": "e2e"}
        )
        assert issued.status_code == 201, issued.text
        user_token = issued.json()["token"]
        with local_mode.admin(user_token) as user:
            refused = user.post("/models", json=self_hosted_model("e2e-by-user", "embedding"))
            assert refused.status_code == 403, refused.text
        assert admin.get("/models/e2e-by-user").status_code == 404
    # The same user may still call the models open to everyone, once the serve app follows the new
    # token (within LISTING_TIMEOUT, like the registry).
    wait_for(
        lambda: token_accepted(local_mode, user_token), LISTING_TIMEOUT, "the serve app accepts the new token"
    )
    assert EMBEDDING_MODEL_ID in {entry["id"] for entry in served_models(local_mode, user_token)}


def test_no_credentials_is_401(local_mode: LocalMode) -> None:
    response = httpx.get(f"{local_mode.admin_url}/models", timeout=30)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize(
    ("model_id", "change"),
    [
        ("Not A Valid Id", {}),
        ("e2e-bad-type", {"modelType": "hologram"}),
        ("e2e-half-hosted", {"autoScalingConfig": None}),
        ("e2e-unknown-field", {"replicas": 3}),
        ("e2e-unknown-instance", {"instanceType": "m5.gigantic"}),
    ],
)
def test_bad_input_is_rejected_and_leaves_nothing(
    local_mode: LocalMode, model_id: str, change: dict[str, Any]
) -> None:
    body = self_hosted_model(model_id, "embedding") | change
    body = {key: value for key, value in body.items() if value is not None}
    pids_before = set(instance_pids(local_mode.marker))
    with local_mode.admin() as admin:
        listed_before = admin.get("/models").json()["models"]
        response = admin.post("/models", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"], response.text  # each problem names its field
        if model_id == model_id.lower():
            assert admin.get(f"/models/{model_id}").status_code == 404
        assert admin.get("/models").json()["models"] == listed_before
    assert set(instance_pids(local_mode.marker)) <= pids_before  # no process was started


def test_an_existing_id_is_a_conflict_and_changes_nothing(local_mode: LocalMode) -> None:
    with local_mode.admin() as admin:
        before = admin.get(f"/models/{EMBEDDING_MODEL_ID}").json()["model"]
        response = admin.post("/models", json=self_hosted_model(EMBEDDING_MODEL_ID, "embedding"))
        assert response.status_code == 409, response.text
        assert admin.get(f"/models/{EMBEDDING_MODEL_ID}").json()["model"] == before


def test_a_kind_local_hosting_cannot_run_ends_failed_with_the_reason(local_mode: LocalMode) -> None:
    body = self_hosted_model("e2e-image", "imagegen", streaming=False)
    with local_mode.admin() as admin:
        created = admin.post("/models", json=body)
        assert created.status_code == 201, created.text
        failed = wait_for_status(admin, "e2e-image", "Failed")
        assert "cannot run imagegen" in failed["statusReason"], failed
        assert "e2e-image" not in {entry["id"] for entry in served_models(local_mode)}
        assert admin.delete("/models/e2e-image").status_code == 200
        wait_for_gone(admin, "e2e-image")


@pytest.fixture
def bare_local_mode(tmp_path: Any) -> Iterator[LocalMode]:
    """A local mode of the test's own (no demo models), for the tests that shut it down."""
    local = start_local_mode(tmp_path, "--no-demo")
    try:
        yield local
    finally:
        local.kill_everything()


def serving_embedding_model(local: LocalMode, model_id: str) -> None:
    with local.admin() as admin:
        assert admin.post("/models", json=self_hosted_model(model_id, "embedding")).status_code == 201
        wait_for_status(admin, model_id, "InService")
    assert len(instance_pids(local.marker)) >= 3  # local mode, serve app, the model's server


def test_sigterm_stops_everything_and_leaves_no_process(bare_local_mode: LocalMode) -> None:
    local = bare_local_mode
    serving_embedding_model(local, "e2e-sigterm")
    assert local.process.pid in instance_pids(local.marker)
    assert local.stop(signal.SIGTERM, timeout=60) == 0, local.log()
    assert instance_pids(local.marker) == [], local.log()
    assert not local.state_file.exists()  # its URLs and token are dead
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{local.admin_url}/models", timeout=5)


def test_ctrl_c_stops_everything_including_model_processes(bare_local_mode: LocalMode) -> None:
    local = bare_local_mode
    serving_embedding_model(local, "e2e-ctrl-c")
    # Ctrl-C in a terminal sends SIGINT to the foreground process group.
    os.killpg(local.process.pid, signal.SIGINT)
    assert local.process.wait(timeout=60) == 0, local.log()
    assert instance_pids(local.marker) == [], local.log()
