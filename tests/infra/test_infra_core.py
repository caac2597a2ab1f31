"""Core stack: tables, management key, admin API, workflows, Lambda environment."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from lisa_contracts.names import ADMIN_ROUTES, TOKEN_INDEXES, TOKENS_TABLE_KEY
from lisa_stacks.application import Synthesized


def _resources(template: Template, type_: str) -> dict[str, Any]:
    return dict(template.find_resources(type_))


def _function_env(template: Template, handler: str) -> dict[str, Any]:
    matches = [
        r["Properties"]
        for r in _resources(template, "AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, handler
    return matches[0]["Environment"]["Variables"]


def test_tables_are_on_demand_pitr_encrypted_and_retained(core: Template) -> None:
    tables = _resources(core, "AWS::DynamoDB::Table")
    assert len(tables) == 3
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"
        assert table["UpdateReplacePolicy"] == "Retain"
    keys = {t["Properties"]["KeySchema"][0]["AttributeName"] for t in tables.values()}
    assert keys == {"modelId", "tokenHash", "pk"}  # pk: the usage table


def test_tokens_table_indexes(core: Template) -> None:
    core.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": TOKENS_TABLE_KEY, "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": Match.array_with(
                [
                    Match.object_like(
                        {"IndexName": index, "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}]}
                    )
                    for index, key in TOKEN_INDEXES.items()
                ]
            ),
        },
    )


def test_management_key_is_generated_retained_and_rotated(core: Template, synthesized: Synthesized) -> None:
    name = f"lisa/{synthesized.config.deploymentName}/{synthesized.config.stage}/management-key"
    core.has_resource(
        "AWS::SecretsManager::Secret",
        {
            "Properties": Match.object_like({"Name": name, "GenerateSecretString": Match.any_value()}),
            "DeletionPolicy": "Retain",
        },
    )
    core.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    _function_env(core, "key_rotation.handler.lambda_handler")


def test_every_api_method_requires_the_authorizer(core: Template) -> None:
    every = _resources(core, "AWS::ApiGateway::Method")
    # The CORS preflights (the console's origin, lisa_stacks/console.py) are API Gateway's own mock
    # answers: no authorizer, nothing reaches the Lambda.
    preflights = [m["Properties"] for m in every.values() if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert preflights and all(
        p["AuthorizationType"] == "NONE" and p["Integration"]["Type"] == "MOCK" for p in preflights
    )
    methods = {key: m for key, m in every.items() if m["Properties"]["HttpMethod"] != "OPTIONS"}
    assert len(methods) == 19
    authorizers = _resources(core, "AWS::ApiGateway::Authorizer")
    assert len(authorizers) == 1
    (authorizer_id,) = authorizers
    for method in methods.values():
        props = method["Properties"]
        assert props["HttpMethod"] != "OPTIONS"
        assert props["AuthorizationType"] == "CUSTOM"
        assert props["AuthorizerId"] == {"Ref": authorizer_id}
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "RequestValidatorId" in props


def test_authorizer_is_request_type_cached_on_the_authorization_header(core: Template) -> None:
    core.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.Authorization",
            "AuthorizerResultTtlInSeconds": 30,
        },
    )


def test_routes(core: Template) -> None:
    """API Gateway has exactly the admin handler's routes (names.ADMIN_ROUTES), each method behind
    the authorizer."""
    resources = _resources(core, "AWS::ApiGateway::Resource")

    def path(resource_id: str) -> str:
        properties = resources[resource_id]["Properties"]
        parent = properties["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{properties['PathPart']}"

    routes: dict[str, set[str]] = {}
    for method in _resources(core, "AWS::ApiGateway::Method").values():
        properties = method["Properties"]
        if properties["HttpMethod"] == "OPTIONS":
            continue  # CORS preflight (test_every_api_method_requires_the_authorizer)
        assert properties["AuthorizationType"] == "CUSTOM"
        routes.setdefault(path(properties["ResourceId"]["Ref"]), set()).add(properties["HttpMethod"])
    assert routes == {route: set(methods) for route, methods in ADMIN_ROUTES.items()}


def test_stage_logging_throttling_tracing(core: Template, synthesized: Synthesized) -> None:
    throttling = synthesized.config.api.throttling
    core.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "TracingEnabled": True,
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "ThrottlingRateLimit": throttling.rateLimit,
                            "ThrottlingBurstLimit": throttling.burstLimit,
                            "LoggingLevel": "ERROR",
                        }
                    )
                ]
            ),
        },
    )
    responses = {
        r["Properties"]["ResponseType"] for r in _resources(core, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert responses == {"DEFAULT_4XX", "DEFAULT_5XX"}


def test_state_machines_have_timeouts_logging_and_tracing(core: Template, synthesized: Synthesized) -> None:
    import json

    machines = _resources(core, "AWS::StepFunctions::StateMachine")
    assert len(machines) == 3
    for machine in machines.values():
        props = machine["Properties"]
        assert props["LoggingConfiguration"]["Level"] == "ALL"
        assert props["TracingConfiguration"]["Enabled"] is True
        assert "StepFunctionArn" in props["DefinitionSubstitutions"]
        definition = json.loads(props["DefinitionString"])
        assert definition["TimeoutSeconds"] == synthesized.config.workflow.timeoutMinutes * 60


def test_ended_executions_reach_the_step_lambda(core: Template) -> None:
    """Timed-out or aborted executions skip their own Catch; the backstop rule must cover all three."""
    rules = {
        name: rule
        for name, rule in _resources(core, "AWS::Events::Rule").items()
        if "EventPattern" in rule["Properties"]
    }
    assert len(rules) == 1
    props = next(iter(rules.values()))["Properties"]
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert set(pattern["detail"]["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}
    assert len(pattern["detail"]["stateMachineArn"]) == 3
    handler_ids = [
        logical_id
        for logical_id, f in _resources(core, "AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "workflow_steps.handler.lambda_handler"
    ]
    assert props["Targets"][0]["Arn"] == {"Fn::GetAtt": [handler_ids[0], "Arn"]}


def test_lambdas_share_one_asset_and_runtime(core: Template) -> None:
    functions = [
        f["Properties"]
        for f in _resources(core, "AWS::Lambda::Function").values()
        if str(f["Properties"].get("Handler", "")).endswith(".lambda_handler")
    ]
    assert len(functions) == 5
    assert {f["Runtime"] for f in functions} == {"python3.12"}
    assert {f["Architectures"][0] for f in functions} == {"x86_64"}
    assert len({str(f["Code"]) for f in functions}) == 1
    assert all(f["TracingConfig"]["Mode"] == "Active" for f in functions)


def test_lambda_environments(core: Template, synthesized: Synthesized) -> None:
    config = synthesized.config
    admin = _function_env(core, "admin_api.handler.lambda_handler")
    assert {
        "MODELS_TABLE_NAME",
        "TOKENS_TABLE_NAME",
        "ADMIN_GROUP",
        "MODEL_SECRET_PREFIX",
        "CREATE_MODEL_STATE_MACHINE_ARN",
        "UPDATE_MODEL_STATE_MACHINE_ARN",
        "DELETE_MODEL_STATE_MACHINE_ARN",
        "WORKFLOW_POLL_SECONDS",
        "WORKFLOW_MAX_POLLS",
    } <= set(admin)
    assert admin["MODEL_SECRET_PREFIX"] == f"lisa/{config.deploymentName}/{config.stage}/models/"
    authorizer = _function_env(core, "authorizer.handler.lambda_handler")
    assert {"TOKENS_TABLE_NAME", "MANAGEMENT_KEY_SECRET_ARN", "ADMIN_GROUP", "OIDC_ISSUER"} <= set(authorizer)
    steps = _function_env(core, "workflow_steps.handler.lambda_handler")
    assert {
        "MODELS_TABLE_NAME",
        "MODEL_SECRET_PREFIX",
        "MODEL_STACK_TEMPLATE_URL",
        "MODEL_STACK_PREFIX",
        "MODEL_VPC_ID",
        "MODEL_SUBNET_IDS",
        "SERVE_SECURITY_GROUP_ID",
        "MODEL_TASK_EXECUTION_ROLE_ARN",
        "MODEL_TASK_ROLE_ARN",
        "HOSTING_BACKEND",
    } <= set(steps)
    assert steps["HOSTING_BACKEND"] == "ecs"
    assert steps["MODEL_STACK_PREFIX"] == f"{config.prefix}-model-"
    # The template URL points at the S3 asset of the synthesized per-model template.
    url = str(steps["MODEL_STACK_TEMPLATE_URL"])
    model_asset = synthesized.model_assembly.get_stack_by_name(synthesized.names.model_hosting)
    assert "https://s3." in url and ".json" in url
    assert model_asset.template_full_path.endswith(".template.json")


def test_no_secret_values_in_environments(core: Template, serve: Template) -> None:
    for template in (core, serve):
        text = str(template.to_json())
        assert "SecretString" not in text or "GenerateSecretString" in text
        assert "{{resolve:secretsmanager" not in text


def test_vpc_has_flow_logs(core: Template) -> None:
    core.resource_count_is("AWS::EC2::VPC", 1)
    core.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL"})


def test_log_groups_have_retention(core: Template, serve: Template, synthesized: Synthesized) -> None:
    for template in (core, serve):
        for group in _resources(template, "AWS::Logs::LogGroup").values():
            assert group["Properties"]["RetentionInDays"] == synthesized.config.logRetentionDays
