"""LisaClient without a server (httpx.MockTransport): typed errors, retries, pagination, waits."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from lisa_client import (
    Conflict,
    InvalidRequest,
    LisaClient,
    NotFound,
    ServerError,
    WaitTimeout,
    WorkflowFailed,
)
from lisa_client.cli import common, main
from lisa_domain.schema import CreateModelRequest, ModelStatus

Handler = Callable[[httpx.Request], httpx.Response]


def record(model_id: str = "m1", status: str = "InService", reason: str | None = None) -> dict[str, Any]:
    return {
        "modelId": model_id,
        "modelName": "openai/gpt-4o-mini",
        "modelType": "textgen",
        "allowedGroups": [],
        "status": status,
        "statusReason": reason,
        "createdAt": 1,
        "updatedAt": 1,
    }


def client(handler: Handler, **kwargs: Any) -> tuple[LisaClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return (
        LisaClient(
            "http://admin.test/",
            "tok",
            transport=httpx.MockTransport(recording),
            sleep=lambda _: None,
            **kwargs,
        ),
        seen,
    )


def test_error_answers_become_typed_exceptions_with_message_and_field() -> None:
    body = {
        "message": "Invalid request: body.modelId: String should match pattern",
        "statusCode": 422,
        "errors": [{"field": "body.modelId", "message": "String should match pattern"}],
    }
    lisa, _ = client(lambda request: httpx.Response(422, json=body))
    with pytest.raises(InvalidRequest) as raised:
        lisa.create_model(CreateModelRequest(modelId="x", modelName="n", modelType="textgen"))
    assert raised.value.status == 422 and raised.value.field == "body.modelId"
    assert "pattern" in raised.value.message

    lisa, _ = client(
        lambda request: httpx.Response(409, json={"message": "model 'x' exists", "statusCode": 409})
    )
    with pytest.raises(Conflict) as conflict:
        lisa.delete_model("x")
    assert conflict.value.field is None

    message = {"message": "tokenExpiration: must be in the future (Unix seconds)", "statusCode": 400}
    lisa, _ = client(lambda request: httpx.Response(400, json=message))
    with pytest.raises(InvalidRequest) as bad:
        lisa.get_model("x")
    assert bad.value.field == "tokenExpiration"


def test_reads_retry_5xx_but_workflow_calls_retry_only_the_safe_codes() -> None:
    answers = iter(
        [httpx.Response(500, json={"message": "boom"}), httpx.Response(200, json={"model": record()})]
    )
    lisa, seen = client(lambda request: next(answers))
    assert lisa.get_model("m1").modelId == "m1" and len(seen) == 2

    lisa, seen = client(lambda request: httpx.Response(502, json={"message": "workflow unreachable"}))
    with pytest.raises(ServerError):
        lisa.delete_model("m1")
    assert len(seen) == 1  # a 502 after a DELETE may have started a workflow: never repeated

    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "1"}, json={"message": "slow down"}),
            httpx.Response(503, json={"message": "busy"}),
            httpx.Response(200, json={"model": record(status="Deleting")}),
        ]
    )
    lisa, seen = client(lambda request: next(answers))
    assert lisa.delete_model("m1").status == ModelStatus.DELETING and len(seen) == 3


def test_retries_are_bounded() -> None:
    lisa, seen = client(lambda request: httpx.Response(503, json={"message": "busy"}), retries=2)
    with pytest.raises(ServerError):
        lisa.list_models()
    assert len(seen) == 3


def test_listings_follow_next_token_to_the_end() -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("nextToken")
        assert request.url.params["limit"] == "100"
        if token is None:
            return httpx.Response(200, json={"models": [record("a")], "nextToken": "p2"})
        return httpx.Response(200, json={"models": [record("b")]})

    lisa, seen = client(pages)
    assert [m.modelId for m in lisa.list_models()] == ["a", "b"] and len(seen) == 2
    assert seen[0].headers["Authorization"] == "Bearer tok"


def _statuses(*answers: dict[str, Any] | None) -> Handler:
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if answer is None:
            return httpx.Response(404, json={"message": "not found", "statusCode": 404})
        return httpx.Response(200, json={"model": answer})

    return handler


def test_wait_for_follows_the_workflow_and_reports_each_poll() -> None:
    lisa, _ = client(_statuses(record(status="Creating", reason="creating stack"), record()))
    polls: list[tuple[str, str | None]] = []

    def seen(model_id: str, model: Any, elapsed: float) -> None:
        polls.append((model.status, model.statusReason))

    model = lisa.wait_for("m1", ModelStatus.IN_SERVICE, on_progress=seen)
    assert model.status == ModelStatus.IN_SERVICE
    assert polls == [("Creating", "creating stack"), ("InService", None)]


def test_wait_for_raises_on_failed_and_on_a_restored_status_with_reason() -> None:
    lisa, _ = client(_statuses(record(status="Creating"), record(status="Failed", reason="image not found")))
    with pytest.raises(WorkflowFailed) as failed:
        lisa.wait_for("m1", ModelStatus.IN_SERVICE)
    assert failed.value.reason == "image not found"

    lisa, _ = client(_statuses(record(status="Updating"), record(reason="update failed: throttled")))
    with pytest.raises(WorkflowFailed, match="update failed"):
        lisa.wait_for("m1", ModelStatus.IN_SERVICE)


def test_wait_for_times_out_and_wait_deleted_ends_when_gone() -> None:
    lisa, _ = client(_statuses(record(status="Creating")))
    with pytest.raises(WaitTimeout):
        lisa.wait_for("m1", ModelStatus.IN_SERVICE, timeout=0)

    lisa, _ = client(_statuses(record(status="Deleting"), None))
    lisa.wait_deleted("m1")
    lisa, _ = client(_statuses(None))
    with pytest.raises(NotFound):
        lisa.wait_for("m1", ModelStatus.IN_SERVICE)


def test_create_sends_the_api_key_and_the_schema_fields() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"model": record(status="Creating")})

    lisa, _ = client(handler)
    lisa.create_model(CreateModelRequest(modelId="m1", modelName="n", modelType="textgen", apiKey="sk-1"))
    assert sent[0]["apiKey"] == "sk-1" and sent[0]["modelId"] == "m1" and "status" not in sent[0]


WARNING = {
    "model": "m2",
    "field": "fallbacks[0]",
    "fallback": "m1",
    "groups": [],
    "message": "model 'm1' is deleted (or not a valid record): requests of 'm2' skip it",
}


def test_the_warnings_of_a_change_go_to_on_warning() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"model": record(status="Deleting"), "warnings": [WARNING]})

    told: list[str] = []
    lisa, _ = client(handler, on_warning=told.append)
    assert lisa.delete_model("m1").status == ModelStatus.DELETING
    assert told == [f"m2 fallbacks[0]: {WARNING['message']}"]


def test_lisa_models_prints_the_warnings_of_a_change_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"model": record(status="Deleting"), "warnings": [WARNING]})

    def mocked(*args: Any, **kwargs: Any) -> LisaClient:
        return LisaClient(*args, transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(common, "LisaClient", mocked)
    result = CliRunner().invoke(
        main, ["--admin-url", "http://admin.test", "--token", "tok", "models", "delete", "m1"]
    )
    assert result.exit_code == 0, result.output
    assert f"warning: m2 fallbacks[0]: {WARNING['message']}" in result.stderr


def test_serve_client_is_an_openai_client_for_the_serve_url() -> None:
    lisa = LisaClient("http://admin.test", "tok", serve_url="http://serve.test/v2/serve")
    serve = lisa.serve_client()
    assert str(serve.base_url).rstrip("/") == "http://serve.test/v2/serve" and serve.api_key == "tok"
    with pytest.raises(ValueError, match="serve_url"):
        LisaClient("http://admin.test", "tok").serve_client()


def test_connection_errors_are_retried_only_for_idempotent_calls() -> None:
    failures = iter([True])

    def flaky(request: httpx.Request) -> httpx.Response:
        if next(failures, False):
            raise httpx.ConnectError("connection reset", request=request)
        return httpx.Response(200, json={"model": record()})

    lisa, seen = client(flaky)
    assert lisa.get_model("m1").modelId == "m1" and len(seen) == 2

    failures = iter([True])
    lisa, seen = client(flaky)
    with pytest.raises(httpx.ConnectError):
        lisa.stop_model("m1")  # the PUT may have reached the API: never sent twice
    assert len(seen) == 1


def test_usage_pages_are_merged_into_one_answer() -> None:
    def pages(request: httpx.Request) -> httpx.Response:
        assert request.url.params["groupBy"] == "model" and request.url.params["from"] == "2026-12-01"
        row = {"requests": 1, "errors": 0, "promptTokens": 2, "completionTokens": 3, "totalTokens": 5}
        body = {"from": "2026-12-01", "to": "2026-12-03", "groupBy": "model"}
        if request.url.params.get("nextToken") is None:
            return httpx.Response(200, json=body | {"usage": [row | {"model": "a"}], "nextToken": "n"})
        return httpx.Response(200, json=body | {"usage": [row | {"model": "b"}]})

    lisa, seen = client(pages)
    answer = lisa.usage("2026-12-01", None, "model")
    assert [row.model for row in answer.usage] == ["a", "b"] and answer.nextToken is None and len(seen) == 2
    assert answer.start == "2026-12-01"
