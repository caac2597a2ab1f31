"""The one adapter between moto's Step Functions interpreter and our handlers (decision 4 in docs/architecture.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from local_mode import sfn_lambda_adapter

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:adapter-test"
ROLE = "arn:aws:iam::123456789012:role/adapter-test"
DEFINITION = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": FUNCTION, "Payload": {"step": "Call", "input.$": "$"}},
            "OutputPath": "$.Payload",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Pass", "End": True},
    },
}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event["input"].get("explode"):
        raise ValueError("it broke")
    return {"doubled": event["input"]["n"] * 2, "function": context.function_name}


def run(client: Any, execution_input: dict[str, Any]) -> dict[str, Any]:
    machine = client.create_state_machine(
        name=f"adapter-{time.monotonic_ns()}", definition=json.dumps(DEFINITION), roleArn=ROLE
    )["stateMachineArn"]
    arn = client.start_execution(stateMachineArn=machine, input=json.dumps(execution_input))["executionArn"]
    for _ in range(500):
        described = client.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.01)
    raise AssertionError("execution did not finish")


def check(client: Any) -> None:
    ok = run(client, {"n": 21})
    assert ok["status"] == "SUCCEEDED"
    assert json.loads(ok["output"]) == {"doubled": 42, "function": "adapter-test"}

    failed = run(client, {"explode": True})
    assert failed["status"] == "SUCCEEDED"  # caught
    error = json.loads(failed["output"])["error"]
    assert error["Error"] == "ValueError"
    cause = json.loads(error["Cause"])
    assert cause["errorMessage"] == "it broke" and cause["errorType"] == "ValueError"


def test_in_process_under_mock_aws(aws: None) -> None:
    with sfn_lambda_adapter.in_process_lambdas({FUNCTION: handler}):
        check(boto3.client("stepfunctions"))


def test_unregistered_functions_keep_motos_echo(aws: None) -> None:
    sfn_lambda_adapter.install()
    result = boto3.client("lambda").invoke(FunctionName="not-ours", Payload=b'{"a": 1}')
    assert json.loads(result["Payload"].read()) == {"a": 1}


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("MOTO_PORT", str(port))  # where the interpreter sends lambda:Invoke
    url = f"http://{host}:{port}"
    requests.post(
        f"{url}/moto-api/config",
        json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
        timeout=5,
    )
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=5)
        server.stop()


def test_with_a_threaded_moto_server(moto_server: str) -> None:
    with sfn_lambda_adapter.in_process_lambdas({FUNCTION: handler}):
        check(boto3.client("stepfunctions", endpoint_url=moto_server))


def test_function_name_of() -> None:
    assert sfn_lambda_adapter.function_name_of(FUNCTION) == "adapter-test"
    assert sfn_lambda_adapter.function_name_of(FUNCTION + ":live") == "adapter-test"
    assert sfn_lambda_adapter.function_name_of("plain") == "plain"
