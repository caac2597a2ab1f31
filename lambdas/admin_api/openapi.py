"""The admin API's OpenAPI document, generated from the resolver (decision 3 in docs/architecture.md).

Regenerate the checked-in copy with ``PYTHONPATH=lambdas python -m admin_api.openapi`` from the
repository root; ``--check`` exits 1 when ``docs/admin-openapi.json`` is out of date.
"""

import sys
from pathlib import Path

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

from admin_api.handler import app, load_routes

TITLE = "LISA admin API"
VERSION = "1.0.0"
DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "admin-openapi.json"

DESCRIPTION = (
    "Model and API-token management for LISA. Every route needs credentials: "
    "`Authorization: Bearer <credential>` (an OIDC JWT from the configured issuer, an API token or the "
    "management key). Errors are "
    '`{"message": ..., "statusCode": ...}`; schema errors (422) list each field under `errors`.'
)


def document() -> str:
    """The OpenAPI document as JSON text (deterministic, newline-terminated)."""
    load_routes()
    return (
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security_schemes={
                "bearer": HTTPBearer(description="An OIDC JWT, an API token or the management key"),
                "apiKey": APIKey(
                    name="Api-Key",
                    in_=APIKeyIn.header,
                    description="Same value as the bearer token (the deployed API Gateway requires the "
                    "Authorization header: it is the authorizer's cache key)",
                ),
            },
            security=[{"bearer": []}, {"apiKey": []}],
        )
        + "\n"
    )


def main(argv: list[str]) -> int:
    text = document()
    if "--check" in argv:
        current = DOCUMENT_PATH.read_text() if DOCUMENT_PATH.exists() else ""
        if current != text:
            print(f"{DOCUMENT_PATH} is out of date; run: PYTHONPATH=lambdas python -m admin_api.openapi")
            return 1
        return 0
    DOCUMENT_PATH.write_text(text)
    print(f"wrote {DOCUMENT_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
