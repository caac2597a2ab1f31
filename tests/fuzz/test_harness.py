"""The fuzz harness itself: an operation that generates no case is a failure, not a silent pass."""

from __future__ import annotations

from typing import Any

from schemathesis import GenerationMode

from tests.fuzz.harness import fuzz
from tests.support.servers import free_port

OK = {"200": {"description": "ok"}}


def document(paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": "harness", "version": "1"}, "paths": paths}


def test_an_operation_with_nothing_to_violate_fails_a_negative_only_run() -> None:
    report = fuzz(
        document({"/health": {"get": {"responses": OK}}}),
        base_url=f"http://127.0.0.1:{free_port()}",  # never called: there is no case to send
        headers={},
        cases_per_operation=3,
        modes=(GenerationMode.NEGATIVE,),
    )
    assert report.cases == 0
    assert report.failures == ["GET /health: no case generated in any mode"]


def test_a_schema_no_request_satisfies_fails_the_positive_mode() -> None:
    impossible = {"type": "integer", "minimum": 5, "maximum": 1}
    body = {"required": True, "content": {"application/json": {"schema": impossible}}}
    report = fuzz(
        document({"/never": {"post": {"requestBody": body, "responses": OK}}}),
        base_url=f"http://127.0.0.1:{free_port()}",
        headers={},
        cases_per_operation=3,
        modes=(GenerationMode.POSITIVE,),
    )
    assert report.cases == 0
    assert report.failures == [
        "POST /never [positive]: no case generated (UnsatisfiableSchema)",
        "POST /never: no case generated in any mode",
    ]
