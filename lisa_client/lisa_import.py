"""``lisa import-lisa``: a LISA deployment's model table as a models file.

LISA keeps one item per model: ``model_id`` (key), ``model_status``, ``model_config`` (the create
request as LISA validated it: every field, ``null`` for the absent ones, the provider ``apiKey`` in
plain text), ``model_url`` (for models LISA hosts, its own load balancer), ``context_window``,
``model_description`` and bookkeeping (stack names, ``litellm_id``, ``last_modified_date``...).

Each item becomes a file entry validated with the schema module's ``CreateModelRequest``. What
cannot be carried over is named in the notes, never silently dropped: a stored API key (replaced by
an ``apiKey: {fromEnv: ...}`` reference: its value is never written), LISA's own model URL of a
model it hosted, fields this API does not have, and whole models that do not validate. (LISA keeps
guardrails in a table of their own, which is not read: this API has no guardrails.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from lisa_client.modelfile import entry_of, problems
from lisa_domain.schema import HOSTING_FIELDS, CreateModelRequest, HostingType, ModelRecord, ModelStatus

#: Values LISA stored as a Bedrock model's key placeholder (not a secret; dropped).
PLACEHOLDER_KEYS = frozenset({"ignored", ""})


@dataclass
class ImportResult:
    entries: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plain(value: Any) -> Any:
    """DynamoDB's Decimals as int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def key_variable(model_id: str) -> str:
    """The environment variable the file names for a model's provider key."""
    return "LISA_API_KEY_" + re.sub(r"[^A-Za-z0-9]", "_", model_id).upper()


def _drop_unsupported(body: dict[str, Any], model_id: str, notes: list[str]) -> CreateModelRequest:
    """Validate, removing each field this API does not know (named in the notes)."""
    while True:
        try:
            return CreateModelRequest.model_validate(body)
        except ValidationError as error:
            extras = [detail["loc"] for detail in error.errors() if detail["type"] == "extra_forbidden"]
            if not extras:
                raise
            for location in extras:
                container: Any = body
                for part in location[:-1]:
                    container = container[part]
                container.pop(location[-1], None)
                notes.append(f"{model_id}: {'.'.join(map(str, location))} is not supported here; dropped")


def convert(item: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """One LISA table item as a file entry (None when the model cannot be carried over)."""
    item = plain(item)
    model_id = str(item.get("model_id") or item.get("model_config", {}).get("modelId") or "?")
    config = item.get("model_config")
    if not isinstance(config, dict):
        notes.append(f"{model_id}: skipped: the item has no model_config")
        return None
    body = {key: value for key, value in config.items() if value is not None}
    body.setdefault("modelId", model_id)
    self_hosted = all(body.get(name) for name in HOSTING_FIELDS)
    api_key = body.pop("apiKey", None)
    if item.get("context_window") is not None:
        body["contextWindow"] = item["context_window"]
    if self_hosted:
        if item.get("model_url") or body.get("modelUrl"):
            notes.append(
                f"{model_id}: modelUrl of the LISA-hosted endpoint dropped (the new deployment makes its own)"
            )
        body.pop("modelUrl", None)
        if body.get("hostingType") == HostingType.THIRD_PARTY.value:
            body.pop("hostingType")  # LISA's default, wrong for a model it hosts; derived here
    elif item.get("model_url"):
        body["modelUrl"] = item["model_url"]
    try:
        request = _drop_unsupported(body, model_id, notes)
    except ValidationError as error:
        notes.append(f"{model_id}: skipped: {problems(error)}")
        return None
    record = ModelRecord.model_validate(
        request.definition().model_dump()
        | {
            "status": ModelStatus.IN_SERVICE,
            "createdAt": 0,
            "updatedAt": 0,
            "enabled": item.get("model_status") != ModelStatus.STOPPED.value,
        }
    )
    entry = entry_of(record)
    if api_key not in PLACEHOLDER_KEYS and api_key is not None:
        variable = key_variable(request.modelId)
        entry["apiKey"] = {"fromEnv": variable}
        notes.append(
            f"{model_id}: LISA stored its provider key in the table; not copied: set {variable} "
            "(or change the reference to fromSecretsManager) before lisa apply"
        )
    if item.get("model_status") == ModelStatus.FAILED.value:
        notes.append(
            f"{model_id}: Failed in LISA ({item.get('failure_reason') or 'no reason'}); carried over as defined"
        )
    return entry


def convert_items(items: Iterable[dict[str, Any]]) -> ImportResult:
    result = ImportResult()
    for item in sorted(items, key=lambda i: str(i.get("model_id"))):
        entry = convert(item, result.notes)
        if entry is not None:
            result.entries.append(entry)
    return result


def scan_table(table_name: str, region: str | None = None) -> list[dict[str, Any]]:
    """Every item of LISA's model table (boto3's default credentials)."""
    import boto3

    table = boto3.resource("dynamodb", region_name=region).Table(table_name)
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
