"""Data access for the models table: the model registry every serve replica follows.

Every write is conditional and runs in one transaction with the next registry-version item, so
serve replicas notice any change by reading a single item (decision 1 and 7 in docs/architecture.md). That item is
a change log (``lisa_domain.change_log``): it names the models the last ``RECENT_CHANGES`` versions
changed, so a replica re-reads only those (``followed_by_ids``) instead of the whole table
(``followed_models``). A model is served if and only if its item has ``litellmParams``.

Every write shares the version item, so concurrent writes (and throttling) cancel transactions that
broke no rule. Only a failed condition of the model item itself (the first cancellation reason
``ConditionalCheckFailed``) is a Conflict. A write that lost the version item to a concurrent one
re-reads it and tries again (at most ``VERSION_RACE_ATTEMPTS`` times); a cancellation for
``TransactionConflict``, ``ThrottlingError`` or ``ProvisionedThroughputExceeded`` (and a throttled
call) is retried with full jitter, at most ``WRITE_ATTEMPTS`` times. Either bound reached is
``Unavailable`` (503; the workflow steps retry it).

Readers return typed records: ``get`` a ``ModelRecord``, ``stored`` a ``StoredModel`` (the record,
whether it is registered for serving, its status history), ``served_models`` the ``ServedModel``s.
A stored item that does not validate is skipped (logged, counted) by every reader that goes
through ``parse_record``, so one malformed record never blocks the registry.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from lisa_contracts.names import REGISTRY_VERSION_KEY as VERSION_KEY
from lisa_domain.change_log import ChangeLog
from lisa_domain.dynamo import from_item, to_attribute, to_item
from lisa_domain.errors import (
    TRANSIENT_AWS_ERROR_CODES,
    Conflict,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from lisa_domain.pagination import decode_token, encode_token
from lisa_domain.schema import ModelRecord, ModelStatus

logger = logging.getLogger(__name__)

LITELLM_PARAMS = "litellmParams"

#: Attempts of one registry write when DynamoDB cancels it for a transient reason.
WRITE_ATTEMPTS = 6
#: Attempts of one registry write that keeps losing the version item to concurrent writes.
VERSION_RACE_ATTEMPTS = 32
#: How many of the latest changed model ids the version item lists (a replica further behind
#: reloads the table; 256 ids of at most 128 characters are 32 KB of DynamoDB's 400 KB item).
RECENT_CHANGES = 256
#: Keys per BatchGetItem call (DynamoDB's limit).
BATCH_GET_KEYS = 100
#: Full-jitter backoff: attempt n sleeps uniformly in [0, min(cap, base * 2**n)] seconds.
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 1.0
#: Transaction cancellation reasons that mean "try again" rather than "a condition failed".
TRANSIENT_CANCELLATION_CODES = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)


class StatusChange(BaseModel):
    """One entry of a model's ``statusHistory`` (appended by every transition)."""

    status: ModelStatus
    at: int = Field(description="Unix seconds")
    reason: str | None = None


_HISTORY = TypeAdapter(list[StatusChange])


@dataclass(frozen=True)
class StoredModel:
    """A model as the registry holds it: the record plus what only the registry knows."""

    record: ModelRecord
    #: Whether the item has ``litellmParams``, i.e. the serve app routes to the model.
    registered: bool
    history: list[StatusChange]

    def entered_status_at(self) -> int:
        """When the model entered its current status (the first of the latest run of entries with
        that status; 0 without history)."""
        entered = 0
        for change in reversed(self.history):
            if change.status != self.record.status:
                break
            entered = change.at
        return entered


@dataclass(frozen=True)
class ServedModel:
    """A model registered for serving: its record and its LiteLLM deployment parameters."""

    record: ModelRecord
    litellm_params: dict[str, Any]


class ServedModels(list[ServedModel]):
    """The served models, and how many malformed items were skipped while reading them."""

    def __init__(self, models: Iterable[ServedModel] = (), skipped: int = 0) -> None:
        super().__init__(models)
        self.skipped = skipped


@dataclass(frozen=True)
class FollowedModel:
    """What a serve replica follows of one model: its record, and its LiteLLM parameters when it is
    registered for serving (``None``: known, for example to start on request, but not served)."""

    record: ModelRecord
    litellm_params: dict[str, Any] | None


@dataclass(frozen=True)
class FollowedModels:
    """Valid model items by id, and the ids of the items that do not validate (``parse_followed``)."""

    models: dict[str, FollowedModel]
    malformed: frozenset[str] = frozenset()


def parse_followed(item: dict[str, Any]) -> FollowedModel | None:
    """The item as a replica follows it; ``None`` (logged) when its record or its ``litellmParams``
    does not validate."""
    record = parse_record(item)
    params = item.get(LITELLM_PARAMS) or None
    if record is not None and params is not None and not isinstance(params, dict):
        logger.error("model item %s skipped: its %s is not an object", record.modelId, LITELLM_PARAMS)
        return None
    return None if record is None else FollowedModel(record, params)


def _followed(items: Iterable[dict[str, Any]]) -> FollowedModels:
    models: dict[str, FollowedModel] = {}
    malformed: set[str] = set()
    for item in items:
        followed = parse_followed(item)
        if followed is None:
            malformed.add(str(item.get("modelId")))
        else:
            models[followed.record.modelId] = followed
    return FollowedModels(models, frozenset(malformed))


@dataclass(frozen=True)
class Page:
    models: list[ModelRecord]
    next_token: str | None
    #: Malformed items skipped while reading this page (see ``parse_record``).
    skipped: int = 0


def now() -> int:
    return int(time.time())


def parse_record(item: dict[str, Any]) -> ModelRecord | None:
    """The item's record, or None when it does not validate (logged with the failing fields only,
    never the values): readers skip such an item instead of failing on the whole registry."""
    try:
        return ModelRecord.model_validate(item)
    except ValidationError as error:
        fields = sorted(
            {".".join(str(part) for part in problem["loc"]) or "item" for problem in error.errors()}
        )
        logger.error(
            "model item %s skipped: it is not a valid model record (invalid fields: %s)",
            str(item.get("modelId"))[:100],
            ", ".join(fields),
        )
        return None


class ModelRegistry:
    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table_name = table_name
        self._client = client or boto3.client("dynamodb")
        self._sleep = sleep

    # ---- reads -------------------------------------------------------------------------------
    def get_item(self, model_id: str) -> dict[str, Any]:
        """The item as stored (record fields, ``litellmParams`` when registered, ``statusHistory``);
        NotFound if absent. For inspection: logic reads the typed ``get`` / ``stored``."""
        response = self._client.get_item(
            TableName=self.table_name, Key={"modelId": {"S": model_id}}, ConsistentRead=True
        )
        if "Item" not in response or model_id == VERSION_KEY:
            raise NotFound(f"model '{model_id}' not found")
        return from_item(response["Item"])

    def get(self, model_id: str) -> ModelRecord:
        """The model's record; NotFound if absent, ValidationError if the item is not a valid record."""
        return ModelRecord.model_validate(self.get_item(model_id))

    def stored(self, model_id: str) -> StoredModel:
        """The model with its registration and status history (``get`` when the record is enough)."""
        item = self.get_item(model_id)
        return StoredModel(
            record=ModelRecord.model_validate(item),
            registered=bool(item.get(LITELLM_PARAMS)),
            history=_HISTORY.validate_python(item.get("statusHistory") or []),
        )

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
        skipped = 0
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
                record = parse_record(item)
                if record is None:
                    skipped += 1
                    continue
                if visible is not None and not visible(record):
                    continue
                if len(models) == limit:  # one more visible model exists: the page is not the last
                    return Page(models, encode_token({"modelId": {"S": models[-1].modelId}}), skipped)
                models.append(record)
            scan_key = response.get("LastEvaluatedKey")
            if not scan_key:
                return Page(models, None, skipped)

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

    def served_models(self) -> ServedModels:
        """The registered models; a malformed item (record or ``litellmParams``) is skipped and
        counted in ``skipped`` (see ``parse_record``)."""
        served = ServedModels()
        for item in self.all_items():
            if not item.get(LITELLM_PARAMS):
                continue
            followed = parse_followed(item)
            if followed is None or followed.litellm_params is None:
                served.skipped += 1
            else:
                served.append(ServedModel(followed.record, followed.litellm_params))
        return served

    def followed_models(self) -> FollowedModels:
        """Every model as a serve replica follows it (a full, consistent scan)."""
        return _followed(self.all_items())

    def followed_by_ids(self, model_ids: Iterable[str]) -> FollowedModels:
        """The models with these ids, by consistent key reads (BatchGetItem, ``BATCH_GET_KEYS`` a
        call); an id in neither field of the answer has no item (deleted)."""
        wanted = [model_id for model_id in dict.fromkeys(model_ids) if model_id != VERSION_KEY]
        items: list[dict[str, Any]] = []
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            keys = [{"modelId": {"S": model_id}} for model_id in wanted[start : start + BATCH_GET_KEYS]]
            request = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(WRITE_ATTEMPTS):
                response = self._client.batch_get_item(RequestItems=request)
                items.extend(map(from_item, response.get("Responses", {}).get(self.table_name, [])))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))  # noqa: S311
            else:
                raise Unavailable("the registry stayed throttled: some changed models could not be read")
        return _followed(items)

    def change_log(self) -> ChangeLog:
        """The registry-version item: the version and the model ids its last versions changed."""
        response = self._client.get_item(
            TableName=self.table_name, Key={"modelId": {"S": VERSION_KEY}}, ConsistentRead=True
        )
        return ChangeLog.from_item(response.get("Item"))

    def version(self) -> int:
        return self.change_log().version

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
        transient = races = 0
        while True:
            current = self.change_log()
            bump: dict[str, Any] = {
                "TableName": self.table_name,
                "Item": {
                    "modelId": {"S": VERSION_KEY},
                    **current.after(model_id, RECENT_CHANGES).attributes(),
                },
            }
            if current.version:
                bump["ConditionExpression"] = "version = :read"
                bump["ExpressionAttributeValues"] = {":read": {"N": str(current.version)}}
            else:
                bump["ConditionExpression"] = "attribute_not_exists(modelId)"
            try:
                self._client.transact_write_items(TransactItems=[operation, {"Put": bump}])
                return
            except ClientError as error:
                kind = _failure_kind(error)
                if kind == "conflict":
                    raise self._explain_conflict(model_id, missing_ok, allowed, target) from error
                if kind == "raced":
                    races += 1  # another write took this version: read the next one and try again
                    attempt, budget = races, VERSION_RACE_ATTEMPTS
                elif kind == "transient":
                    transient += 1
                    attempt, budget = transient, WRITE_ATTEMPTS
                else:
                    raise
                if attempt == budget:
                    raise Unavailable(
                        f"model '{model_id}': the registry stayed busy (concurrent changes or "
                        f"throttling) for {attempt} attempts; nothing was changed, try again"
                    ) from error
                logger.warning("registry write for model %s cancelled (%s); retrying", model_id, kind)
                cap = BACKOFF_CAP_SECONDS if kind == "transient" else BACKOFF_BASE_SECONDS
                self._sleep(random.uniform(0, min(cap, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))))  # noqa: S311

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


def _failure_kind(error: ClientError) -> str:
    """``conflict`` (the model item's condition failed), ``raced`` (the version item's did: a
    concurrent write), ``transient`` (retry) or ``other`` (re-raise)."""
    code = error.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return "conflict"
    if code in TRANSIENT_AWS_ERROR_CODES:
        return "transient"
    if code != "TransactionCanceledException":
        return "other"
    reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons") or []]
    if reasons[:1] == ["ConditionalCheckFailed"]:
        return "conflict"
    if "ConditionalCheckFailed" in reasons:
        return "raced"
    if set(reasons) & TRANSIENT_CANCELLATION_CODES:
        return "transient"
    # No reasons reported: the only cause our writes can have besides the above is a failed
    # condition, so keep reporting it as one (re-reading the item explains which).
    return "conflict" if set(reasons) <= {None, "None"} else "other"


def _history_entry(status: ModelStatus, reason: str | None, at: int) -> dict[str, Any]:
    return StatusChange(status=status, at=at, reason=reason or None).model_dump(
        mode="json", exclude_none=True
    )
