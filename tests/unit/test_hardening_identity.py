"""Identity hardening (issue 10): the management key's failure mode and previous-version lifetime,
no credential in X-Ray metadata, bounded JSON depth on the admin API, and token-list cursors that
carry no token hash."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from key_rotation import handler as rotation

from lisa_domain.auth import Authenticator, ManagementKey, authenticator_from_env
from lisa_domain.errors import Unauthorized
from lisa_domain.tokens import TokenStore
from local_mode.resources import LocalResources
from tests.conftest import ADMIN_GROUP
from tests.unit.helpers import FakeContext

ROOT = Path(__file__).resolve().parents[2]


# ---- management key: previous version for a bounded time (item 12) ------------------------------
class Clock:
    """An injectable clock (seconds) that tests move by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rotate(secret_id: str, token: str = "11111111-2222-3333-4444-555555555555") -> str:
    """Run the four rotation steps; returns the new current value."""
    rotation.reset()
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        rotation.lambda_handler(
            {"Step": step, "SecretId": secret_id, "ClientRequestToken": token}, FakeContext()
        )
    rotation.reset()
    return str(
        boto3.client("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")[
            "SecretString"
        ]
    )


def current_created(secret_id: str) -> float:
    answer = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    return float(answer["CreatedDate"].timestamp())


def test_previous_key_is_accepted_only_for_the_configured_time(resources: LocalResources) -> None:
    secret, old = resources.management_key_secret_arn, resources.management_key
    new = rotate(secret)
    rotated_at = current_created(secret)
    clock = Clock(rotated_at + 3599)
    key = ManagementKey(secret, previous_ttl=3600, clock=clock)

    assert key.matches(old) and key.matches(new)
    clock.now = rotated_at + 3600
    assert not key.matches(old)
    assert key.matches(new)


def test_previous_key_ttl_comes_from_the_environment(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, old = resources.management_key_secret_arn, resources.management_key
    rotate(secret)
    rotated_at = current_created(secret)
    monkeypatch.setenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS", "60")
    assert ManagementKey(secret, clock=Clock(rotated_at + 59)).matches(old)
    assert not ManagementKey(secret, clock=Clock(rotated_at + 61)).matches(old)
    monkeypatch.delenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS")  # the default: one day
    assert ManagementKey(secret, clock=Clock(rotated_at + 86_399)).matches(old)
    assert not ManagementKey(secret, clock=Clock(rotated_at + 86_401)).matches(old)


def test_authorizer_refuses_an_expired_previous_key(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret, old = resources.management_key_secret_arn, resources.management_key
    new = rotate(secret)
    monkeypatch.setenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS", "0")
    authenticator = authenticator_from_env()
    assert authenticator.authenticate(new).method == "management-key"
    with pytest.raises(Unauthorized):
        authenticator.authenticate(old)


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_bad_previous_key_ttl_is_a_startup_error(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS", value)
    with pytest.raises(ValueError, match="MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS"):
        authenticator_from_env()


# ---- management key: a key-store failure blocks nothing (item 3) --------------------------------
class FlakySecrets:
    """A Secrets Manager client that fails on demand (throttling) and counts its reads."""

    def __init__(self) -> None:
        self.client = boto3.client("secretsmanager")
        self.error: Exception | None = None
        self.reads = 0

    def get_secret_value(self, **kwargs: Any) -> dict[str, Any]:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return dict(self.client.get_secret_value(**kwargs))


THROTTLED = ClientError(
    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue"
)


def test_failed_refresh_keeps_the_cached_versions_with_backoff(
    resources: LocalResources, caplog: pytest.LogCaptureFixture
) -> None:
    flaky, monotonic = FlakySecrets(), Clock(0.0)
    key = ManagementKey(resources.management_key_secret_arn, flaky, ttl=60, monotonic=monotonic)
    assert key.matches(resources.management_key)
    flaky.error = THROTTLED
    monotonic.now = 61  # the cache is due for a refresh, which fails
    assert key.matches(resources.management_key)
    reads = flaky.reads
    monotonic.now = 61.9  # within the first backoff (1 s): no new attempt
    assert key.matches(resources.management_key) and flaky.reads == reads
    monotonic.now = 62.1  # the second attempt fails too: the backoff doubles
    assert key.matches(resources.management_key) and flaky.reads == reads + 1
    monotonic.now = 64.0
    assert key.matches(resources.management_key) and flaky.reads == reads + 1
    flaky.error = None
    monotonic.now = 64.2
    assert key.matches(resources.management_key) and flaky.reads > reads + 1
    assert "ThrottlingException" in caplog.text
    assert resources.management_key not in caplog.text


def test_key_store_failure_without_cache_blocks_no_other_credential(
    resources: LocalResources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = TokenStore(resources.tokens_table)
    value, _ = store.create(username="bob", groups=["team-a"])
    for error in (THROTTLED, EndpointConnectionError(endpoint_url="https://secretsmanager")):
        flaky = FlakySecrets()
        flaky.error = error
        authenticator = Authenticator(
            admin_group=ADMIN_GROUP,
            tokens=store,
            management_key=ManagementKey(resources.management_key_secret_arn, flaky),
        )
        assert authenticator.authenticate(value).username == "bob"
        with pytest.raises(Unauthorized):
            authenticator.authenticate(resources.management_key)
    assert "no cached versions" in caplog.text
    assert resources.management_key not in caplog.text and value not in caplog.text
