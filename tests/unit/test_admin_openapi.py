"""The checked-in OpenAPI document matches the one generated from the code (DESIGN decision 3)."""

from __future__ import annotations

import json

from admin_api import openapi
from local_mode.apigw import ADMIN_ROUTES


def test_checked_in_openapi_document_is_current() -> None:
    generated = openapi.document()
    checked_in = openapi.DOCUMENT_PATH.read_text() if openapi.DOCUMENT_PATH.exists() else ""
    assert checked_in == generated, (
        "docs/admin-openapi.json is out of date; regenerate it from the repository root with: "
        "PYTHONPATH=lambdas python -m admin_api.openapi"
    )


def test_document_describes_every_route_and_the_security() -> None:
    document = json.loads(openapi.document())
    assert document["info"]["title"] == "LISA admin API"
    # The routes local mode's API-Gateway front (and the deployed API) passes to the handler.
    assert set(document["paths"]) == set(ADMIN_ROUTES)
    assert set(document["paths"]["/models/metadata/instances"]) == {"get"}
    assert set(document["paths"]["/models/{modelId}/context-window"]) == {"put"}
    assert set(document["paths"]["/docs"]) == {"get"}
    assert set(document["paths"]["/models"]) == {"get", "post"}
    assert set(document["paths"]["/models/{modelId}"]) == {"get", "put", "delete"}
    assert set(document["paths"]["/api-tokens"]) == {"get", "post"}
    assert set(document["paths"]["/api-tokens/{tokenId}"]) == {"get", "delete"}
    assert "201" in document["paths"]["/models"]["post"]["responses"]
    assert "201" in document["paths"]["/api-tokens"]["post"]["responses"]
    assert "tokenHash" not in json.dumps(document)
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "apiKeySecretArn" not in json.dumps(document["components"]["schemas"]["ModelRecord"])
