"""Opaque pagination tokens: a listing's position, base64url-encoded JSON.

The position is whatever the listing resumes from (the models registry: DynamoDB's LastEvaluatedKey;
API tokens: the next page's first ``tokenId``); it must never hold a secret or a token hash.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from lisa_domain.errors import ValidationFailed


def encode_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_key, sort_keys=True).encode()).decode().rstrip("=")


def decode_token(token: str | None, key_names: frozenset[str]) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed("nextToken: not a token this API issued") from error
    if not isinstance(decoded, dict) or set(decoded) != key_names:
        raise ValidationFailed("nextToken: not a token this API issued")
    return decoded
