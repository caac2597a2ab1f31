"""The admin API end to end through ``lambda_handler``: moto's DynamoDB, Secrets Manager, Step Functions."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from admin_api import handler
from lisa_contracts.names import MODELS_TABLE_KEY, REGISTRY_VERSION_KEY
from lisa_contracts.settings import AdminApiSettings
from lisa_domain.auth import Principal
from lisa_domain.errors import Forbidden, NotFound
from lisa_domain.registry import ModelRegistry, now
from lisa_domain.schema import CreateModelRequest, ModelRecord, ModelStatus
from local_mode.resources import LocalResources
from tests.support.lambda_state import configure, fresh_admin_api
from tests.support.lisa_payloads import API_KEY, BEDROCK_MODEL, EXTERNAL_MODEL, VLLM_MODEL
from tests.unit.conftest import Workflows
from tests.unit.helpers import ADMIN, USER_A, USER_B, FakeContext, rest_event


def call(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    principal: Principal | None = ADMIN,
    raw_body: str | None = None,
) -> tuple[int, dict[str, Any]]:
    event = rest_event(method, path, body=body, query=query, principal=principal, raw_body=raw_body)
    response = handler.lambda_handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"])


def table_items(resources: LocalResources) -> list[dict[str, Any]]:
    return boto3.client("dynamodb").scan(TableName=resources.models_table, ConsistentRead=True)["Items"]


def model_secrets() -> list[str]:
    return [
        secret["Name"]
        for secret in boto3.client("secretsmanager").list_secrets()["SecretList"]
        if secret["Name"].startswith("lisa/test/models/")
    ]


def assert_nothing_written(resources: LocalResources, workflows: Workflows) -> None:
    assert table_items(resources) == []
    assert workflows.count() == 0
    assert model_secrets() == []


def seed(
    resources: LocalResources,
    model_id: str,
    status: ModelStatus = ModelStatus.IN_SERVICE,
    *,
    body: dict[str, Any] | None = None,
    allowed_groups: list[str] | None = None,
    reason: str | None = None,
) -> None:
    """Put a model straight into the registry in ``status``."""
    fields = dict(body or BEDROCK_MODEL)
    fields.pop("apiKey", None)
    fields["modelId"] = model_id
    if allowed_groups is not None:
        fields["allowedGroups"] = allowed_groups
    timestamp = now()
    ModelRegistry(resources.models_table).create(
        ModelRecord.model_validate(
            {
                **fields,
                "status": status,
                "statusReason": reason,
                "createdAt": timestamp,
                "updatedAt": timestamp,
            }
        )
    )


def differences(sent: Any, returned: Any, path: str = "") -> list[str]:
    """Where ``returned`` does not hold what was ``sent`` (dicts may gain defaulted keys; lists and
    scalars must be equal), as dotted paths."""
    if isinstance(sent, dict):
        if not isinstance(returned, dict):
            return [f"{path or '.'}: {returned!r} is not an object"]
        found: list[str] = []
        for key, value in sent.items():
            where = f"{path}.{key}" if path else key
            found += differences(value, returned[key], where) if key in returned else [f"{where}: missing"]
        return found
    return [] if sent == returned else [f"{path}: sent {sent!r}, returned {returned!r}"]


def test_differences_sees_a_changed_or_missing_nested_value() -> None:
    sent = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert differences(sent, {"a": {"b": 1, "c": [1, 2], "extra": 0}, "d": "x"}) == []
    assert differences(sent, {"a": {"b": 2, "c": [1]}, "d": "x"}) == [
        "a.b: sent 1, returned 2",
        "a.c: sent [1, 2], returned [1]",
    ]
    assert differences(sent, {"a": {"c": [1, 2]}}) == ["a.b: missing", "d: missing"]


def status_of(resources: LocalResources, model_id: str) -> ModelStatus:
    return ModelRegistry(resources.models_table).get(model_id).status


# ---- create ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload", [VLLM_MODEL, BEDROCK_MODEL, EXTERNAL_MODEL], ids=["vllm", "bedrock", "external"]
)
def test_lisa_example_payloads_are_accepted_unchanged(
    resources: LocalResources, workflows: Workflows, payload: dict[str, Any]
) -> None:
    status, body = call("POST", "/models", body=payload)

    assert status == 201, body
    model = body["model"]
    assert model["modelId"] == payload["modelId"]
    assert model["status"] == "Creating"
    assert "apiKey" not in model and "apiKeySecretArn" not in model
    sent = {field: value for field, value in payload.items() if field != "apiKey"}
    assert differences(sent, model) == []  # the nested configs too; only defaults may be added

    stored = ModelRegistry(resources.models_table).get_item(payload["modelId"])
    assert stored["status"] == "Creating"
    assert "apiKey" not in stored

    executions = workflows.executions("create")
    assert len(executions) == 1
    assert executions[0]["input"]["modelId"] == payload["modelId"]
    assert executions[0]["input"]["operation"] == "create"
    assert executions[0]["input"]["selfHosted"] is (payload is VLLM_MODEL)
    assert workflows.executions("update") == [] and workflows.executions("delete") == []

    if "apiKey" in payload:
        arn = stored["apiKeySecretArn"]
        assert boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"] == API_KEY
        assert model_secrets() == [f"lisa/test/models/{payload['modelId']}"]
    else:
        assert "apiKeySecretArn" not in stored
        assert model_secrets() == []
    # The key appears nowhere but in Secrets Manager.
    assert API_KEY not in json.dumps(body)
    assert API_KEY not in json.dumps(table_items(resources))
    assert all(API_KEY not in raw for raw in workflows.raw_inputs())


def test_created_model_can_be_read_back(resources: LocalResources, workflows: Workflows) -> None:
    call("POST", "/models", body=VLLM_MODEL)
    status, body = call("GET", "/models/mistral-7b-instruct")
    assert status == 200
    assert body["model"]["containerConfig"]["environment"] == {"MAX_MODEL_LEN": "8192"}
    assert body["model"]["autoScalingConfig"]["metricConfig"]["targetValue"] == 40


def test_admins_get_the_status_history_in_order_and_others_do_not(
    resources: LocalResources, workflows: Workflows
) -> None:
    call("POST", "/models", body=VLLM_MODEL)
    ModelRegistry(resources.models_table).transition(
        "mistral-7b-instruct",
        allowed_from=[ModelStatus.CREATING],
        to=ModelStatus.IN_SERVICE,
        reason="healthy",
    )
    assert call("PUT", "/models/mistral-7b-instruct", body={"enabled": False})[0] == 200

    status, body = call("GET", "/models/mistral-7b-instruct")

    assert status == 200, body
    history = body["model"]["statusHistory"]
    assert [(entry["status"], entry["reason"]) for entry in history] == [
        ("Creating", None),
        ("InService", "healthy"),
        ("Stopping", None),
    ]
    assert [entry["at"] for entry in history] == sorted(entry["at"] for entry in history)
    status, body = call("GET", "/models/mistral-7b-instruct", principal=USER_A)
    assert status == 200 and "statusHistory" not in body["model"]
    _, listed = call("GET", "/models")
    assert all("statusHistory" not in model for model in listed["models"])


def _with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VLLM_MODEL)
    body.update(changes)
    return body


def _nested(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(VLLM_MODEL)
    *parents, leaf = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    target[leaf] = value
    return body


def _without(*fields: str) -> dict[str, Any]:
    return {key: value for key, value in VLLM_MODEL.items() if key not in fields}


INVALID_CREATES: list[tuple[str, dict[str, Any], str]] = [
    ("model-id-pattern", _with(modelId="Mistral 7B!"), "body.modelId"),
    ("model-id-too-long", _with(modelId="m" * 129), "body.modelId"),
    ("model-id-leading-dash", _with(modelId="-mistral"), "body.modelId"),
    ("model-id-missing", _without("modelId"), "body.modelId"),
    ("empty-model-name", _with(modelName=""), "body.modelName"),
    ("unknown-model-type", _with(modelType="audiogen"), "body.modelType"),
    ("unknown-container", _with(inferenceContainer="triton"), "body.inferenceContainer"),
    ("streaming-yes", _with(streaming="yes"), "body.streaming"),
    (
        "streaming-embedding",
        {"modelId": "e5", "modelName": "bedrock/cohere.embed", "modelType": "embedding", "streaming": True},
        "streaming",
    ),
    ("some-hosting-fields", _without("autoScalingConfig", "containerConfig"), "containerConfig"),
    (
        "only-load-balancer",
        {**BEDROCK_MODEL, "loadBalancerConfig": VLLM_MODEL["loadBalancerConfig"]},
        "loadBalancerConfig",
    ),
    ("unknown-instance-type", _with(instanceType="g5.huge"), "body.instanceType"),
    ("autoscaling-min-gt-max", _nested("autoScalingConfig.minCapacity", 5), "body.autoScalingConfig"),
    ("autoscaling-desired-above", _nested("autoScalingConfig.desiredCapacity", 4), "desiredCapacity"),
    ("autoscaling-zero", _nested("autoScalingConfig.minCapacity", 0), "body.autoScalingConfig.minCapacity"),
    (
        "autoscaling-negative",
        _nested("autoScalingConfig.maxCapacity", -1),
        "body.autoScalingConfig.maxCapacity",
    ),
    ("warmup-too-long", _nested("autoScalingConfig.defaultInstanceWarmup", 3601), "defaultInstanceWarmup"),
    ("health-command-curl", _nested("containerConfig.healthCheckConfig.command", ["curl"]), "command"),
    ("health-command-empty", _nested("containerConfig.healthCheckConfig.command", []), "command"),
    ("health-command-blank", _nested("containerConfig.healthCheckConfig.command", " "), "command"),
    ("env-empty-name", _nested("containerConfig.environment", {"": "x"}), "body.containerConfig.environment"),
    ("image-type", _nested("containerConfig.image.type", "docker"), "body.containerConfig.image.type"),
    ("shared-memory-zero", _nested("containerConfig.sharedMemorySize", 0), "sharedMemorySize"),
    ("lb-path", _nested("loadBalancerConfig.healthCheckConfig.path", "health"), "healthCheckConfig.path"),
    ("unknown-top-level", _with(maxTokens=10), "body.maxTokens"),
    ("unknown-nested", _nested("containerConfig.healthCheckConfig.bogus", 1), "healthCheckConfig.bogus"),
    ("api-key-self-hosted", _with(apiKey=API_KEY), "apiKey"),
    ("api-key-empty", {**EXTERNAL_MODEL, "apiKey": ""}, "body.apiKey"),
    ("allowed-groups-empty-name", {**BEDROCK_MODEL, "allowedGroups": [""]}, "body.allowedGroups"),
]


@pytest.mark.parametrize(
    ("body", "field"), [case[1:] for case in INVALID_CREATES], ids=[c[0] for c in INVALID_CREATES]
)
def test_invalid_create_names_the_field_and_writes_nothing(
    resources: LocalResources, workflows: Workflows, body: dict[str, Any], field: str
) -> None:
    status, answer = call("POST", "/models", body=body)

    assert status == 422, answer
    assert answer["statusCode"] == 422
    assert field in answer["message"]
    assert all(set(error) == {"field", "message"} for error in answer["errors"])
    assert API_KEY not in json.dumps(answer)  # invalid input is never echoed
    assert_nothing_written(resources, workflows)


@pytest.mark.parametrize("raw", ["", "{not json", "[]", "null"], ids=["empty", "malformed", "array", "null"])
def test_unparseable_body_is_rejected(resources: LocalResources, workflows: Workflows, raw: str) -> None:
    status, answer = call("POST", "/models", raw_body=raw)
    assert status == 422
    assert "body" in answer["message"]
    assert_nothing_written(resources, workflows)


def test_duplicate_create_is_409(resources: LocalResources, workflows: Workflows) -> None:
    assert call("POST", "/models", body=EXTERNAL_MODEL)[0] == 201
    arn = ModelRegistry(resources.models_table).get_item("gpt-4o-mini")["apiKeySecretArn"]

    status, answer = call("POST", "/models", body={**EXTERNAL_MODEL, "apiKey": "sk-other"})

    assert status == 409
    assert answer == {"message": "model 'gpt-4o-mini' already exists", "statusCode": 409}
    assert len(workflows.executions("create")) == 1
    # The first model's key is untouched, and no second secret exists.
    assert boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"] == API_KEY
    assert model_secrets() == ["lisa/test/models/gpt-4o-mini"]


def test_record_conflict_after_secret_removes_the_secret(
    resources: LocalResources, workflows: Workflows, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the pre-check cannot see: the conditional write fails after the secret was stored."""
    service = handler.service()
    registry = service.registry
    seed(resources, "gpt-4o-mini")
    real_get = registry.get_item
    calls = {"n": 0}

    def first_lookup_misses(model_id: str) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise NotFound(model_id)
        return real_get(model_id)

    monkeypatch.setattr(registry, "get_item", first_lookup_misses)
    status, answer = call("POST", "/models", body=EXTERNAL_MODEL)

    assert status == 409, answer
    assert model_secrets() == []
    assert workflows.count() == 0


def test_failed_workflow_start_undoes_the_create(
    resources: LocalResources,
    workflows: Workflows,
    break_workflow: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_workflow("create")

    status, answer = call("POST", "/models", body=EXTERNAL_MODEL)

    assert status == 502
    assert "create workflow" in answer["message"] and "nothing was created" in answer["message"]
    assert [item[MODELS_TABLE_KEY]["S"] for item in table_items(resources)] == [REGISTRY_VERSION_KEY]
    assert model_secrets() == []
    assert workflows.count() == 0
    # The id is free again once the workflow can start.
    configure(
        monkeypatch,
        AdminApiSettings.build(
            models_table=resources.models_table, create_state_machine_arn=workflows.arns["create"]
        ),
    )
    fresh_admin_api()
    assert call("POST", "/models", body=EXTERNAL_MODEL)[0] == 201


# ---- authorization ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/models", BEDROCK_MODEL),
        ("POST", "/models", {"modelId": "INVALID"}),
        ("PUT", "/models/claude-haiku", {"modelDescription": "x"}),
        ("PUT", "/models/claude-haiku", {"enabled": False}),
        ("DELETE", "/models/claude-haiku", None),
    ],
    ids=["create", "create-invalid", "update", "stop", "delete"],
)
def test_non_admins_may_not_change_models(
    resources: LocalResources, workflows: Workflows, method: str, path: str, body: Any
) -> None:
    seed(resources, "claude-haiku")
    before = table_items(resources)

    status, answer = call(method, path, body=body, principal=USER_A)

    assert status == 403
    assert answer["statusCode"] == 403
    assert table_items(resources) == before
    assert workflows.count() == 0
    assert model_secrets() == []


def test_logic_refuses_non_admins_too(resources: LocalResources, workflows: Workflows) -> None:
    with pytest.raises(Forbidden):
        handler.service().create(USER_A, CreateModelRequest.model_validate(BEDROCK_MODEL))
    assert_nothing_written(resources, workflows)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_missing_authorizer_context_is_401(
    resources: LocalResources, workflows: Workflows, method: str
) -> None:
    status, answer = call(method, "/models", body=BEDROCK_MODEL if method == "POST" else None, principal=None)
    assert status == 401
    assert answer == {"message": "Unauthorized", "statusCode": 401}
    assert_nothing_written(resources, workflows)


# ---- list and get ----------------------------------------------------------------------------------
def test_visibility_follows_allowed_groups(resources: LocalResources, workflows: Workflows) -> None:
    seed(resources, "open")
    seed(resources, "team-a-only", allowed_groups=["team-a"])
    seed(resources, "team-b-only", allowed_groups=["team-b", "team-c"])

    def listed(principal: Principal) -> list[str]:
        status, body = call("GET", "/models", principal=principal)
        assert status == 200
        assert "nextToken" not in body
        return sorted(model["modelId"] for model in body["models"])

    assert listed(ADMIN) == ["open", "team-a-only", "team-b-only"]
    assert listed(USER_A) == ["open", "team-a-only"]
    assert listed(USER_B) == ["open", "team-b-only"]

    assert call("GET", "/models/team-a-only", principal=USER_A)[0] == 200
    status, answer = call("GET", "/models/team-b-only", principal=USER_A)
    assert status == 404
    assert answer == {"message": "model 'team-b-only' not found", "statusCode": 404}
    assert call("GET", "/models/nope", principal=USER_A)[1] == answer | {"message": "model 'nope' not found"}
    assert call("GET", "/models/team-b-only", principal=ADMIN)[0] == 200


def test_get_unknown_model_is_404(resources: LocalResources, workflows: Workflows) -> None:
    assert call("GET", "/models/missing") == (
        404,
        {"message": "model 'missing' not found", "statusCode": 404},
    )


def test_get_rejects_ids_that_cannot_exist(resources: LocalResources, workflows: Workflows) -> None:
    status, answer = call("GET", "/models/%23registry")
    assert status == 422
    assert "path.modelId" in answer["message"]


def _walk(principal: Principal, limit: int) -> tuple[list[str], list[int]]:
    seen: list[str] = []
    sizes: list[int] = []
    query: dict[str, str] = {"limit": str(limit)}
    while True:
        status, body = call("GET", "/models", query=query, principal=principal)
        assert status == 200, body
        sizes.append(len(body["models"]))
        seen.extend(model["modelId"] for model in body["models"])
        if "nextToken" not in body:
            return seen, sizes
        assert isinstance(body["nextToken"], str) and body["nextToken"]
        query = {"limit": str(limit), "nextToken": body["nextToken"]}


@pytest.mark.parametrize(
    ("count", "limit", "sizes"), [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (2, 20, [2]), (0, 5, [0])]
)
def test_pagination_walks_every_model_once(
    resources: LocalResources, workflows: Workflows, count: int, limit: int, sizes: list[int]
) -> None:
    for index in range(count):
        seed(resources, f"m{index}")
    seen, page_sizes = _walk(ADMIN, limit)
    assert sorted(seen) == sorted(f"m{index}" for index in range(count))
    assert page_sizes == sizes


def test_pagination_for_non_admins_fills_pages_with_visible_models(
    resources: LocalResources, workflows: Workflows
) -> None:
    for index in range(12):
        seed(resources, f"m{index:02d}", allowed_groups=["team-a"] if index % 3 else ["team-b"])
    seen, sizes = _walk(USER_A, 3)
    expected = sorted(f"m{index:02d}" for index in range(12) if index % 3)
    assert sorted(seen) == expected
    assert sizes == [3, 3, 2]
    seen_b, sizes_b = _walk(USER_B, 3)
    assert sorted(seen_b) == ["m00", "m03", "m06", "m09"] and sizes_b == [3, 1]


def test_without_limit_every_model_is_listed(resources: LocalResources, workflows: Workflows) -> None:
    """As LISA lists them (lisapy's list_models does not paginate): more than one page of MAX_LIMIT."""
    for index in range(103):
        seed(resources, f"m{index:03d}", allowed_groups=["team-a"] if index % 2 else [])
    status, body = call("GET", "/models")
    assert status == 200
    assert sorted(model["modelId"] for model in body["models"]) == [f"m{i:03d}" for i in range(103)]
    assert "nextToken" not in body
    status, body = call("GET", "/models", principal=USER_B)
    assert status == 200 and "nextToken" not in body
    assert len(body["models"]) == 52  # the models open to everyone


@pytest.mark.parametrize(
    "token", ["not-a-token!", "eyJmb28iOiAxfQ", "W10"], ids=["garbage", "wrong-keys", "list"]
)
def test_bad_next_token_is_400(resources: LocalResources, workflows: Workflows, token: str) -> None:
    status, answer = call("GET", "/models", query={"nextToken": token})
    assert status == 400
    assert answer["message"].startswith("nextToken:")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_bad_limit_is_rejected(resources: LocalResources, workflows: Workflows, limit: str) -> None:
    status, answer = call("GET", "/models", query={"limit": limit})
    assert status == 422
    assert "query.limit" in answer["message"]


def test_unknown_route_is_404(resources: LocalResources, workflows: Workflows) -> None:
    status, answer = call("GET", "/nothing-here")
    assert status == 404
    assert answer["statusCode"] == 404


# ---- update (update, stop, start) ------------------------------------------------------------------
def test_update_moves_to_updating_and_passes_the_changes(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, "mistral", body=VLLM_MODEL)
    changes = {
        "modelDescription": "Mistral 7B",
        "allowedGroups": ["team-a"],
        "autoScalingInstanceConfig": {"minCapacity": 2, "maxCapacity": 3},
        "containerConfig": {
            "environment": {"MAX_MODEL_LEN": "LISA_MARKED_FOR_DELETION"},
            "healthCheckCommand": "curl -f x",
        },
    }

    status, body = call("PUT", "/models/mistral", body=changes)

    assert status == 200, body
    assert body["model"]["status"] == "Updating"
    assert status_of(resources, "mistral") == ModelStatus.UPDATING
    [execution] = workflows.executions("update")
    sent = execution["input"]
    assert sent["modelId"] == "mistral" and sent["operation"] == "update"
    assert sent["action"] == "update" and sent["previousStatus"] == "InService"
    assert sent["changes"]["modelDescription"] == "Mistral 7B"
    assert sent["changes"]["autoScalingInstanceConfig"] == {"minCapacity": 2, "maxCapacity": 3}
    assert sent["changes"]["containerConfig"]["healthCheckCommand"] == ["CMD-SHELL", "curl -f x"]


def test_stop_and_start(resources: LocalResources, workflows: Workflows) -> None:
    seed(resources, "running", body=VLLM_MODEL)
    seed(resources, "stopped", ModelStatus.STOPPED, body=VLLM_MODEL)

    status, body = call("PUT", "/models/running", body={"enabled": False})
    assert (status, body["model"]["status"]) == (200, "Stopping")
    status, body = call("PUT", "/models/stopped", body={"enabled": True})
    assert (status, body["model"]["status"]) == (200, "Starting")

    actions = sorted(execution["input"]["action"] for execution in workflows.executions("update"))
    assert actions == ["start", "stop"]


def test_updates_from_stopped_are_allowed(resources: LocalResources, workflows: Workflows) -> None:
    seed(resources, "stopped", ModelStatus.STOPPED)
    status, body = call("PUT", "/models/stopped", body={"modelDescription": "later"})
    assert (status, body["model"]["status"]) == (200, "Updating")
    assert workflows.executions("update")[0]["input"]["previousStatus"] == "Stopped"


@pytest.mark.parametrize(
    ("current", "change"),
    [
        (ModelStatus.STOPPED, {"enabled": False}),
        (ModelStatus.IN_SERVICE, {"enabled": True}),
        (ModelStatus.CREATING, {"modelDescription": "x"}),
        (ModelStatus.UPDATING, {"modelDescription": "x"}),
        (ModelStatus.FAILED, {"modelDescription": "x"}),
        (ModelStatus.FAILED, {"enabled": True}),
        (ModelStatus.DELETING, {"enabled": False}),
        (ModelStatus.STARTING, {"enabled": False}),
    ],
)
def test_update_from_wrong_state_is_409(
    resources: LocalResources, workflows: Workflows, current: ModelStatus, change: dict[str, Any]
) -> None:
    seed(resources, "m1", current)
    before = table_items(resources)

    status, answer = call("PUT", "/models/m1", body=change)

    assert status == 409, answer
    assert f"is {current.value}" in answer["message"]
    assert table_items(resources) == before
    assert workflows.count() == 0


INVALID_UPDATES: list[tuple[str, dict[str, Any], str]] = [
    ("empty", {}, "at least one field"),
    ("all-null", {"modelDescription": None}, "at least one field"),
    (
        "enabled-with-autoscaling",
        {"enabled": True, "autoScalingInstanceConfig": {"minCapacity": 1}},
        "enabled",
    ),
    ("enabled-string", {"enabled": "false"}, "body.enabled"),
    ("streaming-string", {"streaming": "yes"}, "body.streaming"),
    ("unknown-field", {"instanceType": "g5.xlarge"}, "body.instanceType"),
    ("min-gt-max", {"autoScalingInstanceConfig": {"minCapacity": 3, "maxCapacity": 2}}, "minCapacity"),
    (
        "zero-capacity",
        {"autoScalingInstanceConfig": {"maxCapacity": 0}},
        "autoScalingInstanceConfig.maxCapacity",
    ),
    ("bad-health-command", {"containerConfig": {"healthCheckCommand": ["curl"]}}, "healthCheckCommand"),
    ("env-empty-name", {"containerConfig": {"environment": {" ": "x"}}}, "containerConfig.environment"),
    ("unknown-nested", {"containerConfig": {"image": "x"}}, "containerConfig.image"),
]


@pytest.mark.parametrize(
    ("change", "field"), [case[1:] for case in INVALID_UPDATES], ids=[c[0] for c in INVALID_UPDATES]
)
def test_invalid_update_names_the_field_and_writes_nothing(
    resources: LocalResources, workflows: Workflows, change: dict[str, Any], field: str
) -> None:
    seed(resources, "mistral", body=VLLM_MODEL)
    before = table_items(resources)

    status, answer = call("PUT", "/models/mistral", body=change)

    assert status == 422, answer
    assert field in answer["message"]
    assert table_items(resources) == before
    assert workflows.count() == 0


@pytest.mark.parametrize(
    ("model", "change", "field"),
    [
        (BEDROCK_MODEL, {"autoScalingInstanceConfig": {"minCapacity": 2}}, "autoScalingInstanceConfig"),
        (BEDROCK_MODEL, {"containerConfig": {"sharedMemorySize": 1024}}, "containerConfig"),
        (
            {"modelId": "e5", "modelName": "bedrock/cohere.embed", "modelType": "embedding"},
            {"streaming": True},
            "streaming",
        ),
        (VLLM_MODEL, {"autoScalingInstanceConfig": {"minCapacity": 4}}, "autoScalingInstanceConfig"),
        (VLLM_MODEL, {"autoScalingInstanceConfig": {"desiredCapacity": 9}}, "autoScalingInstanceConfig"),
    ],
    ids=[
        "autoscaling-not-self-hosted",
        "container-not-self-hosted",
        "streaming-embedding",
        "min-above-max",
        "desired",
    ],
)
def test_update_rule_violations_are_400(
    resources: LocalResources, workflows: Workflows, model: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    seed(resources, "m1", body=model)
    before = table_items(resources)

    status, answer = call("PUT", "/models/m1", body=change)

    assert status == 400, answer
    assert answer["message"].startswith(f"{field}:")
    assert table_items(resources) == before
    assert workflows.count() == 0


def test_update_unknown_model_is_404(resources: LocalResources, workflows: Workflows) -> None:
    assert call("PUT", "/models/ghost", body={"enabled": False})[0] == 404
    assert_nothing_written(resources, workflows)


def test_failed_update_start_reverts_the_status(
    resources: LocalResources, workflows: Workflows, break_workflow: Callable[[str], None]
) -> None:
    seed(resources, "running")
    break_workflow("update")

    status, answer = call("PUT", "/models/running", body={"enabled": False})

    assert status == 502
    assert "update workflow" in answer["message"]
    assert status_of(resources, "running") == ModelStatus.IN_SERVICE
    assert workflows.count() == 0


# ---- delete ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("current", [ModelStatus.IN_SERVICE, ModelStatus.STOPPED, ModelStatus.FAILED])
def test_delete_starts_the_delete_workflow(
    resources: LocalResources, workflows: Workflows, current: ModelStatus
) -> None:
    seed(resources, "m1", current, reason="boom" if current == ModelStatus.FAILED else None)

    status, body = call("DELETE", "/models/m1")

    assert status == 200
    assert body["model"]["status"] == "Deleting"
    assert status_of(resources, "m1") == ModelStatus.DELETING
    [execution] = workflows.executions("delete")
    assert execution["input"]["modelId"] == "m1"
    assert execution["input"]["operation"] == "delete"
    assert execution["input"]["previousStatus"] == current.value


@pytest.mark.parametrize(
    "current",
    [
        ModelStatus.CREATING,
        ModelStatus.UPDATING,
        ModelStatus.STOPPING,
        ModelStatus.STARTING,
        ModelStatus.DELETING,
    ],
)
def test_delete_from_transient_state_is_409(
    resources: LocalResources, workflows: Workflows, current: ModelStatus
) -> None:
    seed(resources, "m1", current)
    before = table_items(resources)
    status, answer = call("DELETE", "/models/m1")
    assert status == 409
    assert f"is {current.value}" in answer["message"]
    assert table_items(resources) == before
    assert workflows.count() == 0


def test_delete_unknown_model_is_404(resources: LocalResources, workflows: Workflows) -> None:
    assert call("DELETE", "/models/ghost") == (404, {"message": "model 'ghost' not found", "statusCode": 404})


def test_failed_delete_start_reverts_the_status(
    resources: LocalResources, workflows: Workflows, break_workflow: Callable[[str], None]
) -> None:
    seed(resources, "broken", ModelStatus.FAILED, reason="stack failed")
    break_workflow("delete")

    status, answer = call("DELETE", "/models/broken")

    assert status == 502
    assert "delete workflow" in answer["message"]
    record = ModelRegistry(resources.models_table).get("broken")
    assert (record.status, record.statusReason) == (ModelStatus.FAILED, "stack failed")


def test_second_delete_is_409(resources: LocalResources, workflows: Workflows) -> None:
    seed(resources, "m1")
    assert call("DELETE", "/models/m1")[0] == 200
    assert call("DELETE", "/models/m1")[0] == 409
    assert len(workflows.executions("delete")) == 1


@pytest.mark.parametrize(
    ("method", "body"), [("DELETE", None), ("PUT", {"enabled": False}), ("PUT", {"modelDescription": "x"})]
)
def test_losing_a_race_is_409_and_starts_nothing(
    resources: LocalResources,
    workflows: Workflows,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    body: dict[str, Any] | None,
) -> None:
    """Another admin changes the model between our read and our conditional write (decision 7)."""
    seed(resources, "m1")
    registry = handler.service().registry
    stale = registry.get("m1")
    registry.transition("m1", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.DELETING)
    monkeypatch.setattr(registry, "get", lambda model_id: stale)

    status, answer = call(method, "/models/m1", body=body)

    assert status == 409, answer
    assert "is Deleting" in answer["message"]
    assert status_of(resources, "m1") == ModelStatus.DELETING
    assert workflows.count() == 0
