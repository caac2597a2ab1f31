"""LISA's Python client and the ``lisa`` command (models as code, LISA import).

``LisaClient`` wraps every admin-API route with typed methods; the request and response models
come from the one schema module (``lisa_domain.schema``), which lives under ``lambdas/``: importing
this package from the repository puts that folder on ``sys.path`` when it is not there yet.
"""

from __future__ import annotations

import sys
from pathlib import Path

_LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas"
if str(_LAMBDAS) not in sys.path:
    sys.path.append(str(_LAMBDAS))

from lisa_client.client import LisaClient  # noqa: E402
from lisa_client.errors import (  # noqa: E402
    ApiError,
    Conflict,
    Forbidden,
    InvalidRequest,
    LisaClientError,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    WaitTimeout,
    WorkflowFailed,
)

__all__ = [
    "ApiError",
    "Conflict",
    "Forbidden",
    "InvalidRequest",
    "LisaClient",
    "LisaClientError",
    "NotFound",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "WaitTimeout",
    "WorkflowFailed",
]
