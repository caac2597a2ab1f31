"""The cost-control evaluator in the core stack, and the serve task's limited write (issue 13)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from lisa_stacks.scheduler import SERVE_WRITABLE_ATTRIBUTES

HANDLER = "scheduler.handler.lambda_handler"


def _evaluator(core: Template) -> tuple[str, dict[str, Any]]:
    functions = core.find_resources("AWS::Lambda::Function")
    ((name, function),) = [(n, f) for n, f in functions.items() if f["Properties"].get("Handler") == HANDLER]
    return name, function["Properties"]


def test_the_evaluator_runs_every_minute_one_at_a_time(core: Template) -> None:
    name, props = _evaluator(core)
    assert props["ReservedConcurrentExecutions"] == 1
    environment = props["Environment"]["Variables"]
    assert set(environment) >= {"MODELS_TABLE_NAME", "UPDATE_MODEL_STATE_MACHINE_ARN"}
    assert "LISA_LOCAL_IDLE_MINUTE_SECONDS" not in environment  # local mode only
    rules = [
        rule["Properties"]
        for rule in core.find_resources("AWS::Events::Rule").values()
        if rule["Properties"].get("ScheduleExpression")
    ]
    assert [rule["ScheduleExpression"] for rule in rules] == ["rate(1 minute)"]
    assert rules[0]["Targets"][0]["Arn"] == {"Fn::GetAtt": [name, "Arn"]}


def test_the_evaluator_starts_only_the_update_workflow(core: Template) -> None:
    _, props = _evaluator(core)
    role_id = props["Role"]["Fn::GetAtt"][0]
    resources = []
    for policy in core.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                if statement["Action"] == "states:StartExecution":
                    resources.append(statement["Resource"])
    (arn,) = resources
    assert "UpdateModel" in arn["Ref"]


def test_the_serve_task_may_write_only_usage_and_start_requests(serve: Template) -> None:
    statements = [
        statement
        for policy in serve.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "dynamodb:UpdateItem"
        in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        and "UsageTable" not in str(statement["Resource"])  # metering: tests/infra/test_usage_stack.py
    ]
    (statement,) = statements
    assert statement["Action"] == "dynamodb:UpdateItem"
    condition = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert sorted(condition) == sorted(SERVE_WRITABLE_ATTRIBUTES)
    assert not any(
        action in str(policy)
        for policy in serve.find_resources("AWS::IAM::Policy").values()
        for action in ("states:StartExecution", "dynamodb:PutItem")
    )
