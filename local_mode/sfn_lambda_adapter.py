"""Run our Lambda handlers in-process when moto's Step Functions interpreter invokes a function.

moto (pinned to 5.2.5) executes state machines with the interpreter it ported from LocalStack. When
a Task invokes a Lambda function (``arn:aws:states:::lambda:invoke`` or a plain function ARN), the
interpreter calls ``lambda:Invoke`` through boto3; with ``{"lambda": {"use_docker": False}}`` that
request reaches ``LambdaSimpleBackend.invoke``, which only echoes the payload. This module replaces
that one method: a function registered here is imported and called in-process, its return value is
the invocation's payload, and an exception becomes an ``Unhandled`` function error with the same
payload shape AWS Lambda's Python runtime produces (``errorMessage``, ``errorType``, ``stackTrace``),
so ``Catch`` and ``Retry`` see exactly what they would see in AWS.

Functions not registered here keep moto's echo behaviour. The patch is on the class, so it works
both under ``mock_aws`` in-process and for a ``ThreadedMotoServer`` running in the same process
(the handler's own boto3 calls then need ``AWS_ENDPOINT_URL`` pointing at that server).

This is decision 4 in docs/architecture.md's only adapter; ``tests/integration/test_sfn_lambda_adapter.py`` pins it.
"""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

Handler = Callable[[Any, Any], Any]

_lock = threading.Lock()
_handlers: dict[str, Handler] = {}
_original_invoke: Callable[..., str | bytes | None] | None = None


@dataclass
class LambdaContext:
    """The attributes of AWS Lambda's context object that handlers (and Powertools) read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def function_name_of(name_or_arn: str) -> str:
    """``arn:aws:lambda:region:account:function:NAME[:qualifier]`` or ``NAME`` -> ``NAME``."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else name_or_arn
    return name_or_arn


def _error_payload(error: BaseException) -> bytes:
    return json.dumps(
        {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
    ).encode()


def _invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> str | bytes | None:
    name = function_name_of(function_name)
    with _lock:
        handler = _handlers.get(name)
    if handler is None:
        assert _original_invoke is not None
        return _original_invoke(self, function_name, qualifier, body, headers, response_headers)
    raw = body.decode() if isinstance(body, bytes) else body
    event = json.loads(raw) if raw else {}
    context = LambdaContext(
        function_name=name,
        invoked_function_arn=function_name
        if function_name.startswith("arn:")
        else f"arn:aws:lambda:{self.region_name}:{self.account_id}:function:{name}",
    )
    try:
        result = handler(event, context)
    except Exception as error:  # every error becomes a function error, as in AWS
        response_headers["x-amz-function-error"] = "Unhandled"
        return _error_payload(error)
    return json.dumps(result).encode()


def install() -> None:
    """Patch moto's simple Lambda backend (idempotent)."""
    global _original_invoke
    with _lock:
        if _original_invoke is None:
            _original_invoke = LambdaSimpleBackend.invoke
            LambdaSimpleBackend.invoke = _invoke  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore moto's echo behaviour and forget every registered handler."""
    global _original_invoke
    with _lock:
        if _original_invoke is not None:
            LambdaSimpleBackend.invoke = _original_invoke  # type: ignore[method-assign]
            _original_invoke = None
        _handlers.clear()


def register(function_name_or_arn: str, handler: Handler) -> None:
    """Run ``handler(event, context)`` whenever the function is invoked (installs the patch)."""
    install()
    with _lock:
        _handlers[function_name_of(function_name_or_arn)] = handler


def unregister(function_name_or_arn: str) -> None:
    with _lock:
        _handlers.pop(function_name_of(function_name_or_arn), None)


@contextmanager
def in_process_lambdas(handlers: Mapping[str, Handler]) -> Iterator[None]:
    """Register ``handlers`` (function name or ARN -> handler) for the duration of the block."""
    for name, handler in handlers.items():
        register(name, handler)
    try:
        yield
    finally:
        for name in handlers:
            unregister(name)
