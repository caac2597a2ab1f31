"""Data access for API tokens. The value is shown once; only its SHA-256 hash is stored (the key)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

import boto3
from pydantic import BaseModel, Field

from lisa_domain.dynamo import from_item, to_item

TOKEN_PREFIX = "lisa_"


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_token_value() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenRecord(BaseModel):
    """A stored API token: everything but the value."""

    tokenId: str
    tokenHash: str = Field(exclude=True)
    username: str
    groups: list[str] = Field(default_factory=list)
    name: str = ""
    createdAt: int
    createdBy: str = ""
    tokenExpiration: int | None = Field(default=None, description="Unix seconds; none = never expires")

    def expired(self, at: float | None = None) -> bool:
        return self.tokenExpiration is not None and self.tokenExpiration <= (at or time.time())


class TokenStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client or boto3.client("dynamodb")

    def find(self, value: str) -> TokenRecord | None:
        """The token whose value this is, looked up by its hash (a key read, never a scan)."""
        response = self._client.get_item(
            TableName=self.table_name, Key={"tokenHash": {"S": hash_token(value)}}, ConsistentRead=True
        )
        item = response.get("Item")
        return TokenRecord.model_validate(from_item(item)) if item else None

    def create(
        self,
        *,
        username: str,
        groups: list[str],
        name: str = "",
        expiration: int | None = None,
        created_by: str = "",
    ) -> tuple[str, TokenRecord]:
        """Store a new token; returns its value (to show once) and the stored record."""
        value = new_token_value()
        record = TokenRecord(
            tokenId=uuid.uuid4().hex,
            tokenHash=hash_token(value),
            username=username,
            groups=groups,
            name=name,
            createdAt=int(time.time()),
            createdBy=created_by,
            tokenExpiration=expiration,
        )
        item = record.model_dump(mode="json") | {"tokenHash": record.tokenHash}
        self._client.put_item(
            TableName=self.table_name,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(tokenHash)",
        )
        return value, record
