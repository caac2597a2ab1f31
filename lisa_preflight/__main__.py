"""``make preflight``: ``python -m lisa_preflight --config config/deployment.yaml [--models models.yaml]``.

Exit code 0 when every check passes, 1 when any finding is reported, 2 when the config or the
models file is invalid.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import boto3

from lisa_preflight.checks import clients, report, run_preflight
from lisa_stacks.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lisa_preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/deployment.yaml"))
    parser.add_argument("--models", type=Path, help="a models file (lisa apply's models.yaml) to check too")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        models = []
        if args.models:
            from lisa_client.modelfile import ModelFileError, parse

            try:
                models = [entry.definition() for entry in parse(args.models.read_text(), str(args.models))]
            except (ModelFileError, OSError) as error:
                print(error, file=sys.stderr)
                return 2
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    # botocore reads AWS_DEFAULT_REGION and the profile; the CDK CLI also AWS_REGION.
    session = boto3.Session(region_name=os.environ.get("AWS_REGION") or None)
    region = session.region_name
    if not region:
        print("FAIL no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION) or the profile's region")
        return 1
    results = run_preflight(config, clients(session), region, models, source=str(args.models or "models"))
    print(report(results))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
