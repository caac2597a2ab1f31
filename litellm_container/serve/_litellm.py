"""The one place that imports LiteLLM: offline cost map, no telemetry, no message logging.

It also skips LiteLLM's per-request bookkeeping that nothing in LISA reads (see
``skip_unused_bookkeeping``): the request still goes through the Router and LiteLLM's provider
code; only the work done *for callbacks* is left out while no callback is registered.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from lisa_contracts.settings import litellm_offline

litellm_offline()  # without it, importing litellm fetches its cost map from the internet

import litellm  # noqa: E402
from litellm import Router  # noqa: E402

litellm.suppress_debug_info = True
litellm.turn_off_message_logging = True
if hasattr(litellm, "telemetry"):
    litellm.telemetry = False

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")

#: Every list in which LiteLLM keeps logging/observability callbacks (all empty in LISA).
_CALLBACK_LISTS = (
    "callbacks",
    "success_callback",
    "failure_callback",
    "input_callback",
    "service_callback",
    "audit_log_callbacks",
    "_async_success_callback",
    "_async_failure_callback",
    "_async_input_callback",
)


def quiet_litellm(level: int = logging.WARNING) -> None:
    """LiteLLM's own loggers may print request data at DEBUG/INFO: keep them at ``level``."""
    for name in _LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(level)


def callbacks_registered() -> bool:
    """True when anything has registered a LiteLLM logging callback (LISA itself never does)."""
    return any(getattr(litellm, name, None) for name in _CALLBACK_LISTS)


def skip_unused_bookkeeping() -> bool:
    """Skip LiteLLM's success-logging payload and cost calculation while no callback would read them.

    After every successful call LiteLLM builds a "standard logging payload" for its callbacks,
    deep-copies request and response to redact them (because message logging is off), and prices
    the response from its cost map. With no callback registered nobody reads any of it, and it is
    about a fifth of LiteLLM's CPU time per request (measured: bench/serve_overhead.py,
    docs/benchmarks.md). Both methods fall back to LiteLLM's own as soon as a callback is
    registered, so this changes nothing observable. Returns False (and changes nothing) on a
    LiteLLM without these methods.
    """
    try:
        from litellm.litellm_core_utils.litellm_logging import Logging
    except ImportError:  # pragma: no cover - another LiteLLM layout
        return False
    success: Callable[..., Any] | None = getattr(Logging, "async_success_handler", None)
    cost: Callable[..., Any] | None = getattr(Logging, "response_cost_calculator", None)
    if success is None or cost is None or getattr(success, "_lisa_skips", False):
        return success is not None and cost is not None

    @functools.wraps(success)
    async def async_success_handler(self: Any, *args: Any, **kwargs: Any) -> None:
        if callbacks_registered():
            await success(self, *args, **kwargs)

    @functools.wraps(cost)
    def response_cost_calculator(self: Any, *args: Any, **kwargs: Any) -> float | None:
        if callbacks_registered():
            result: float | None = cost(self, *args, **kwargs)
            return result
        return None

    async_success_handler._lisa_skips = True  # type: ignore[attr-defined]
    Logging.async_success_handler = async_success_handler  # type: ignore[method-assign]
    Logging.response_cost_calculator = response_cost_calculator  # type: ignore[method-assign]
    return True


quiet_litellm()
skip_unused_bookkeeping()

__all__ = ["Router", "callbacks_registered", "litellm", "quiet_litellm", "skip_unused_bookkeeping"]
