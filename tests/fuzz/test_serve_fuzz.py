"""Schema fuzzing of the serve API (bounded: a fixed seed, ~15 cases per operation and mode).

Cases are generated from the serve app's own OpenAPI document (``serve.openapi``) and sent to the
running app; every answer must be documented: its status, content type and body schema, and no 5xx
but the backend errors (502/504) and 503. ``bench/fuzz_serve.py`` runs the same with 1,000+ cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from serve.openapi import openapi_document
from tests.fuzz.harness import fuzz, use_known_models
from tests.serve.conftest import ServeEnv

CASES = 15


@pytest.fixture(scope="module")
def document(serve: ServeEnv) -> dict[str, Any]:
    from fastapi import FastAPI

    from serve.app import create_app

    app: FastAPI = create_app(serve.services)  # the same routes; only its document is used
    return openapi_document(app)


def test_every_serve_route_documents_its_error_responses(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            if path.startswith("/v2/serve/"):
                assert {"200", "401", "403", "503"} <= statuses, (method, path)
            if method == "post":
                assert {"400", "404", "413", "502", "504"} <= statuses, path
                assert operation["requestBody"]["content"]["application/json"]["schema"]["required"]


def test_fuzzed_requests_get_documented_answers(serve: ServeEnv, document: dict[str, Any]) -> None:
    report = fuzz(
        document,
        base_url=serve.url,
        headers=serve.headers("admin"),
        cases_per_operation=CASES,
        mutate=use_known_models(["chat-open", "embed"]),
    )
    assert report.cases >= 100
    assert not report.failures, "\n".join(report.failures[:20])
    assert any(200 <= status < 300 for status in report.statuses), report.statuses
    assert any(400 <= status < 500 for status in report.statuses), report.statuses


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
