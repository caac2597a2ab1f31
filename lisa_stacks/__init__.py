"""LISA's CDK constructs and stacks (see docs/architecture.md).

The stacks build every runtime's environment from ``lisa_contracts`` (in ``lambdas/``, the Lambda
asset), so ``lambdas/`` is put on the import path here, for ``python app.py`` as for the tests.
"""

import sys
from pathlib import Path

_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.append(_LAMBDAS)
