"""The post-deploy smoke test: models listed, one request per InService model, per-model report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from lisa_preflight import smoke
from lisa_stacks.application import StackNames
from lisa_stacks.config import EXAMPLE_CONFIG_PATH, load_config

TOKEN = "lisa_smoke"


def summary(model_id: str, model_type: str, status: str = "InService") -> dict[str, Any]:
    return {
        "modelId": model_id,
        "modelName": model_id,
        "modelType": model_type,
        "modelDescription": "",
        "streaming": False,
        "features": [],
        "status": status,
        "enabled": status == "InService",
        "createdAt": 1,
        "updatedAt": 1,
    }


class Deployment:
    """The admin and serve APIs as the smoke test sees them (recorded answers, one model broken)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        self.requests.append((request.url.host, request.url.path))
        if request.url.path == "/prod/models":
            return httpx.Response(
                200,
                json={
                    "models": [
                        summary("chat", "textgen"),
                        summary("e5", "embedding"),
                        summary("broken", "textgen"),
                        summary("asleep", "textgen", status="Stopped"),
                    ]
                },
            )
        body = json.loads(request.content)
        if body["model"] == "broken":
            return httpx.Response(400, json={"error": {"message": "Invalid model name"}})
        if request.url.path == "/v1/embeddings":
            return httpx.Response(200, json={"data": [{"embedding": [0.1]}]})
        assert body["max_tokens"] == 1
        return httpx.Response(200, json={"choices": [{"message": {"content": "OK"}}]})


def test_every_in_service_model_is_probed_and_reported() -> None:
    deployment = Deployment()
    results = smoke.run_smoke(
        "https://admin.example/prod", "https://serve.example", TOKEN, httpx.MockTransport(deployment)
    )
    assert [result.line() for result in results] == [
        "ok   (models): 4 listed",
        "ok   chat: one completion",
        "ok   e5: one embedding",
        'FAIL broken: one completion: HTTP 400: {"error":{"message":"Invalid model name"}}',
    ]
    assert ("serve.example", "/v1/chat/completions") in deployment.requests
    assert not any("asleep" in path for _, path in deployment.requests)


def test_the_command_exits_non_zero_on_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LISA_TOKEN", TOKEN)
    transport = httpx.MockTransport(Deployment())
    real = smoke.run_smoke
    monkeypatch.setattr(smoke, "run_smoke", lambda a, s, t: real(a, s, t, transport))
    code = smoke.main(["--admin-url", "https://admin.example/prod", "--serve-url", "https://serve.example"])
    assert code == 1 and "FAIL broken" in capsys.readouterr().out
    monkeypatch.delenv("LISA_TOKEN")
    assert smoke.main([]) == 2


def test_the_urls_come_from_the_stack_outputs() -> None:
    names = StackNames.of(load_config(Path(EXAMPLE_CONFIG_PATH)))
    with mock_aws():
        cloudformation = boto3.client("cloudformation")
        for stack, key, url in (
            (names.core, "AdminApiUrl", "https://admin.example/prod/"),
            (names.serve, "ServeUrl", "https://serve.example"),
        ):
            template = {
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": url}},
            }
            cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
        assert smoke.stack_urls(cloudformation, names) == (
            "https://admin.example/prod/",
            "https://serve.example",
        )
