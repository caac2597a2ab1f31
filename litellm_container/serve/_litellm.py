"""The one place that imports LiteLLM: offline cost map, no telemetry, no message logging."""

from __future__ import annotations

import logging
import os

# Without this, importing litellm fetches its cost map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm import Router

litellm.suppress_debug_info = True
litellm.turn_off_message_logging = True
if hasattr(litellm, "telemetry"):
    litellm.telemetry = False

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm")


def quiet_litellm(level: int = logging.WARNING) -> None:
    """LiteLLM's own loggers may print request data at DEBUG/INFO: keep them at ``level``."""
    for name in _LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(level)


quiet_litellm()

__all__ = ["Router", "litellm", "quiet_litellm"]
