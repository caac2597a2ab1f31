"""``GET /docs``: the admin API's documentation as one self-contained HTML page."""

import json
from functools import cache
from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response

from admin_api.docs_page import render
from admin_api.resolver import app
from admin_api.routes.common import error_docs

HTML = "text/html; charset=utf-8"


@cache
def page() -> str:
    """The page, rendered once per process from the OpenAPI document of the registered routes."""
    from admin_api.openapi import document  # imports the entry point: only once every route is loaded

    return render(json.loads(document()))


@app.get(
    "/docs",
    summary="API documentation",
    description="Any authenticated user. This document as an HTML page, rendered on the server: no "
    "script and nothing downloaded from elsewhere.",
    responses={
        200: {"description": "The HTML page", "content": {"text/html": {"schema": {"type": "string"}}}},
        **error_docs(401),
    },
)
def docs() -> Response[str]:
    return Response(status_code=HTTPStatus.OK, content_type=HTML, body=page())
