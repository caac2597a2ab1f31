"""Data access for API tokens. The value is shown once; only its SHA-256 hash is stored (the key).

Reads by value are key reads (``tokenHash``); reads by ``tokenId`` or ``username`` query the
``byTokenId`` / ``byUsername`` indexes. The only Scan is :meth:`TokenStore.list_all`, the admin's
paginated "every token" listing. A listing's ``nextToken`` names the next page's first token by its
``tokenId``, so no cursor ever carries a token hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from lisa_domain.dynamo import from_item, to_item
from lisa_domain.errors import ValidationFailed
from lisa_domain.pagination import decode_token, encode_token

TOKEN_PREFIX = "lisa_"
#: The tokens table's indexes (lisa_stacks/data.py, local_mode/resources.py).
TOKENS_BY_TOKEN_ID = "byTokenId"
TOKENS_BY_USERNAME = "byUsername"
#: A token id: 32 lowercase hex digits (``uuid4().hex``).
TOKEN_ID_PATTERN = r"^[0-9a-f]{32}$"
#: The one field of a token-list cursor: the id of the next page's first token (never its hash).
CURSOR_FIELD = "tokenId"


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

    # ---- management (admin API) ----------------------------------------------------------------
    def get_by_id(self, token_id: str) -> TokenRecord | None:
        """The token with this id, through the ``byTokenId`` index (a Query, never a Scan)."""
        response = self._client.query(
            TableName=self.table_name,
            IndexName=TOKENS_BY_TOKEN_ID,
            KeyConditionExpression="tokenId = :id",
            ExpressionAttributeValues={":id": {"S": token_id}},
            Limit=2,
        )
        items = response.get("Items", [])
        return TokenRecord.model_validate(from_item(items[0])) if items else None

    def list_for_user(self, username: str, limit: int, next_token: str | None = None) -> TokenPage:
        """Up to ``limit`` tokens of ``username``, through the ``byUsername`` index (Query)."""
        return self._page(
            limit,
            self._resume_at(next_token, username),
            lambda record: {"tokenHash": {"S": record.tokenHash}, "username": {"S": record.username}},
            lambda start: self._client.query(
                TableName=self.table_name,
                IndexName=TOKENS_BY_USERNAME,
                KeyConditionExpression="username = :user",
                ExpressionAttributeValues={":user": {"S": username}},
                Limit=limit + 1,
                **({"ExclusiveStartKey": start} if start else {}),
            ),
        )

    def list_all(self, limit: int, next_token: str | None = None) -> TokenPage:
        """Up to ``limit`` tokens of every user: a paginated Scan (the admin's "list all" only)."""
        return self._page(
            limit,
            self._resume_at(next_token),
            lambda record: {"tokenHash": {"S": record.tokenHash}},
            lambda start: self._client.scan(
                TableName=self.table_name,
                Limit=limit + 1,
                **({"ExclusiveStartKey": start} if start else {}),
            ),
        )

    def delete(self, record: TokenRecord) -> bool:
        """Delete ``record`` by its hash, only if it is still that token; False when already gone."""
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key={"tokenHash": {"S": record.tokenHash}},
                ConditionExpression="attribute_exists(tokenHash) AND tokenId = :id",
                ExpressionAttributeValues={":id": {"S": record.tokenId}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _resume_at(self, next_token: str | None, username: str | None = None) -> TokenRecord | None:
        """The first token of the page a ``nextToken`` asks for (``None``: the first page).

        The cursor names that token by its ``tokenId`` only, never by its hash (the table key): the
        hash is looked up here, through the ``byTokenId`` index.
        """
        cursor = decode_token(next_token, frozenset({CURSOR_FIELD}))
        if cursor is None:
            return None
        token_id = cursor[CURSOR_FIELD]
        if not isinstance(token_id, str) or not re.fullmatch(TOKEN_ID_PATTERN, token_id):
            raise ValidationFailed("nextToken: not a token this API issued")
        record = self.get_by_id(token_id)
        if record is None:
            raise ValidationFailed(
                "nextToken: the token the next page starts with was revoked or expired; list from the start"
            )
        if username is not None and record.username != username:
            raise ValidationFailed("nextToken: not a token this API issued for this listing")
        return record

    @staticmethod
    def _page(
        limit: int,
        first: TokenRecord | None,
        start_key: Callable[[TokenRecord], dict[str, Any]],
        fetch: Callable[[dict[str, Any] | None], dict[str, Any]],
    ) -> TokenPage:
        """A full page from ``first`` on, and a ``next_token`` (the ``tokenId`` of the next page's first
        token) that is absent exactly when nothing follows."""
        if limit < 1:
            raise ValidationFailed("limit: must be at least 1")
        records = [first] if first is not None else []
        start = start_key(first) if first is not None else None
        while True:
            response = fetch(start)
            for item in response.get("Items", []):
                record = TokenRecord.model_validate(from_item(item))
                if len(records) == limit:  # one more exists: it starts the next page
                    return TokenPage(records, encode_token({CURSOR_FIELD: record.tokenId}))
                records.append(record)
            start = response.get("LastEvaluatedKey")
            if not start:
                return TokenPage(records, None)


@dataclass(frozen=True)
class TokenPage:
    tokens: list[TokenRecord]
    next_token: str | None
