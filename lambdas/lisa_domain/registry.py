"""Data access for the models table: the model registry every serve replica follows.

Every write is conditional and runs in one transaction with an atomic bump of the registry-version
item, so serve replicas notice any change by reading a single item (DESIGN decision 1 and 7).
A model is served if and only if its item has ``litellmParams``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from lisa_domain.dynamo import from_item, to_attribute, to_item
from lisa_domain.errors import Conflict, NotFound, ValidationFailed
from lisa_domain.pagination import decode_token, encode_token
from lisa_domain.schema import ModelRecord, ModelStatus

VERSION_KEY = "#registry"
LITELLM_PARAMS = "litellmParams"


@dataclass(frozen=True)
class ServedModel:
    """A model registered for serving: its record and its LiteLLM deployment parameters."""

    record: ModelRecord
    litellm_params: dict[str, Any]


@dataclass(frozen=True)
class Page:
    models: list[ModelRecord]
    next_token: str | None


def now() -> int:
    return int(time.time())


class ModelRegistry:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client or boto3.client("dynamodb")

    # ---- reads -------------------------------------------------------------------------------
    def get_item(self, model_id: str) -> dict[str, Any]:
        """The raw item (record fields plus ``litellmParams`` when registered); NotFound if absent."""
        response = self._client.get_item(
            TableName=self.table_name, Key={"modelId": {"S": model_id}}, ConsistentRead=True
        )
        if "Item" not in response or model_id == VERSION_KEY:
            raise NotFound(f"model '{model_id}' not found")
        return from_item(response["Item"])

    def get(self, model_id: str) -> ModelRecord:
        return ModelRecord.model_validate(self.get_item(model_id))

    def list_visible(
        self,
        limit: int,
        next_token: str | None,
        visible: Callable[[ModelRecord], bool] | None = None,
    ) -> Page:
        """Up to ``limit`` models for which ``visible`` holds (all when None), in key order.

        The page is always full unless the table ends, and ``next_token`` resumes right after the
        last model returned: it is absent exactly when no further visible model exists, so the last
        page never carries a token.
        """
        if limit < 1:
            raise ValidationFailed("limit: must be at least 1")
        scan_key = decode_token(next_token, frozenset({"modelId"}))
        models: list[ModelRecord] = []
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "Limit": limit + 1,
                "ConsistentRead": True,
            }
            if scan_key:
                kwargs["ExclusiveStartKey"] = scan_key
            response = self._client.scan(**kwargs)
            for item in map(from_item, response.get("Items", [])):
                if item["modelId"] == VERSION_KEY:
                    continue
                record = ModelRecord.model_validate(item)
                if visible is not None and not visible(record):
                    continue
                if len(models) == limit:  # one more visible model exists: the page is not the last
                    return Page(models, encode_token({"modelId": {"S": models[-1].modelId}}))
                models.append(record)
            scan_key = response.get("LastEvaluatedKey")
            if not scan_key:
                return Page(models, None)

    def all_items(self) -> list[dict[str, Any]]:
        """Every model item (a full scan, paginated through); used by serve replicas to rebuild."""
        items: list[dict[str, Any]] = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self.table_name, ConsistentRead=True
        ):
            items.extend(
                item for item in map(from_item, page.get("Items", [])) if item["modelId"] != VERSION_KEY
            )
        return items

    def served_models(self) -> list[ServedModel]:
        return [
            ServedModel(ModelRecord.model_validate(item), item[LITELLM_PARAMS])
            for item in self.all_items()
            if item.get(LITELLM_PARAMS)
        ]

    def version(self) -> int:
        response = self._client.get_item(
            TableName=self.table_name, Key={"modelId": {"S": VERSION_KEY}}, ConsistentRead=True
        )
        return int(response.get("Item", {}).get("version", {}).get("N", "0"))

    # ---- writes ------------------------------------------------------------------------------
    def create(self, record: ModelRecord) -> None:
        """Store a new model; Conflict when the id exists (conditional write)."""
        item = record.model_dump(mode="json")
        item["apiKeySecretArn"] = record.apiKeySecretArn
        item["statusHistory"] = [_history_entry(record.status, record.statusReason, record.createdAt)]
        put = {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(item),
                "ConditionExpression": "attribute_not_exists(modelId)",
            }
        }
        self._transact(put, record.modelId, missing_ok=True)

    def transition(
        self,
        model_id: str,
        *,
        allowed_from: Iterable[ModelStatus],
        to: ModelStatus,
        reason: str | None = None,
        changes: dict[str, Any] | None = None,
        remove: Iterable[str] = (),
    ) -> ModelRecord:
        """Move a model to ``to`` if its status is one of ``allowed_from``; set or remove fields with it.

        Conflict when the model is in another state (a concurrent change), NotFound when it is gone.
        """
        allowed = sorted(set(allowed_from))
        timestamp = now()
        values: dict[str, Any] = {
            ":to": to_attribute(to.value),
            ":now": to_attribute(timestamp),
            ":history": to_attribute([_history_entry(to, reason, timestamp)]),
            ":empty": {"L": []},
        }
        names: dict[str, str] = {"#status": "status"}
        sets = [
            "#status = :to",
            "updatedAt = :now",
            "statusHistory = list_append(if_not_exists(statusHistory, :empty), :history)",
        ]
        removes = [*remove]
        if reason is None:
            removes.append("statusReason")
        else:
            values[":reason"] = to_attribute(reason)
            sets.append("statusReason = :reason")
        for index, (field, value) in enumerate((changes or {}).items()):
            names[f"#f{index}"] = field
            if value is None:
                removes.append(f"#f{index}")
            else:
                values[f":v{index}"] = to_attribute(value)
                sets.append(f"#f{index} = :v{index}")
        allowed_refs = []
        for index, status in enumerate(allowed):
            values[f":from{index}"] = to_attribute(status.value)
            allowed_refs.append(f":from{index}")
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        update = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"modelId": {"S": model_id}},
                "UpdateExpression": expression,
                "ConditionExpression": f"attribute_exists(modelId) AND #status IN ({', '.join(allowed_refs)})",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        self._transact(update, model_id, allowed=allowed, target=to)
        return self.get(model_id)

    def register(
        self, model_id: str, litellm_params: dict[str, Any], *, allowed_from: Iterable[ModelStatus]
    ) -> ModelRecord:
        """Make the model callable: write its LiteLLM parameters and set it ``InService``."""
        return self.transition(
            model_id,
            allowed_from=allowed_from,
            to=ModelStatus.IN_SERVICE,
            changes={LITELLM_PARAMS: litellm_params},
        )

    def deregister(
        self,
        model_id: str,
        *,
        allowed_from: Iterable[ModelStatus],
        to: ModelStatus,
        reason: str | None = None,
    ) -> ModelRecord:
        """Stop routing to the model (remove its LiteLLM parameters) while moving it to ``to``."""
        return self.transition(
            model_id, allowed_from=allowed_from, to=to, reason=reason, remove=[LITELLM_PARAMS]
        )

    def delete(self, model_id: str, *, allowed_from: Iterable[ModelStatus]) -> None:
        """Remove the record, only from the given states."""
        allowed = sorted(set(allowed_from))
        values = {f":from{i}": to_attribute(status.value) for i, status in enumerate(allowed)}
        delete = {
            "Delete": {
                "TableName": self.table_name,
                "Key": {"modelId": {"S": model_id}},
                "ConditionExpression": f"attribute_exists(modelId) AND #status IN ({', '.join(values)})",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }
        self._transact(delete, model_id, allowed=allowed)

    # ---- internals ---------------------------------------------------------------------------
    def _transact(
        self,
        operation: dict[str, Any],
        model_id: str,
        *,
        missing_ok: bool = False,
        allowed: list[ModelStatus] | None = None,
        target: ModelStatus | None = None,
    ) -> None:
        bump = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"modelId": {"S": VERSION_KEY}},
                "UpdateExpression": "ADD version :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
        try:
            self._client.transact_write_items(TransactItems=[operation, bump])
        except ClientError as error:
            if error.response["Error"]["Code"] not in (
                "TransactionCanceledException",
                "ConditionalCheckFailedException",
            ):
                raise
            raise self._explain_conflict(model_id, missing_ok, allowed, target) from error

    def _explain_conflict(
        self,
        model_id: str,
        missing_ok: bool,
        allowed: list[ModelStatus] | None,
        target: ModelStatus | None,
    ) -> Exception:
        try:
            current = self.get_item(model_id)
        except NotFound as missing:
            return Conflict(f"model '{model_id}' changed concurrently") if missing_ok else missing
        if missing_ok:
            return Conflict(f"model '{model_id}' already exists")
        status = current.get("status")
        wanted = f" to {target.value}" if target else ""
        states = ", ".join(s.value for s in allowed or [])
        return Conflict(f"model '{model_id}' is {status}; it can change{wanted} only from: {states}")


def _history_entry(status: ModelStatus, reason: str | None, at: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status.value, "at": at}
    if reason:
        entry["reason"] = reason
    return entry
