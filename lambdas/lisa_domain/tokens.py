"""Data access for API tokens. The value is shown once; only its SHA-256 hash is stored (the key).

Reads by value are key reads (``tokenHash``); reads by ``tokenId`` or ``username`` query the
``byTokenId`` / ``byUsername`` indexes. The Scans are :meth:`TokenStore.list_all`, the admin's
paginated "every token" listing, and :meth:`TokenStore.all_tokens`, a serve replica's full load. A
listing's ``nextToken`` names the next page's first token by its ``tokenId``, so no cursor ever
carries a token hash.

Serve replicas follow the table (``serve.token_follower``) the way they follow the registry: one
more item, ``tokenHash = "#version"`` (``#`` is never in a SHA-256 hex digest), holds ``version``
(N) and ``changes`` (L of S): the hashes of the tokens the last ``RECENT_CHANGES`` versions created
or deleted, oldest first, the last one written at ``version``. Every create and revoke is one
``TransactWriteItems`` of the token write and a Put of the version item conditioned on the version
it read, so versions are dense and each names exactly one token: a replica at version ``v`` that
reads version ``n`` re-reads just the tokens ``changes`` lists for ``v+1 .. n`` (or everything,
when more than ``RECENT_CHANGES`` changes passed). A write that loses the race to a concurrent one
re-reads the version and tries again (full jitter, bounded, then ``Unavailable``).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from lisa_contracts.limits import RateLimit, TokenLimits
from lisa_contracts.names import TOKENS_BY_TOKEN_ID, TOKENS_BY_USERNAME
from lisa_contracts.names import TOKENS_VERSION_KEY as VERSION_KEY
from lisa_domain.change_log import ChangeLog
from lisa_domain.dynamo import from_item, to_item
from lisa_domain.errors import TRANSIENT_AWS_ERROR_CODES, Conflict, Unavailable, ValidationFailed
from lisa_domain.pagination import decode_token, encode_token
from lisa_domain.registry import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    TRANSIENT_CANCELLATION_CODES,
    WRITE_ATTEMPTS,
)

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "lisa_"
#: The tokens table's indexes (lisa_stacks/data.py, local_mode/resources.py).
#: A token id: 32 lowercase hex digits (``uuid4().hex``).
TOKEN_ID_PATTERN = r"^[0-9a-f]{32}$"
#: The one field of a token-list cursor: the id of the next page's first token (never its hash).
CURSOR_FIELD = "tokenId"
#: How many of the latest changes the version item lists (a replica further behind reloads everything).
RECENT_CHANGES = 64
#: The attributes a serve replica reads of each token (``tokenId``: a token's own limits are keyed by it,
#: and it names a malformed item).
FOLLOWED_ATTRIBUTES = (
    "tokenHash",
    "tokenId",
    "username",
    "groups",
    "tokenExpiration",
    "rateLimit",
    "monthlyTokenBudget",
)


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
    rateLimit: RateLimit | None = Field(default=None, description="The token's own limit (docs/usage.md)")
    monthlyTokenBudget: int | None = Field(default=None, description="The token's own monthly budget")

    def expired(self, at: float | None = None) -> bool:
        return expired(self.tokenExpiration, time.time() if at is None else at)


def expired(expiration: int | None, at: float) -> bool:
    """Whether a token expiring at ``expiration`` (Unix seconds) no longer works at ``at``: from
    that second on."""
    return expiration is not None and expiration <= at


@dataclass(frozen=True, slots=True)
class FollowedToken:
    """What a serve replica keeps of a token: whose it is, its groups and its expiry."""

    token_hash: str
    username: str
    groups: tuple[str, ...]
    expires_at: int | None  # Unix seconds
    #: The token's own rate limit and budget (``None`` for most tokens: they have none).
    limits: TokenLimits | None = None


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
        rate_limit: RateLimit | None = None,
        monthly_token_budget: int | None = None,
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
            rateLimit=rate_limit,
            monthlyTokenBudget=monthly_token_budget,
        )
        unset = {name for name in ("rateLimit", "monthlyTokenBudget") if getattr(record, name) is None}
        item = record.model_dump(mode="json", exclude=unset) | {"tokenHash": record.tokenHash}
        put = {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(tokenHash)",
            }
        }
        if not self._write(put, record.tokenHash):
            raise Conflict("a token with this value exists already")  # a SHA-256 collision
        return value, record

    # ---- following (serve replicas) --------------------------------------------------------------
    def version(self) -> ChangeLog:
        """The version item: the version and the hashes its last versions changed (version 0, no
        changes, before the first write).

        Unlike the registry's, the item has no ``changesVersion``: every writer of this table has
        written ``version`` and ``changes`` together since the item exists, so no version was ever
        bumped without the log.
        """
        response = self._client.get_item(
            TableName=self.table_name, Key={"tokenHash": {"S": VERSION_KEY}}, ConsistentRead=True
        )
        item = response.get("Item") or {}
        return ChangeLog(
            int(item.get("version", {}).get("N", "0")),
            tuple(entry["S"] for entry in item.get("changes", {}).get("L", [])),
        )

    def all_tokens(self) -> list[FollowedToken]:
        """Every token (``FOLLOWED_ATTRIBUTES`` only): a consistent, paginated Scan."""
        records: list[FollowedToken] = []
        start: dict[str, Any] | None = None
        while True:
            response = self._client.scan(
                TableName=self.table_name,
                ConsistentRead=True,
                ProjectionExpression=", ".join(FOLLOWED_ATTRIBUTES),
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for item in response.get("Items", []):
                record = _followed(item)
                if record is not None:
                    records.append(record)
            start = response.get("LastEvaluatedKey")
            if not start:
                return records

    def by_hashes(self, token_hashes: Iterable[str]) -> dict[str, FollowedToken | None]:
        """The current token of each hash (``None``: none), by consistent key reads."""
        found: dict[str, FollowedToken | None] = {}
        for token_hash in dict.fromkeys(token_hashes):
            response = self._client.get_item(
                TableName=self.table_name,
                Key={"tokenHash": {"S": token_hash}},
                ConsistentRead=True,
                ProjectionExpression=", ".join(FOLLOWED_ATTRIBUTES),
            )
            item = response.get("Item")
            found[token_hash] = _followed(item) if item else None
        return found

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
                FilterExpression="tokenHash <> :version",
                ExpressionAttributeValues={":version": {"S": VERSION_KEY}},
                **({"ExclusiveStartKey": start} if start else {}),
            ),
        )

    def delete(self, record: TokenRecord) -> bool:
        """Delete ``record`` by its hash, only if it is still that token; False when already gone."""
        delete = {
            "Delete": {
                "TableName": self.table_name,
                "Key": {"tokenHash": {"S": record.tokenHash}},
                "ConditionExpression": "attribute_exists(tokenHash) AND tokenId = :id",
                "ExpressionAttributeValues": {":id": {"S": record.tokenId}},
            }
        }
        return self._write(delete, record.tokenHash)

    def _write(self, operation: dict[str, Any], token_hash: str) -> bool:
        """``operation`` (a token's conditional Put or Delete) and the next version item, in one
        transaction; False when the token's own condition failed (nothing written)."""
        attempt = 0
        while True:
            current = self.version()
            following = current.after(token_hash, RECENT_CHANGES)
            bump: dict[str, Any] = {
                "TableName": self.table_name,
                "Item": {
                    "tokenHash": {"S": VERSION_KEY},
                    "version": {"N": str(following.version)},
                    "changes": {"L": [{"S": changed} for changed in following.changes]},
                },
            }
            if current.version:
                bump["ConditionExpression"] = "version = :read"
                bump["ExpressionAttributeValues"] = {":read": {"N": str(current.version)}}
            else:
                bump["ConditionExpression"] = "attribute_not_exists(tokenHash)"
            try:
                self._client.transact_write_items(TransactItems=[operation, {"Put": bump}])
                return True
            except ClientError as error:
                reasons = _cancellation_reasons(error)
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return False
                if not _retryable(error, reasons):
                    raise
                attempt += 1
                if attempt == WRITE_ATTEMPTS:
                    raise Unavailable(
                        f"the tokens table stayed busy (concurrent changes or throttling) for {WRITE_ATTEMPTS} "
                        "attempts; nothing was changed, try again"
                    ) from error
                logger.info("token write cancelled (%s); retrying", ", ".join(map(str, reasons)) or "busy")
                cap = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
                time.sleep(random.uniform(0, cap))  # noqa: S311

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
                record = _record(item)
                if len(records) == limit:  # one more exists: it starts the next page
                    return TokenPage(records, encode_token({CURSOR_FIELD: record.tokenId}))
                records.append(record)
            start = response.get("LastEvaluatedKey")
            if not start:
                return TokenPage(records, None)


def _record(item: dict[str, Any]) -> TokenRecord:
    return TokenRecord.model_validate(from_item(item))


def _followed(item: dict[str, Any]) -> FollowedToken | None:
    """A token item read straight from DynamoDB's attribute values (a full load parses every token:
    far cheaper than validating a ``TokenRecord`` each); ``None`` for the version item and for an
    item that is not a valid token (logged by its id, never by its hash)."""
    token_hash = item.get("tokenHash", {}).get("S", "#")
    if token_hash.startswith("#"):
        return None
    try:
        expiration = item.get("tokenExpiration")
        groups = tuple(entry["S"] for entry in item.get("groups", {}).get("L", []))
        username = item["username"]["S"]
        if not isinstance(username, str) or not all(isinstance(group, str) for group in groups):
            raise TypeError("username or groups")
        return FollowedToken(
            token_hash, username, groups, int(expiration["N"]) if expiration else None, _limits(item)
        )
    except (KeyError, TypeError, ValueError) as error:
        token_id = item.get("tokenId", {}).get("S", "?")
        logger.error("token %s skipped: malformed item (%s)", token_id, type(error).__name__)
        return None


def _limits(item: dict[str, Any]) -> TokenLimits | None:
    """A token's own limits from its item (``None`` when it has none)."""
    rate = item.get("rateLimit", {}).get("M")
    budget = item.get("monthlyTokenBudget", {}).get("N")
    if rate is None and budget is None:
        return None
    rate_limit = (
        RateLimit(**{name: int(value["N"]) for name, value in rate.items() if "N" in value})
        if rate is not None
        else None
    )
    return TokenLimits(item["tokenId"]["S"], rate_limit, int(budget) if budget is not None else None)


def _cancellation_reasons(error: ClientError) -> list[str]:
    """The cancellation reason of each transaction item, in order (empty for other errors)."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return []
    return [str(reason.get("Code")) for reason in error.response.get("CancellationReasons") or []]


def _retryable(error: ClientError, reasons: list[str]) -> bool:
    """A transaction to try again: the version moved (item 2's condition) or DynamoDB was busy."""
    if error.response["Error"]["Code"] in TRANSIENT_AWS_ERROR_CODES:
        return True
    return "ConditionalCheckFailed" in reasons[1:] or bool(set(reasons) & TRANSIENT_CANCELLATION_CODES)


@dataclass(frozen=True)
class TokenPage:
    tokens: list[TokenRecord]
    next_token: str | None
