"""Issue 10 hardening of the registry, the admin model routes and the workflow steps (items 4, 6,
10, 11 and 13): transient transaction cancellations, the non-admin view, container secrets,
malformed records, the modelUrl policy and immediate access reductions."""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from admin_api.model_url import ModelUrlPolicy
from admin_api.models import narrowed_groups
from lisa_contracts.settings import AdminApiSettings
from lisa_domain.errors import Conflict, Unavailable, ValidationFailed
from lisa_domain.registry import LITELLM_PARAMS, WRITE_ATTEMPTS, ModelRegistry
from lisa_domain.schema import SUMMARY_FIELDS, ModelRecord, ModelStatus
from lisa_domain.secrets import ModelSecrets
from local_mode.resources import LocalResources
from tests.support.lambda_state import configure, fresh_admin_api
from tests.support.lisa_payloads import BEDROCK_MODEL, EXTERNAL_MODEL, VLLM_MODEL
from tests.unit.conftest import Workflows
from tests.unit.helpers import ADMIN, USER_A, USER_B
from tests.unit.test_admin_api import assert_nothing_written, call, seed, table_items
from workflow_steps import failure
from workflow_steps.common import StepError, TransientStepError
from workflow_steps.handler import run_step
from workflow_steps.hosting.task_definition import task_definition_request
from workflow_steps.services import Services
from workflow_steps.state import ExecutionState

DEFINITIONS = pathlib.Path(__file__).resolve().parents[2] / "lambdas" / "workflow_steps" / "definitions"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lisa/test/models/shared/hf-token-AbCdEf"


# ---- item 4: transient cancellations are retried, real conflicts are not -------------------------
def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class FlakyClient:
    """The real (moto) client, whose first ``failures`` transactions are cancelled with ``error``."""

    def __init__(self, error: ClientError, failures: int) -> None:
        self._real = boto3.client("dynamodb")
        self._error = error
        self.failures = failures
        self.attempts = 0

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self._error
        return self._real.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def flaky_registry(
    resources: LocalResources, error: ClientError, failures: int
) -> tuple[ModelRegistry, FlakyClient, list[float]]:
    client, sleeps = FlakyClient(error, failures), list[float]()
    return ModelRegistry(resources.models_table, client, sleep=sleeps.append), client, sleeps


@pytest.mark.parametrize(
    "error",
    [
        cancelled("None", "TransactionConflict"),
        cancelled("ThrottlingError", "None"),
        cancelled("None", "ProvisionedThroughputExceeded"),
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems"),
    ],
    ids=["transaction-conflict", "throttling", "throughput", "throttled-call"],
)
def test_a_transient_cancellation_is_retried_with_jitter(
    resources: LocalResources, error: ClientError
) -> None:
    seed(resources, "m1")
    registry, client, sleeps = flaky_registry(resources, error, failures=2)
    record = registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.UPDATING)
    assert record.status == ModelStatus.UPDATING
    assert client.attempts == 3
    assert len(sleeps) == 2 and all(0 <= pause <= 1.0 for pause in sleeps)


def test_a_failed_condition_is_a_conflict_at_once_even_with_a_concurrent_cancellation(
    resources: LocalResources,
) -> None:
    seed(resources, "m1", ModelStatus.STOPPED)
    registry, client, sleeps = flaky_registry(
        resources, cancelled("ConditionalCheckFailed", "TransactionConflict"), 1
    )
    with pytest.raises(Conflict, match="is Stopped"):
        registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.UPDATING)
    assert client.attempts == 1 and sleeps == []


def test_lasting_contention_ends_in_unavailable_after_bounded_attempts_and_writes_nothing(
    resources: LocalResources,
) -> None:
    seed(resources, "m1")
    registry, client, sleeps = flaky_registry(resources, cancelled("None", "TransactionConflict"), 1000)
    with pytest.raises(Unavailable, match="nothing was changed"):
        registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.UPDATING)
    assert client.attempts == WRITE_ATTEMPTS and len(sleeps) == WRITE_ATTEMPTS - 1
    assert ModelRegistry(resources.models_table).get("m1").status == ModelStatus.IN_SERVICE


def test_another_cancellation_reason_is_not_swallowed(resources: LocalResources) -> None:
    seed(resources, "m1")
    registry, client, _ = flaky_registry(resources, cancelled("None", "ValidationError"), 1)
    with pytest.raises(ClientError):
        registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.UPDATING)
    assert client.attempts == 1


class BusyRegistry(ModelRegistry):
    def get(self, model_id: str) -> ModelRecord:
        raise Unavailable("the registry stayed busy")


def test_a_step_reports_a_transient_failure_under_the_name_the_state_machines_retry(
    resources: LocalResources,
) -> None:
    state = ExecutionState(modelId="m1", operation="create")
    busy = Services(BusyRegistry(resources.models_table), ModelSecrets("lisa/test/models/"))
    with pytest.raises(TransientStepError, match="registry stayed busy"):
        run_step("StartCreate", state, busy)
    normal = Services(ModelRegistry(resources.models_table), ModelSecrets("lisa/test/models/"))
    with pytest.raises(StepError) as raised:
        run_step("StartCreate", state, normal)  # the model does not exist: not transient
    assert not isinstance(raised.value, TransientStepError)


@pytest.mark.parametrize("path", sorted(DEFINITIONS.glob("*.asl.json")), ids=lambda path: path.name)
def test_every_task_state_retries_transient_step_errors_with_jitter_and_a_bound(path: pathlib.Path) -> None:
    states = json.loads(path.read_text())["States"]
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
    assert tasks
    for name, state in tasks.items():
        retries = [retry for retry in state["Retry"] if "TransientStepError" in retry["ErrorEquals"]]
        assert len(retries) == 1, name
        assert retries[0]["JitterStrategy"] == "FULL" and 1 <= retries[0]["MaxAttempts"] <= 6, name
        assert "Lambda.TooManyRequestsException" in state["Retry"][0]["ErrorEquals"], name


def updating_model(resources: LocalResources, body: dict[str, Any]) -> ModelRegistry:
    """A served model (litellmParams set) that the admin API moved to Updating."""
    seed(resources, "m1", body=body)
    registry = ModelRegistry(resources.models_table)
    registry.register("m1", {"model": "bedrock/x"}, allowed_from=[ModelStatus.IN_SERVICE])
    registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.UPDATING)
    return registry


def test_a_failed_metadata_only_update_puts_the_model_back_in_service_still_served(
    resources: LocalResources,
) -> None:
    registry = updating_model(resources, BEDROCK_MODEL)
    state = ExecutionState(
        modelId="m1",
        operation="update",
        action="update",
        previousStatus=ModelStatus.IN_SERVICE,
        changes={"modelDescription": "new"},
        error={"Error": "StepError", "Cause": "saving the update: boom"},
    )
    failure.mark_failed(Services(registry, ModelSecrets("lisa/test/models/")), state)
    item = registry.get_item("m1")
    assert item["status"] == ModelStatus.IN_SERVICE
    assert item[LITELLM_PARAMS] == {"model": "bedrock/x"}
    assert "boom" in item["statusReason"] and "InService again" in item["statusReason"]
    assert item["modelDescription"] == ""


def test_a_failed_update_that_touched_infrastructure_still_ends_failed(resources: LocalResources) -> None:
    registry = updating_model(resources, VLLM_MODEL)
    state = ExecutionState(
        modelId="m1",
        operation="update",
        action="update",
        previousStatus=ModelStatus.IN_SERVICE,
        changes={"containerConfig": {"environment": {"A": "1"}}},
        error={"Error": "StepError", "Cause": "boom"},
    )
    failure.mark_failed(Services(registry, ModelSecrets("lisa/test/models/")), state)
    item = registry.get_item("m1")
    assert item["status"] == ModelStatus.FAILED and LITELLM_PARAMS not in item


# ---- item 6: the non-admin view and container secrets ---------------------------------------------
def test_non_admins_see_a_summary_and_admins_the_full_record(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "vllm", body=VLLM_MODEL, allowed_groups=["team-a"], reason="was restarted")
    for path in ("/models", "/models/vllm"):
        status, body = call("GET", path, principal=USER_A)
        assert status == 200
        shown = body["models"][0] if "models" in body else body["model"]
        assert set(shown) == set(SUMMARY_FIELDS)
        status, body = call("GET", path, principal=ADMIN)
        shown = body["models"][0] if "models" in body else body["model"]
        assert (
            shown["containerConfig"]["image"]["baseImage"]
            == VLLM_MODEL["containerConfig"]["image"]["baseImage"]
        )
        assert shown["instanceType"] and shown["statusReason"] == "was restarted"


def with_secrets(secrets: dict[str, str], **environment: str) -> dict[str, Any]:
    body = copy.deepcopy(VLLM_MODEL)
    body["containerConfig"]["secrets"] = secrets
    body["containerConfig"]["environment"].update(environment)
    return body


def test_container_secrets_reach_the_task_definition_as_references_only(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, body = call("POST", "/models", body=with_secrets({"HF_TOKEN": SECRET_ARN}))
    assert status == 201, body
    record = ModelRegistry(resources.models_table).get(VLLM_MODEL["modelId"])
    assert record.containerConfig is not None and record.containerConfig.secrets == {"HF_TOKEN": SECRET_ARN}
    request = task_definition_request(record, family="f", execution_role_arn="e", task_role_arn="t")
    container = request["containerDefinitions"][0]
    assert container["secrets"] == [{"name": "HF_TOKEN", "valueFrom": SECRET_ARN}]
    assert "HF_TOKEN" not in {variable["name"] for variable in container["environment"]}
    assert workflows.count() == 1 and "HF_TOKEN" not in workflows.raw_inputs()[0]


@pytest.mark.parametrize(
    ("secrets", "environment", "status", "message"),
    [
        ({"1BAD": SECRET_ARN}, {}, 422, "not a valid environment variable name"),
        ({"HF_TOKEN": "hf_plaintextvalue"}, {}, 422, "Secrets Manager secret ARN"),
        ({"HF_TOKEN": SECRET_ARN.replace("secretsmanager", "ssm")}, {}, 422, "Secrets Manager secret ARN"),
        ({"HF_TOKEN": SECRET_ARN}, {"HF_TOKEN": "x"}, 422, "also set in environment"),
        (
            {"HF_TOKEN": SECRET_ARN.replace("lisa/test/models/", "other/")},
            {},
            400,
            "containerConfig.secrets.HF_TOKEN",
        ),
        # a model's API-key secret is named <prefix><modelId>: never a container's secret
        ({"HF_TOKEN": SECRET_ARN.replace("shared/hf-token", "gpt-4o-mini")}, {}, 400, "path with '/'"),
    ],
    ids=[
        "env-name",
        "plain-value",
        "not-secrets-manager",
        "also-in-environment",
        "outside-prefix",
        "api-key-name",
    ],
)
def test_invalid_container_secrets_are_rejected_naming_the_field_and_nothing_is_written(
    resources: LocalResources,
    workflows: Workflows,
    secrets: dict[str, str],
    environment: dict[str, str],
    status: int,
    message: str,
) -> None:
    answered, body = call("POST", "/models", body=with_secrets(secrets, **environment))
    assert answered == status, body
    assert "secrets" in body["message"] and message in body["message"]
    assert_nothing_written(resources, workflows)


def test_an_update_may_not_set_a_name_both_as_variable_and_secret(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "vllm", body=with_secrets({"HF_TOKEN": SECRET_ARN}))
    status, body = call(
        "PUT", "/models/vllm", body={"containerConfig": {"environment": {"HF_TOKEN": "plain"}}}
    )
    assert status == 400 and "containerConfig" in body["message"] and "HF_TOKEN" in body["message"]
    status, body = call(
        "PUT",
        "/models/vllm",
        body={"containerConfig": {"secrets": {"HF_TOKEN": SECRET_ARN.replace("lisa/test/", "x/")}}},
    )
    assert status == 400 and "containerConfig.secrets.HF_TOKEN" in body["message"]
    assert (
        workflows.count() == 0
        and ModelRegistry(resources.models_table).get("vllm").status == ModelStatus.IN_SERVICE
    )


# ---- item 10: one malformed record does not block the registry ------------------------------------
def test_a_malformed_record_is_skipped_and_counted_not_fatal(
    resources: LocalResources, workflows: Workflows, monkeypatch: pytest.MonkeyPatch
) -> None:
    from admin_api import handler

    counted: list[tuple[str, float]] = []
    monkeypatch.setattr(
        handler.metrics, "add_metric", lambda name, unit, value, **_: counted.append((name, value))
    )
    seed(resources, "good")
    ModelRegistry(resources.models_table).register(
        "good", {"model": "bedrock/x"}, allowed_from=[ModelStatus.IN_SERVICE]
    )
    boto3.client("dynamodb").put_item(
        TableName=resources.models_table,
        Item={
            "modelId": {"S": "bad"},
            "status": {"S": "Exploded"},
            LITELLM_PARAMS: {"M": {"model": {"S": "x"}}},
        },
    )
    status, body = call("GET", "/models")
    assert status == 200 and [model["modelId"] for model in body["models"]] == ["good"]
    assert ("MalformedModelRecords", 1) in counted
    assert [served.record.modelId for served in ModelRegistry(resources.models_table).served_models()] == [
        "good"
    ]


# ---- item 11: modelUrl policy ---------------------------------------------------------------------
def resolving(*addresses: str) -> ModelUrlPolicy:
    return ModelUrlPolicy(resolver=lambda host, port: list(addresses))


@pytest.mark.parametrize(
    ("url", "addresses", "message"),
    [
        ("http://api.example.com/v1", ["93.184.216.34"], "scheme must be https"),
        ("https://user:pw@api.example.com", ["93.184.216.34"], "credentials"),
        ("https://metadata", ["169.254.169.254"], "link-local"),
        ("https://internal", ["10.1.2.3"], "private"),
        ("https://mapped", ["::ffff:127.0.0.1"], "loopback"),
        ("https://zero", ["0.0.0.0"], "unspecified"),
        ("https://cgnat", ["100.64.0.1"], "non-public"),
        ("https://mixed", ["93.184.216.34", "192.168.0.1"], "private"),
        ("https://", [], "no host"),
    ],
)
def test_a_model_url_must_be_https_and_public(url: str, addresses: list[str], message: str) -> None:
    with pytest.raises(ValidationFailed, match=f"^modelUrl: .*{message}"):
        resolving(*addresses).check(url)


def test_a_public_https_model_url_passes_and_the_config_can_open_http_and_networks() -> None:
    resolving("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946").check("https://api.example.com/v1")
    local = ModelUrlPolicy.from_config(True, "127.0.0.0/8,::1/128", lambda host, port: ["127.0.0.1", "::1"])
    local.check("http://localhost:8000/v1")
    with pytest.raises(ValidationFailed, match="private"):
        ModelUrlPolicy.from_config(True, "127.0.0.0/8", lambda host, port: ["10.0.0.1"]).check("http://x")


def test_the_real_resolver_is_used_and_an_unresolvable_host_is_rejected() -> None:
    with pytest.raises(ValidationFailed, match="loopback"):
        ModelUrlPolicy().check("https://localhost/v1")
    with pytest.raises(ValidationFailed, match="does not resolve"):
        ModelUrlPolicy().check("https://no-such-host.invalid/v1")


def test_the_admin_api_rejects_a_loopback_model_url_unless_configured(
    resources: LocalResources, workflows: Workflows, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = {**EXTERNAL_MODEL, "modelUrl": "http://127.0.0.1:9/v1"}
    status, body = call("POST", "/models", body=payload)
    assert status == 400 and body["message"].startswith("modelUrl: ")
    assert_nothing_written(resources, workflows)
    configure(
        monkeypatch,
        AdminApiSettings.build(
            models_table=resources.models_table,
            model_url_allow_http=True,
            model_url_allowed_cidrs="127.0.0.0/8,::1/128",
        ),
    )

    fresh_admin_api()
    status, body = call("POST", "/models", body=payload)
    assert status == 201, body


# ---- item 13: access reductions apply at once -----------------------------------------------------
@pytest.mark.parametrize(
    ("current", "requested", "at_once"),
    [
        (["a", "b"], ["b"], ["b"]),
        ([], ["a"], ["a"]),
        (["a"], ["a", "b"], None),
        (["a"], [], None),
        (["a", "b"], ["b", "c"], ["b"]),
        (["a"], ["c"], ["c"]),
    ],
)
def test_narrowed_groups(current: list[str], requested: list[str], at_once: list[str] | None) -> None:
    assert narrowed_groups(current, requested) == at_once


def test_removing_a_group_takes_effect_with_the_move_to_updating(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "m1", allowed_groups=["team-a", "team-b"])
    status, body = call("PUT", "/models/m1", body={"allowedGroups": ["team-b"]})
    assert status == 200 and body["model"]["status"] == "Updating"
    record = ModelRegistry(resources.models_table).get("m1")
    assert record.allowedGroups == ["team-b"] and record.status == ModelStatus.UPDATING
    assert call("GET", "/models/m1", principal=USER_A)[0] == 404
    assert call("GET", "/models/m1", principal=USER_B)[0] == 200


def test_adding_a_group_waits_for_the_workflow(resources: LocalResources, workflows: Workflows) -> None:
    seed(resources, "m1", allowed_groups=["team-b"])
    status, _ = call("PUT", "/models/m1", body={"allowedGroups": ["team-a", "team-b"]})
    assert status == 200
    assert ModelRegistry(resources.models_table).get("m1").allowedGroups == ["team-b"]
    assert workflows.executions("update")[0]["input"]["changes"]["allowedGroups"] == ["team-a", "team-b"]


def test_a_reduction_is_undone_with_the_status_when_the_workflow_cannot_start(
    resources: LocalResources, workflows: Workflows, break_workflow: Any
) -> None:
    seed(resources, "m1", allowed_groups=["team-a", "team-b"])
    break_workflow("update")
    status, _ = call("PUT", "/models/m1", body={"allowedGroups": ["team-b"]})
    assert status == 502
    record = ModelRegistry(resources.models_table).get("m1")
    assert record.allowedGroups == ["team-a", "team-b"] and record.status == ModelStatus.IN_SERVICE
    assert len(table_items(resources)) == 2  # the model and the version item
