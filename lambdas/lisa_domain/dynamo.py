"""Conversions between plain JSON values and DynamoDB's typed attribute values."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attribute(value: Any) -> dict[str, Any]:
    """A JSON-compatible value as a DynamoDB attribute (floats become Decimals)."""
    return _serializer.serialize(json.loads(json.dumps(value), parse_float=Decimal))


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {key: to_attribute(value) for key, value in values.items() if value is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [_plain(item) for item in value]
    return value


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain JSON values (Decimals back to int or float)."""
    return {key: _plain(_deserializer.deserialize(value)) for key, value in item.items()}
