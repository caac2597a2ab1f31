"""Schema fuzzing of the admin API at scale (>= 1,000 cases).

    .venv/bin/python -m bench.fuzz_admin [--cases-per-operation 70]

The admin API's OpenAPI document (``admin_api.openapi.document()``) drives schemathesis against
the real Lambda handlers (admin API and authorizer) behind local mode's API-Gateway adapter
(``local_mode.apigw``) on 127.0.0.1, with moto in-process. The workflows are trivial Pass state
machines: local mode's real ones would start a local model process for every self-hosted model
the fuzzer creates. Prints the cases, the statuses and every failure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys

from bench._procs import ADMIN_GROUP, ROOT, log


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_admin", description=__doc__.splitlines()[0])
    parser.add_argument("--cases-per-operation", type=int, default=70, help="per operation and mode")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ.pop("AWS_ENDPOINT_URL", None)
    for path in ("lambdas", "litellm_container"):
        if str(ROOT / path) not in sys.path:
            sys.path.insert(0, str(ROOT / path))
    import boto3
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        from local_mode.resources import create_resources

        resources = create_resources("lisa-fuzz")
        env = {
            "MODELS_TABLE_NAME": resources.models_table,
            "TOKENS_TABLE_NAME": resources.tokens_table,
            "MANAGEMENT_KEY_SECRET_ARN": resources.management_key_secret_arn,
            "ADMIN_GROUP": ADMIN_GROUP,
            "MODEL_SECRET_PREFIX": "lisa-fuzz/models/",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }
        client = boto3.client("stepfunctions")
        passing = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
        for name in ("create", "update", "delete"):
            env[f"{name.upper()}_MODEL_STATE_MACHINE_ARN"] = client.create_state_machine(
                name=f"lisa-fuzz-{name}", definition=passing, roleArn="arn:aws:iam::123456789012:role/x"
            )["stateMachineArn"]
        os.environ.update(env)
        from admin_api import handler as admin
        from admin_api.openapi import document
        from authorizer import handler as authorizer
        from local_mode.apigw import AdminApiServer, ApiGatewayAdapter
        from tests.fuzz.harness import fuzz
        from tests.support.lambda_state import fresh_admin_api, fresh_authorizer

        fresh_admin_api()
        fresh_authorizer()
        server = AdminApiServer(ApiGatewayAdapter(admin.lambda_handler, authorizer.lambda_handler))
        server.start()
        try:
            log(f"fuzzing {server.url} ({args.cases_per_operation} cases per operation and mode)")
            with contextlib.redirect_stdout(io.StringIO()):  # Powertools' metric lines
                report = fuzz(
                    json.loads(document()),
                    base_url=server.url,
                    headers={"Authorization": f"Bearer {resources.management_key}"},
                    cases_per_operation=args.cases_per_operation,
                    seed=args.seed,
                    allowed_5xx=frozenset(),
                )
        finally:
            server.stop()
    print(f"\nAdmin API fuzzing: {report.cases} cases, statuses {dict(sorted(report.statuses.items()))}")
    print(f"failures: {len(report.failures)}")
    for failure in report.failures[:50]:
        print(" -", failure.replace("\n", " ")[:400])
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
