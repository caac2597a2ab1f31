"""The checked-in OpenAPI document matches the one generated from the code (decision 3 in docs/architecture.md)."""

from __future__ import annotations

import json

from admin_api import openapi
from lisa_contracts.names import ADMIN_ROUTES


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
    # Every route the handler serves is in the one route table API Gateway and local mode's
    # API-Gateway front are built from, with the same methods, and nothing else is.
    documented = {path: {method.upper() for method in item} for path, item in document["paths"].items()}
    assert documented == {path: set(methods) for path, methods in ADMIN_ROUTES.items()}
    assert "201" in document["paths"]["/models"]["post"]["responses"]
    assert "201" in document["paths"]["/api-tokens"]["post"]["responses"]
    assert "tokenHash" not in json.dumps(document)
    assert set(document["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    assert "apiKeySecretArn" not in json.dumps(document["components"]["schemas"]["ModelRecord"])
