"""Operator checks: deployment preflight (``python -m lisa_preflight``) and the post-deploy smoke
test (``python -m lisa_preflight.smoke``). See docs/operations.md.

The model schema and the capacity checks live under ``lambdas/`` (shared with the admin API):
importing this package from the repository puts that folder on ``sys.path``, as ``lisa_client`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

_LAMBDAS = Path(__file__).resolve().parent.parent / "lambdas"
if str(_LAMBDAS) not in sys.path:
    sys.path.append(str(_LAMBDAS))
