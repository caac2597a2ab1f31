"""Shared fixtures: offline AWS defaults and an in-process moto account with LISA's resources."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

for _name, _value in {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "LISA",
    "POWERTOOLS_SERVICE_NAME": "lisa-test",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)

from moto import mock_aws  # noqa: E402

from lisa_contracts.settings import AdminApiSettings, AuthorizerSettings  # noqa: E402
from local_mode import moto_atomic  # noqa: E402
from local_mode.resources import LocalResources, create_resources  # noqa: E402
from tests.support.lambda_state import configure  # noqa: E402

moto_atomic.install()

ADMIN_GROUP = "lisa-admins"
MODEL_SECRET_PREFIX = "lisa/test/models/"


@pytest.fixture
def aws() -> Iterator[None]:
    """An empty in-process moto account (Step Functions executes definitions)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def resources(aws: None, monkeypatch: pytest.MonkeyPatch) -> LocalResources:
    """LISA's tables and management key in moto, with the Lambda environment pointing at them."""
    created = create_resources("lisa-test")
    configure(
        monkeypatch,
        AdminApiSettings.build(
            models_table=created.models_table,
            tokens_table=created.tokens_table,
            usage_table=created.usage_table,
            admin_group=ADMIN_GROUP,
            model_secret_prefix=MODEL_SECRET_PREFIX,
        ),
        AuthorizerSettings.build(
            tokens_table=created.tokens_table,
            management_key_secret_arn=created.management_key_secret_arn,
            admin_group=ADMIN_GROUP,
        ),
    )
    from lisa_domain.settings import settings

    settings.cache_clear()
    return created
