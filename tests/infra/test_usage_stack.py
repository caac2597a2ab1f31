"""The usage table (core stack), its grants, the serve app's usage settings and the usage dashboard."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from lisa_contracts.names import USAGE_TABLE_EXPIRY_ATTRIBUTE
from lisa_stacks.usage import ADMIN_READ_ACTIONS, SERVE_ACTIONS


def _usage_table(core: Template) -> tuple[str, Any]:
    tables = core.find_resources(
        "AWS::DynamoDB::Table",
        {
            "Properties": {
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ]
            }
        },
    )
    assert len(tables) == 1
    return next(iter(tables.items()))


def test_the_usage_table_is_encrypted_recoverable_and_retained(core: Template) -> None:
    _, table = _usage_table(core)
    properties = table["Properties"]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["TimeToLiveSpecification"] == {
        "AttributeName": USAGE_TABLE_EXPIRY_ATTRIBUTE,
        "Enabled": True,
    }
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def _statements_on(template: Template, logical_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if logical_id in json.dumps(statement.get("Resource")):
                found.append(statement)
    return found


def test_the_admin_api_may_only_query_the_usage_table(core: Template) -> None:
    table_id, _ = _usage_table(core)
    actions = {json.dumps(statement["Action"]) for statement in _statements_on(core, table_id)}
    assert actions == {json.dumps(ADMIN_READ_ACTIONS[0])}


def test_the_serve_task_gets_the_table_metrics_and_least_privilege(serve: Template) -> None:
    containers = next(iter(serve.find_resources("AWS::ECS::TaskDefinition").values()))["Properties"][
        "ContainerDefinitions"
    ]
    environment = {item["Name"]: item["Value"] for item in containers[0]["Environment"]}
    assert environment["LISA_SERVE_METRICS"] == "true"
    assert "USAGE_TABLE_NAME" in environment
    assert "LISA_USAGE_LIMITS" not in environment  # the example config sets no limits
    usage_statements = [
        statement
        for statement in _statements_on(serve, "UsageTable")
        if "dynamodb:UpdateItem" in json.dumps(statement["Action"]) and "Condition" not in statement
    ]
    assert [sorted(statement["Action"]) for statement in usage_statements] == [sorted(SERVE_ACTIONS)]


def test_the_dashboard_shows_per_model_traffic_tokens_errors_latency_and_cpu(serve: Template) -> None:
    dashboards = serve.find_resources("AWS::CloudWatch::Dashboard")
    assert len(dashboards) == 1
    body = json.dumps(next(iter(dashboards.values()))["Properties"]["DashboardBody"])
    for needed in (
        "Requests",
        "Errors",
        "PromptTokens",
        "CompletionTokens",
        "Latency",
        "p50",
        "p99",
        "CPUUtilization",
    ):
        assert needed in body, needed
    assert "{LISA,model}" in body
    serve.has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": Match.string_like_regexp("usage")}
    )
