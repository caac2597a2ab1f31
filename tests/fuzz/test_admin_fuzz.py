"""Schema fuzzing of the admin API (bounded: a fixed seed, ~12 cases per operation and mode).

The admin API's OpenAPI document (``admin_api.openapi.document()``, the one checked into
``docs/admin-openapi.json``) drives schemathesis against the real Lambda handlers (admin API and
authorizer) behind local mode's API-Gateway adapter (``local_mode.apigw``), on 127.0.0.1, with
moto in-process. Every answer must be documented and no answer may be a 5xx (the adapter answers
502 only when the handler raises). ``bench/fuzz_admin.py`` runs the same with 1,000+ cases.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from lisa_contracts.settings import AdminApiSettings
from local_mode.resources import LocalResources
from tests.fuzz.harness import fuzz
from tests.support.lambda_state import configure, fresh_admin_api, fresh_authorizer

CASES = 12
PASS = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
ROLE_ARN = "arn:aws:iam::123456789012:role/lisa-fuzz-workflows"


@pytest.fixture
def admin_url(resources: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    client = boto3.client("stepfunctions")
    arns = {
        name: client.create_state_machine(name=f"lisa-fuzz-{name}", definition=PASS, roleArn=ROLE_ARN)[
            "stateMachineArn"
        ]
        for name in ("create", "update", "delete")
    }
    configure(
        monkeypatch,
        AdminApiSettings.build(
            models_table=resources.models_table,
            create_state_machine_arn=arns["create"],
            update_state_machine_arn=arns["update"],
            delete_state_machine_arn=arns["delete"],
        ),
    )
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # read by Powertools, not by LISA
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    from admin_api import handler as admin
    from authorizer import handler as authorizer
    from local_mode.apigw import AdminApiServer, ApiGatewayAdapter

    fresh_admin_api()  # both keep clients and keys from an earlier test's (other) moto account
    fresh_authorizer()

    server = AdminApiServer(ApiGatewayAdapter(admin.lambda_handler, authorizer.lambda_handler))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        fresh_admin_api()
        fresh_authorizer()


def admin_document() -> dict[str, Any]:
    from admin_api.openapi import document

    parsed: dict[str, Any] = json.loads(document())
    return parsed


def test_fuzzed_admin_requests_get_documented_answers(resources: LocalResources, admin_url: str) -> None:
    report = fuzz(
        admin_document(),
        base_url=admin_url,
        headers={"Authorization": f"Bearer {resources.management_key}"},
        cases_per_operation=CASES,
        allowed_5xx=frozenset(),
    )
    assert report.cases >= 100
    assert not report.failures, "\n".join(report.failures[:20])
    assert any(200 <= status < 300 for status in report.statuses), report.statuses


def test_a_body_that_is_not_utf8_is_a_client_error(resources: LocalResources, admin_url: str) -> None:
    response = httpx.post(
        admin_url + "/models",
        content=b"\x9d\xff",
        headers={"Authorization": f"Bearer {resources.management_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert "UTF-8" in response.json()["message"]
