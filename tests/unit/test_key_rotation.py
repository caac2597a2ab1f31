"""Management-key rotation: the four steps in Secrets Manager's order, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from key_rotation import handler as rotation

from lisa_domain.auth import ManagementKey
from local_mode.resources import LocalResources
from tests.support.lambda_state import fresh_key_rotation
from tests.unit.helpers import FakeContext

TOKEN = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture
def secret(resources: LocalResources) -> Iterator[str]:
    fresh_key_rotation()
    yield resources.management_key_secret_arn
    fresh_key_rotation()


def run(secret_id: str, step: str, token: str = TOKEN) -> None:
    rotation.lambda_handler({"Step": step, "SecretId": secret_id, "ClientRequestToken": token}, FakeContext())


def value(secret_id: str, stage: str) -> str:
    return str(
        boto3.client("secretsmanager").get_secret_value(SecretId=secret_id, VersionStage=stage)[
            "SecretString"
        ]
    )


def stages(secret_id: str) -> dict[str, list[str]]:
    versions: dict[str, list[str]] = boto3.client("secretsmanager").describe_secret(SecretId=secret_id)[
        "VersionIdsToStages"
    ]
    return versions


def test_rotation_keeps_the_previous_key_valid(resources: LocalResources, secret: str) -> None:
    old = resources.management_key
    for step in STEPS:
        run(secret, step)

    new = value(secret, "AWSCURRENT")
    assert new != old and len(new) >= 43
    assert value(secret, "AWSPREVIOUS") == old
    assert stages(secret)[TOKEN] == ["AWSCURRENT"]
    key = ManagementKey(secret)
    assert key.matches(new) and key.matches(old)
    assert not key.matches(old + "x")


def test_old_key_stops_working_after_the_next_rotation(resources: LocalResources, secret: str) -> None:
    old = resources.management_key
    for step in STEPS:
        run(secret, step)
    middle = value(secret, "AWSCURRENT")
    second = "99999999-bbbb-cccc-dddd-eeeeeeeeeeee"
    for step in STEPS:
        run(secret, step, second)
    key = ManagementKey(secret)
    assert key.matches(value(secret, "AWSCURRENT")) and key.matches(middle)
    assert not key.matches(old)


def test_pending_key_is_not_accepted_before_finish(resources: LocalResources, secret: str) -> None:
    for step in STEPS[:3]:
        run(secret, step)
    pending = str(
        boto3.client("secretsmanager").get_secret_value(
            SecretId=secret, VersionId=TOKEN, VersionStage="AWSPENDING"
        )["SecretString"]
    )
    assert value(secret, "AWSCURRENT") == resources.management_key
    key = ManagementKey(secret)
    assert key.matches(resources.management_key) and not key.matches(pending)


def test_steps_are_idempotent(resources: LocalResources, secret: str) -> None:
    run(secret, "createSecret")
    pending_stages = stages(secret)[TOKEN]
    run(secret, "createSecret")  # retried by Secrets Manager: keeps the same pending value
    assert stages(secret)[TOKEN] == pending_stages
    for step in STEPS[1:]:
        run(secret, step)
    current = value(secret, "AWSCURRENT")
    for step in STEPS:  # a retried rotation of a finished version does nothing
        run(secret, step)
    assert value(secret, "AWSCURRENT") == current
    assert value(secret, "AWSPREVIOUS") == resources.management_key


@pytest.mark.parametrize("step", ["setSecret", "testSecret", "finishSecret"])
def test_unknown_version_is_refused_after_create(secret: str, step: str) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        run(secret, step)


def test_unknown_step_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="unknown rotation step"):
        run(secret, "dropSecret")


def test_malformed_pending_value_fails_the_test_step(secret: str) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret, ClientRequestToken=TOKEN, SecretString="short", VersionStages=["AWSPENDING"]
    )
    with pytest.raises(ValueError, match="not a well-formed"):
        run(secret, "testSecret")


def test_non_pending_version_is_refused(resources: LocalResources, secret: str) -> None:
    for step in STEPS:
        run(secret, step)
    previous = next(version for version, labels in stages(secret).items() if "AWSPREVIOUS" in labels)
    with pytest.raises(ValueError, match="not pending"):
        run(secret, "finishSecret", previous)


def test_new_keys_are_random() -> None:
    keys: set[Any] = {rotation.new_key() for _ in range(5)}
    assert len(keys) == 5 and all(rotation.KEY_PATTERN.match(key) for key in keys)
