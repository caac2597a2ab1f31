"""A failure injected at each step of create, delete and update ends in Failed, with a reason,
and nothing left behind (no stack, no task definitions, no secret, not registered)."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lisa_domain.registry import LITELLM_PARAMS, ModelRegistry, now
from lisa_domain.schema import CreateModelRequest, ModelRecord, ModelStatus
from lisa_domain.secrets import ModelSecrets
from lisa_domain.workflows import Workflow
from tests.integration.conftest import EXTERNAL_MODEL, VLLM_MODEL, Lisa, fail_once
from workflow_steps import handler
from workflow_steps.hosting import HostingFailed
from workflow_steps.hosting.ecs import EcsHostingBackend

MODEL = "mistral-7b"


def _denied(operation: str) -> ClientError:
    """A failure that does not pass (throttling is transient: the state machines retry it)."""
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, operation)


def assert_failed_and_clean(lisa: Lisa, model_id: str, execution: Any, reason_part: str) -> dict[str, Any]:
    assert execution.status == "FAILED"
    assert "MarkFailed" in execution.states
    item = lisa.item(model_id)
    assert item["status"] == "Failed"
    assert reason_part in item["statusReason"], item["statusReason"]
    assert execution.cause == item["statusReason"]  # the execution's cause is the same sentence
    assert LITELLM_PARAMS not in item
    assert item["statusHistory"][-1]["status"] == "Failed"
    assert lisa.stack(model_id) is None
    assert lisa.task_definitions(model_id) == []
    assert not lisa.secret_exists(model_id)
    assert "Traceback" not in item["statusReason"]
    return item


CREATE_FAILURES = {
    "StartCreate": "reading the model",
    "CreateInfrastructure": "creating the model's task definition and stack",
    "PollCreate": "waiting for the model's stack",
    "PollCreateService": "did not finish within 4 polls",
    "RegisterModel": "registering the model for serving",
}


@pytest.mark.parametrize("step", list(CREATE_FAILURES))
def test_create_failure_at_each_step_cleans_up(
    lisa: Lisa, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    if step == "StartCreate":
        fail_once(monkeypatch, ModelRegistry, "get", _denied("GetItem"))
    elif step == "CreateInfrastructure":  # a real failure: the template is not where the URL points
        monkeypatch.setenv(
            "MODEL_STACK_TEMPLATE_URL", "https://lisa-test-assets.s3.amazonaws.com/missing.json"
        )
    elif step == "PollCreate":
        fail_once(
            monkeypatch,
            EcsHostingBackend,
            "poll_create",
            HostingFailed("stack ended in ROLLBACK_COMPLETE: AutoScalingGroup: vCPU limit exceeded"),
        )
    elif step == "PollCreateService":  # a real failure: the tasks never become healthy (bounded wait)
        monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    else:
        fail_once(monkeypatch, ModelRegistry, "register", _denied("TransactWriteItems"))

    execution = lisa.create(VLLM_MODEL)

    item = assert_failed_and_clean(lisa, MODEL, execution, CREATE_FAILURES[step])
    assert item["statusReason"].startswith("Create failed: ")
    assert [entry["status"] for entry in item["statusHistory"]] == ["Creating", "Failed"]
    # A Failed model can always be deleted.
    assert lisa.delete(MODEL).status == "SUCCEEDED"
    assert lisa.registry.all_items() == []


def test_create_failure_of_an_external_model_deletes_its_secret(
    lisa: Lisa, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_once(monkeypatch, ModelRegistry, "register", _denied("TransactWriteItems"))
    execution = lisa.create(copy.deepcopy(EXTERNAL_MODEL))
    assert_failed_and_clean(lisa, "gpt-4o-mini", execution, "registering the model for serving")


DELETE_FAILURES: dict[str, tuple[Any, str, Exception, str]] = {
    "StartDelete": (ModelRegistry, "deregister", _denied("TransactWriteItems"), "unregistering the model"),
    "DeleteInfrastructure": (
        EcsHostingBackend,
        "start_delete",
        _denied("DeleteStack"),
        "deleting the model's stack",
    ),
    "PollDelete": (
        EcsHostingBackend,
        "poll_delete",
        HostingFailed("stack could not be deleted: TargetGroup: in use"),
        "waiting for the model's stack deletion",
    ),
    "ReleaseInfrastructure": (
        EcsHostingBackend,
        "release",
        _denied("DeregisterTaskDefinition"),
        "deregistering the model's task definitions",
    ),
    "DeleteSecret": (ModelSecrets, "delete", _denied("DeleteSecret"), "deleting the model's secret"),
    "DeleteRecord": (ModelRegistry, "delete", _denied("TransactWriteItems"), "deleting the model record"),
}


@pytest.mark.parametrize("step", list(DELETE_FAILURES))
def test_delete_failure_at_each_step_cleans_up(
    lisa: Lisa, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    assert lisa.create(VLLM_MODEL).status == "SUCCEEDED"
    # A provider-key secret under the model's name, to see it removed too.
    lisa.secrets.store(MODEL, "sk-leftover")
    owner, name, error, reason = DELETE_FAILURES[step]
    fail_once(monkeypatch, owner, name, error)

    execution = lisa.delete(MODEL)

    assert step in execution.states
    item = assert_failed_and_clean(lisa, MODEL, execution, reason)
    assert item["statusReason"].startswith("Delete failed: ")
    assert item["statusReason"].endswith("Delete the model again to retry.")
    assert lisa.delete(MODEL).status == "SUCCEEDED"
    assert lisa.registry.all_items() == []


def test_failed_container_update_reverts_and_marks_failed(
    lisa: Lisa, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lisa.create(VLLM_MODEL).status == "SUCCEEDED"
    (old_arn,) = lisa.task_definitions(MODEL)
    fail_once(
        monkeypatch,
        EcsHostingBackend,
        "poll_update",
        HostingFailed("the update of the stack failed (UPDATE_ROLLBACK_COMPLETE): Service: circuit breaker"),
    )

    execution = lisa.update(MODEL, {"containerConfig": {"environment": {"NEW": "1"}}})

    assert execution.status == "FAILED"
    assert "CleanupUpdate" in execution.states
    item = lisa.item(MODEL)
    assert item["status"] == "Failed" and LITELLM_PARAMS not in item
    assert item["statusReason"].startswith("Update failed: waiting for the model's stack update")
    # The new revision is gone and the stack is back on the old one.
    assert lisa.task_definitions(MODEL) == [old_arn]
    assert lisa.stack_parameters(MODEL)["TaskDefinitionArn"] == old_arn
    assert lisa.delete(MODEL).status == "SUCCEEDED"


def test_timed_out_execution_is_failed_by_the_backstop(lisa: Lisa, monkeypatch: pytest.MonkeyPatch) -> None:
    """An execution that ends without its failure path (timeout, abort): EventBridge -> the handler."""
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    lisa.max_polls = 1000
    lisa.poll_seconds = 1
    record = ModelRecord.model_validate(
        CreateModelRequest.model_validate(VLLM_MODEL).definition().model_dump()
        | {"status": ModelStatus.CREATING, "createdAt": now() - 5, "updatedAt": now() - 5}
    )
    lisa.registry.create(record)
    arn = lisa.starter().start(Workflow.CREATE, MODEL, selfHosted=True)
    sfn = lisa.client("stepfunctions")
    deadline = time.monotonic() + 20
    while lisa.stack(MODEL) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    sfn.stop_execution(executionArn=arn, error="Timeout", cause="simulated")
    described = sfn.describe_execution(executionArn=arn)
    event = {
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "detail": {
            "executionArn": arn,
            "status": "TIMED_OUT",
            "startDate": int(described["startDate"].timestamp() * 1000),
            "input": described["input"],
        },
    }

    assert handler.lambda_handler(event, None) == {"failed": MODEL}
    item = lisa.item(MODEL)
    assert item["status"] == "Failed" and "timed out" in item["statusReason"]
    assert lisa.stack(MODEL) is None
    assert lisa.task_definitions(MODEL) == []
    # A second event (or one for an execution that no longer owns the model) changes nothing.
    assert "ignored" in handler.lambda_handler(event, None)
    assert json.loads(described["input"])["modelId"] == MODEL
