"""The AWS resources the stacks define, created in an emulator (moto) for tests and local mode.

Mirrors ``lisa_stacks/data.py``: same keys and indexes, so the code under test meets the same
DynamoDB semantics as in AWS.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import boto3


@dataclass(frozen=True)
class LocalResources:
    models_table: str
    tokens_table: str
    management_key_secret_arn: str
    management_key: str


def create_models_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "modelId", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "modelId", "KeyType": "HASH"}],
    )


def create_tokens_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "tokenHash", "AttributeType": "S"},
            {"AttributeName": "tokenId", "AttributeType": "S"},
            {"AttributeName": "username", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "tokenHash", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byTokenId",
                "KeySchema": [{"AttributeName": "tokenId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "byUsername",
                "KeySchema": [{"AttributeName": "username", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )


def create_resources(prefix: str = "lisa-local", **client_kwargs: Any) -> LocalResources:
    """Create the tables and the management key; ``client_kwargs`` point boto3 at the emulator."""
    dynamodb = boto3.client("dynamodb", **client_kwargs)
    models_table, tokens_table = f"{prefix}-models", f"{prefix}-tokens"
    create_models_table(dynamodb, models_table)
    create_tokens_table(dynamodb, tokens_table)
    management_key = secrets.token_urlsafe(32)
    secret = boto3.client("secretsmanager", **client_kwargs).create_secret(
        Name=f"{prefix}/management-key", SecretString=management_key
    )
    return LocalResources(models_table, tokens_table, secret["ARN"], management_key)
