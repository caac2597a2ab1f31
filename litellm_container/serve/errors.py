"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with the right status.

``ServeError`` is raised anywhere in a request; ``backend_error`` maps what LiteLLM raises when a
model backend fails. Messages of backend failures (5xx) are generic on purpose: a backend's own
message can name internal hosts. The detail goes to the log (class and status, never a body).
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import openai
from starlette.responses import Response

from serve._litellm import litellm

logger = logging.getLogger("lisa.serve")

_MAX_MESSAGE = 1000


class ServeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return Response(
            json.dumps(self.body()).encode(), self.status, headers=headers, media_type="application/json"
        )


def bad_request(message: str, *, param: str | None = None, code: str = "invalid_request") -> ServeError:
    return ServeError(400, message, param=param, code=code)


def model_not_found(model_id: str) -> ServeError:
    return ServeError(
        404,
        f"The model '{model_id}' does not exist or you do not have access to it.",
        param="model",
        code="model_not_found",
    )


def _backend_message(error: BaseException) -> str:
    """The backend's own words, without LiteLLM's prefixes and advice."""
    message = str(getattr(error, "message", None) or error)
    for marker in ("\nmodel=", "\n\nLiteLLM: model group", "\n\nSet '"):
        message = message.split(marker, 1)[0]
    if "Exception - " in message:
        message = message.rsplit("Exception - ", 1)[1]
    return message.strip()[:_MAX_MESSAGE]


def _chain(error: BaseException) -> list[BaseException]:
    """The error and what caused it (LiteLLM wraps the transport's error several times)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(seen) < 12 and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_TIMEOUTS = (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)
_UNREACHABLE = (openai.APIConnectionError, httpx.TransportError, ConnectionError, asyncio.IncompleteReadError)


def backend_error(error: BaseException, model_id: str) -> ServeError:
    """The ``ServeError`` for an exception raised while a model backend handled a request."""
    exceptions = litellm.exceptions
    status = getattr(error, "status_code", None)
    logger.warning(
        "model backend failed: model=%s error=%s status=%s", model_id, type(error).__name__, status
    )
    chain = _chain(error)
    if isinstance(error, exceptions.Timeout) or any(isinstance(e, _TIMEOUTS) for e in chain):
        return ServeError(
            504,
            f"The backend of model '{model_id}' did not answer in time.",
            type="timeout_error",
            code="backend_timeout",
        )
    if isinstance(error, exceptions.RateLimitError):
        return ServeError(
            429,
            f"The backend of model '{model_id}' is rate limited; retry later.",
            type="rate_limit_error",
            code="rate_limit_exceeded",
        )
    if isinstance(error, exceptions.ContentPolicyViolationError):
        return ServeError(400, _backend_message(error), code="content_policy_violation")
    if isinstance(error, exceptions.BadRequestError | exceptions.UnprocessableEntityError) and not isinstance(
        error, exceptions.PaymentRequiredError
    ):
        # The backend refused the request itself (context window, a parameter it rejects): the
        # caller can fix it, so the backend's message is passed on.
        return ServeError(400, _backend_message(error), code="backend_rejected_request")
    if any(isinstance(e, _UNREACHABLE) for e in chain) or _is_aiohttp_connection_error(chain):
        return ServeError(
            502,
            f"The backend of model '{model_id}' could not be reached or closed the connection.",
            type="backend_error",
            code="backend_unreachable",
        )
    if isinstance(error, openai.APIError | httpx.HTTPError):
        # 5xx, but also the backend refusing LISA's own credentials (401/403) or not knowing the
        # model (404): those are deployment faults, not the caller's.
        return ServeError(
            502,
            f"The backend of model '{model_id}' failed"
            + (f" (status {status})." if isinstance(status, int) else "."),
            type="backend_error",
            code="backend_error",
        )
    logger.error("unexpected error from model %s: %s", model_id, type(error).__name__, exc_info=error)
    return ServeError(500, "Internal error.", type="server_error", code="internal_error")


def _is_aiohttp_connection_error(chain: list[BaseException]) -> bool:
    return any(
        type(e).__module__.startswith("aiohttp") and isinstance(e, OSError | ConnectionError) for e in chain
    ) or any(
        type(e).__name__ in ("ClientConnectionError", "ClientPayloadError", "ServerDisconnectedError")
        for e in chain
    )
