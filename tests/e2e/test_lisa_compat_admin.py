"""LISA drop-in, admin side: the requests LISA's SDK (lisapy ``LisaApi``) sends, against local mode.

``LisapyAdmin`` is written here from lisapy's behaviour (it is not lisapy's code): one session whose
headers carry the credential in both ``Api-Key`` and ``Authorization``, the latter without
``Bearer`` (as LISA's SDK tests configure it); the paths, methods and JSON bodies lisapy uses; and
answers read the way lisapy reads them (``models`` of the list, the JSON list of instance types, the
HTML text of ``/docs``, any 200/201 for a create and 200/204 for a delete; ``get_model`` searches
the list). Any other status is an error, as lisapy raises one.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from local_mode.demo import EMBEDDING_MODEL_ID, TEXT_MODEL_ID
from tests.e2e.conftest import LocalMode
from tests.support.lisa_payloads import LISAPY_BEDROCK_MODEL

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-mode")]

SETTLE_TIMEOUT = 120.0


class LisapyAdmin:
    """The admin calls of lisapy's ``LisaApi``, made as lisapy makes them."""

    def __init__(self, url: str, credential: str) -> None:
        self.session = httpx.Client(
            base_url=url, headers={"Api-Key": credential, "Authorization": credential}, timeout=30
        )

    @staticmethod
    def _ok(response: httpx.Response, *statuses: int) -> httpx.Response:
        if response.status_code not in statuses:
            raise AssertionError(f"{response.request.method} {response.request.url}: {response.text}")
        return response

    def list_models(self) -> list[dict[str, Any]]:
        models: list[dict[str, Any]] = self._ok(self.session.get("/models"), 200).json().get("models")
        return models

    def list_embedding_models(self) -> list[dict[str, Any]]:
        return [model for model in self.list_models() if model["modelType"] == "embedding"]

    def list_instances(self) -> list[str]:
        instances: list[str] = self._ok(self.session.get("/models/metadata/instances"), 200).json()
        return instances

    def create_bedrock_model(self, payload: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._ok(self.session.post("/models", json=payload), 200, 201).json()
        return created

    def get_model(self, model_id: str) -> dict[str, Any]:
        for model in self.list_models():
            if model.get("modelId") == model_id:
                return model
        raise LookupError(f"Model with ID {model_id} not found")

    def delete_model(self, model_id: str) -> bool:
        self._ok(self.session.delete(f"/models/{model_id}"), 200, 204)
        return True

    def list_docs(self) -> str:
        return self._ok(self.session.get("/docs"), 200).text


@pytest.fixture(scope="module")
def lisa_api(local_mode: LocalMode) -> LisapyAdmin:
    return LisapyAdmin(local_mode.admin_url, local_mode.admin_token)


def test_list_models(lisa_api: LisapyAdmin) -> None:
    models = {model["modelId"]: model for model in lisa_api.list_models()}
    assert {TEXT_MODEL_ID, EMBEDDING_MODEL_ID} <= set(models)
    assert models[TEXT_MODEL_ID]["contextWindow"] == 2048  # from the demo's MAX_MODEL_LEN
    assert models[TEXT_MODEL_ID]["hostingType"] == "lisa_hosted"


def test_list_embedding_models(lisa_api: LisapyAdmin) -> None:
    embeddings = lisa_api.list_embedding_models()
    assert EMBEDDING_MODEL_ID in {model["modelId"] for model in embeddings}
    assert TEXT_MODEL_ID not in {model["modelId"] for model in embeddings}


def test_list_docs(lisa_api: LisapyAdmin) -> None:
    page = lisa_api.list_docs()
    assert page.startswith("<!DOCTYPE html>") and "LISA admin API" in page
    assert "/models/metadata/instances" in page and "/models/{modelId}/context-window" in page
    assert "<script" not in page


def test_list_instances(lisa_api: LisapyAdmin) -> None:
    instances = lisa_api.list_instances()
    assert {"g5.xlarge", "g6e.12xlarge", "m5.large"} <= set(instances)
    assert all(isinstance(name, str) for name in instances)


def test_create_get_and_delete_a_bedrock_model(lisa_api: LisapyAdmin) -> None:
    model_id = f"Claude-Haiku-{uuid.uuid4().hex[:8]}"
    created = lisa_api.create_bedrock_model({**LISAPY_BEDROCK_MODEL, "modelId": model_id})
    assert created["model"]["modelId"] == model_id
    assert created["model"]["status"] == "Creating"

    deadline = time.monotonic() + SETTLE_TIMEOUT
    model = lisa_api.get_model(model_id)
    while model["status"] == "Creating" and time.monotonic() < deadline:
        time.sleep(0.5)
        model = lisa_api.get_model(model_id)
    assert model["status"] == "InService", model
    assert model["modelName"] == LISAPY_BEDROCK_MODEL["modelName"]
    assert model["contextWindow"] == 200_000 and model["hostingType"] == "third_party"

    assert lisa_api.delete_model(model_id) is True
    while time.monotonic() < deadline:
        try:
            lisa_api.get_model(model_id)
        except LookupError:
            return
        time.sleep(0.5)
    pytest.fail(f"{model_id} was not deleted in {SETTLE_TIMEOUT:.0f} s")
