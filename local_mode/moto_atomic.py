"""Give moto's DynamoDB the per-request atomicity DynamoDB guarantees.

moto's DynamoDB backend is not thread-safe: two threads (or two requests to a threaded moto server)
can both pass a ConditionExpression before either writes, and a transaction's snapshot can fail with
"dictionary changed size during iteration". DynamoDB itself applies each conditional write and each
transaction atomically. Serializing the backend's operations behind one lock restores that, so
tests of our conditional writes (and local mode) exercise our code, not the emulator's races.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_OPERATIONS = ("put_item", "get_item", "query", "scan", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    wrapper.__lisa_serialized__ = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Serialize moto's DynamoDB operations (idempotent; process-wide)."""
    for name in _OPERATIONS:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__lisa_serialized__", False):
            setattr(DynamoDBBackend, name, _serialized(method))
