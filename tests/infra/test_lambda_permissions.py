"""Each Lambda role grants only actions its code calls (plus a short documented list of indirect ones).

The code a Lambda runs is its handler module and every module of ``lambdas/`` it imports,
transitively. In that code, ``boto3.client("<service>")`` names the services, and every
``<expr>.<operation>(...)`` or ``get_paginator("<operation>")`` whose name is an operation of one of
them is a call; botocore's service model maps the snake_case name to the IAM action
(``<signing name>:<OperationName>``). Module granularity over-approximates what is called, so the
test checks the direction that matters for least privilege: nothing granted that is not called.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from aws_cdk.assertions import Template

from lisa_stacks.lambda_code import LAMBDAS_DIR

#: Actions no boto3 call names but a call needs, each with why.
INDIRECT_ACTIONS: dict[str, str] = {
    "logs:CreateLogStream": "the Lambda service writes the function's logs with its role",
    "logs:PutLogEvents": "the Lambda service writes the function's logs with its role",
    "xray:PutTraceSegments": "active tracing: the Lambda service sends trace segments",
    "xray:PutTelemetryRecords": "active tracing: the Lambda service sends telemetry",
    "iam:PassRole": "CreateStack/UpdateStack pass the stack role; RegisterTaskDefinition passes the task roles",
    "s3:GetObject": "CloudFormation reads the TemplateURL of CreateStack/UpdateStack with the caller's rights",
    "secretsmanager:TagResource": "CreateSecret with Tags needs TagResource too",
    "kms:Decrypt": "reading a table or secret encrypted with the customer-managed key",
    "kms:DescribeKey": "reading a table or secret encrypted with the customer-managed key",
    "kms:Encrypt": "writing a table or secret encrypted with the customer-managed key",
    "kms:GenerateDataKey": "writing a table or secret encrypted with the customer-managed key",
}
#: Calls IAM authorizes as other actions (one per item kind of the request).
EXPANDED: dict[str, frozenset[str]] = {
    "dynamodb:TransactWriteItems": frozenset(
        {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}
    ),
    "dynamodb:TransactGetItems": frozenset({"dynamodb:GetItem"}),
}
#: Granted by CDK, not by us: ``Secret.add_rotation_schedule`` gives the rotation function
#: GetRandomPassword (for rotations that generate passwords through the API; ours does not).
CDK_GRANTED: dict[str, frozenset[str]] = {
    "key_rotation.handler": frozenset({"secretsmanager:GetRandomPassword"})
}
HANDLERS = (
    "authorizer.handler",
    "admin_api.handler",
    "workflow_steps.handler",
    "key_rotation.handler",
    "scheduler.handler",
)


def _module_file(name: str) -> Path | None:
    base = LAMBDAS_DIR.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _closure(module: str) -> list[ast.Module]:
    """The parsed handler module and every ``lambdas/`` module it imports, transitively."""
    seen: dict[str, ast.Module] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = _module_file(name)
        if path is None or name in seen:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        seen[name] = tree
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                pending += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return list(seen.values())


def _constant_argument(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


@cache
def called_actions(handler_module: str) -> frozenset[str]:
    services: set[str] = set()
    names: set[str] = set()
    for tree in _closure(handler_module):
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            argument = _constant_argument(node)
            if node.func.attr == "client" and argument:
                services.add(argument)
            elif node.func.attr == "get_paginator" and argument:
                names.add(argument)
            names.add(node.func.attr)
    session = botocore.session.get_session()
    actions: set[str] = set()
    for service in services:
        model = session.get_service_model(service)
        operations = {botocore.xform_name(op): op for op in model.operation_names}
        prefix = model.signing_name
        for name in names & set(operations):
            action = f"{prefix}:{operations[name]}"
            actions |= EXPANDED.get(action, {action})
    return frozenset(actions)


def _role_actions(template: Template, handler: str) -> set[str]:
    functions = template.find_resources("AWS::Lambda::Function")
    (function,) = [f for f in functions.values() if f["Properties"].get("Handler") == handler]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            value: Any = statement["Action"]
            actions.update([value] if isinstance(value, str) else value)
    return actions


def test_the_analysis_finds_the_calls_it_must() -> None:
    """Guards the analysis itself: a call it stopped seeing would make the main check vacuous."""
    steps = called_actions("workflow_steps.handler")
    assert {"cloudformation:CreateStack", "ecs:RegisterTaskDefinition", "ecs:ListTaskDefinitions"} <= steps
    assert "dynamodb:PutItem" in steps  # through TransactWriteItems
    assert "secretsmanager:UpdateSecretVersionStage" in called_actions("key_rotation.handler")
    assert "states:StartExecution" in called_actions("admin_api.handler")


@pytest.mark.parametrize("module", HANDLERS)
def test_lambda_role_grants_only_what_its_code_calls(core: Template, module: str) -> None:
    granted = _role_actions(core, f"{module}.lambda_handler")
    called = called_actions(module)
    extra = granted - called - set(INDIRECT_ACTIONS) - CDK_GRANTED.get(module, frozenset())
    assert extra == set(), f"{module}: granted but never called: {sorted(extra)}"
    assert granted & called, f"{module}: the role grants none of the calls (wrong role matched?)"
