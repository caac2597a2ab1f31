"""Schema fuzzing of the serve API (bounded: a fixed seed, ~15 cases per operation and mode).

Cases are generated from the serve app's own OpenAPI document (``serve.openapi``) and sent to the
running app; every answer must be documented: its status, content type and body schema, and no 5xx
but the backend errors (502/504) and 503. ``bench/fuzz_serve.py`` runs the same with 1,000+ cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from lisa_domain.schema import ModelType
from serve.app import PREFIX
from serve.bodies import Endpoint
from serve.openapi import openapi_document
from serve.surface_routes import MODEL_TYPES
from tests.fuzz.harness import Report, fuzz, use_known_models
from tests.serve.conftest import ServeEnv

CASES = 15
#: A model of every type the routes serve (the serve fixture's own, and ones added here), so that
#: generated requests also reach the stand-in backend.
KNOWN_MODELS = {
    ModelType.TEXTGEN: "chat-open",
    ModelType.EMBEDDING: "embed",
    ModelType.IMAGEGEN: "fuzz-painter",
    ModelType.TTS: "fuzz-speaker",
    ModelType.STT: "fuzz-listener",
    ModelType.RERANK: "fuzz-ranker",
}
ADDED = (ModelType.IMAGEGEN, ModelType.TTS, ModelType.STT, ModelType.RERANK)
#: Each inference route's model type (``serve.app`` and ``serve.surface_routes`` check the same).
ROUTE_TYPES = {
    Endpoint.CHAT: ModelType.TEXTGEN,
    Endpoint.COMPLETIONS: ModelType.TEXTGEN,
    Endpoint.EMBEDDINGS: ModelType.EMBEDDING,
    **MODEL_TYPES,
}
BY_PATH = {
    f"{PREFIX}/{endpoint.value}": [KNOWN_MODELS[model_type]] for endpoint, model_type in ROUTE_TYPES.items()
}


@pytest.fixture(scope="module")
def document(serve: ServeEnv) -> dict[str, Any]:
    from fastapi import FastAPI

    from serve.app import create_app

    app: FastAPI = create_app(serve.services)  # the same routes; only its document is used
    for model_type in ADDED:  # vLLM's provider: speech, transcription and rerank at /v1/...
        model_id = KNOWN_MODELS[model_type]
        params = {"model": f"hosted_vllm/{model_id}", "api_base": serve.backend_url, "api_key": "unused"}
        serve.add_model(model_id, model_type=model_type, params=params)
    return openapi_document(app)


def test_every_serve_route_documents_its_error_responses(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            if path.startswith("/v2/serve/"):
                assert {"200", "401", "403", "503"} <= statuses, (method, path)
            if method == "post":
                assert {"400", "404", "413", "502", "504"} <= statuses, path
                (body,) = operation["requestBody"]["content"].values()
                assert body["schema"]["required"], path
    upload = document["paths"]["/v2/serve/audio/transcriptions"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"


def _fuzz_as_admin(serve: ServeEnv, document: dict[str, Any], **options: Any) -> Report:
    """Fuzz with an admin's credentials, the model names swapped for known ones of each route's type."""
    return fuzz(
        document,
        base_url=serve.url,
        headers=serve.headers("admin"),
        cases_per_operation=CASES,
        mutate=use_known_models(list(KNOWN_MODELS.values()), by_path=BY_PATH),
        **options,
    )


def test_fuzzed_requests_get_documented_answers(serve: ServeEnv, document: dict[str, Any]) -> None:
    report = _fuzz_as_admin(serve, document)
    assert report.cases >= 100
    assert not report.failures, "\n".join(report.failures[:20])
    assert any(200 <= status < 300 for status in report.statuses), report.statuses
    assert any(400 <= status < 500 for status in report.statuses), report.statuses


@pytest.mark.parametrize("endpoint", [Endpoint.SPEECH, Endpoint.TRANSCRIPTIONS, Endpoint.RERANK])
def test_fuzzed_audio_and_rerank_requests_reach_the_backend(
    serve: ServeEnv, document: dict[str, Any], endpoint: Endpoint
) -> None:
    """Generated JSON and multipart bodies (files included) that the stand-in answers."""
    path = f"{PREFIX}/{endpoint.value}"
    report = _fuzz_as_admin(serve, document, operations=lambda method, operation_path: operation_path == path)
    assert not report.failures, "\n".join(report.failures[:20])
    assert any(200 <= status < 300 for status in report.statuses), report.statuses


def test_fuzzed_requests_without_credentials_are_401(serve: ServeEnv, document: dict[str, Any]) -> None:
    report = fuzz(
        document,
        base_url=serve.url,
        headers={},
        cases_per_operation=5,
        operations=lambda method, path: path.startswith("/v2/serve/"),
    )
    assert not report.failures, "\n".join(report.failures[:20])
    assert set(report.statuses) == {401}, report.statuses
