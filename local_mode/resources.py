"""The AWS resources the stacks define, created in an emulator (moto) for tests and local mode.

Mirrors ``lisa_stacks/data.py``: same keys and indexes, so the code under test meets the same
DynamoDB semantics as in AWS.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from lisa_contracts.names import (
    MODELS_TABLE_KEY,
    TOKEN_INDEXES,
    TOKENS_TABLE_KEY,
    USAGE_TABLE_PARTITION_KEY,
    USAGE_TABLE_SORT_KEY,
)

#: The ASL files the CDK app deploys (``${StepFunctionArn}`` = the workflow-steps function).
DEFINITIONS_DIR = Path(__file__).resolve().parent.parent / "lambdas" / "workflow_steps" / "definitions"
DEFINITION_FILES = {
    "create": "create_model.asl.json",
    "update": "update_model.asl.json",
    "delete": "delete_model.asl.json",
}
STEP_FUNCTION_ARN_PLACEHOLDER = "${StepFunctionArn}"
WORKFLOW_HANDLER = "workflow_steps.handler.lambda_handler"


@dataclass(frozen=True)
class LocalResources:
    models_table: str
    tokens_table: str
    management_key_secret_arn: str
    management_key: str
    usage_table: str = ""


def create_models_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": MODELS_TABLE_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": MODELS_TABLE_KEY, "KeyType": "HASH"}],
    )


def create_tokens_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in (TOKENS_TABLE_KEY, *TOKEN_INDEXES.values())
        ],
        KeySchema=[{"AttributeName": TOKENS_TABLE_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index_name,
                "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index_name, key in TOKEN_INDEXES.items()
        ],
    )


def create_usage_table(dynamodb: Any, name: str) -> None:
    """The usage table (``lisa_domain.usage``): ``pk`` + ``sk``, as ``lisa_stacks/usage.py`` builds it."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": USAGE_TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": USAGE_TABLE_SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": USAGE_TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": USAGE_TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
    )


def create_resources(prefix: str = "lisa-local", **client_kwargs: Any) -> LocalResources:
    """Create the tables and the management key; ``client_kwargs`` point boto3 at the emulator."""
    dynamodb = boto3.client("dynamodb", **client_kwargs)
    models_table, tokens_table = f"{prefix}-models", f"{prefix}-tokens"
    create_models_table(dynamodb, models_table)
    create_tokens_table(dynamodb, tokens_table)
    usage_table = f"{prefix}-usage"
    create_usage_table(dynamodb, usage_table)
    management_key = secrets.token_urlsafe(32)
    secret = boto3.client("secretsmanager", **client_kwargs).create_secret(
        Name=f"{prefix}/management-key", SecretString=management_key
    )
    return LocalResources(models_table, tokens_table, secret["ARN"], management_key, usage_table)


@dataclass(frozen=True)
class LocalWorkflows:
    function_name: str
    function_arn: str
    create_state_machine_arn: str
    update_state_machine_arn: str
    delete_state_machine_arn: str


def load_definition(workflow: str, function_arn: str, definitions_dir: Path = DEFINITIONS_DIR) -> str:
    """The deployed ASL of ``workflow`` (create, update, delete) with the task function's ARN in it."""
    text = (definitions_dir / DEFINITION_FILES[workflow]).read_text()
    definition = text.replace(STEP_FUNCTION_ARN_PLACEHOLDER, function_arn)
    json.loads(definition)  # fail here, with the file's name in the traceback, if it is not JSON
    return definition


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "runs in-process through local_mode.sfn_lambda_adapter\n")
    return buffer.getvalue()


def create_workflows(
    prefix: str = "lisa-local", definitions_dir: Path = DEFINITIONS_DIR, **client_kwargs: Any
) -> LocalWorkflows:
    """The workflow-steps Lambda function and the three state machines, from the deployed ASL files.

    The function is only a name and an ARN in the emulator: register its handler with
    ``local_mode.sfn_lambda_adapter`` so that invoking it runs our code in-process.
    """
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role_arn = boto3.client("iam", **client_kwargs).create_role(
        RoleName=f"{prefix}-workflows", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    function_name = f"{prefix}-workflow-steps"
    function_arn = boto3.client("lambda", **client_kwargs).create_function(
        FunctionName=function_name,
        Runtime="python3.12",
        Role=role_arn,
        Handler=WORKFLOW_HANDLER,
        Code={"ZipFile": _placeholder_zip()},
        Timeout=300,
    )["FunctionArn"]
    sfn = boto3.client("stepfunctions", **client_kwargs)
    arns = {
        workflow: sfn.create_state_machine(
            name=f"{prefix}-{workflow}-model",
            definition=load_definition(workflow, function_arn, definitions_dir),
            roleArn=role_arn,
        )["stateMachineArn"]
        for workflow in DEFINITION_FILES
    }
    return LocalWorkflows(function_name, function_arn, arns["create"], arns["update"], arns["delete"])
