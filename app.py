#!/usr/bin/env python3
"""CDK entry point: load the deployment config (context ``config``), build every stack, run cdk-nag."""

from __future__ import annotations

import sys
import time

from lisa_stacks.application import synthesize
from lisa_stacks.config import ConfigError


def main() -> int:
    started = time.monotonic()
    try:
        result = synthesize()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    stacks = [result.names.core, result.names.serve, result.names.model_hosting]
    print(
        f"synthesized {', '.join(stacks)} into {result.assembly.directory} "
        f"in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
