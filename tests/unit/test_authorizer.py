"""The REQUEST authorizer: management key (current and previous), API tokens, malformed input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from key_rotation import handler as rotation

from authorizer import handler
from lisa_domain.auth import Principal, principal_to_context
from lisa_domain.tokens import TokenStore
from local_mode.resources import LocalResources
from tests.support.lambda_state import fresh_authorizer, fresh_key_rotation
from tests.unit.helpers import API_ARN, FakeContext, authorizer_event


@pytest.fixture
def authorize(resources: LocalResources) -> Iterator[Any]:
    fresh_authorizer()

    def run(headers: dict[str, str] | None, route: str = "GET/models") -> dict[str, Any]:
        return handler.lambda_handler(authorizer_event(headers, route), FakeContext())

    yield run
    fresh_authorizer()


def _assert_unauthorized(authorize: Any, headers: dict[str, str] | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(headers)


def test_management_key_is_admin(resources: LocalResources, authorize: Any) -> None:
    result = authorize({"Authorization": f"Bearer {resources.management_key}"}, "DELETE/models/m1")

    assert result["principalId"] == "lisa-management-key"
    assert result["context"] == {
        "username": "lisa-management-key",
        "groups": json.dumps(["lisa-admins"]),
        "isAdmin": "true",
        "authMethod": "management-key",
    }
    [statement] = result["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{API_ARN}/*/*"]}


def test_api_key_header_works_too(resources: LocalResources, authorize: Any) -> None:
    assert authorize({"api-key": resources.management_key})["context"]["isAdmin"] == "true"


def test_previous_management_key_keeps_working_after_rotation(
    resources: LocalResources, authorize: Any
) -> None:
    old = resources.management_key
    fresh_key_rotation()
    token = "11111111-2222-3333-4444-555555555555"
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        rotation.lambda_handler(
            {"Step": step, "SecretId": resources.management_key_secret_arn, "ClientRequestToken": token},
            FakeContext(),
        )
    new = boto3.client("secretsmanager").get_secret_value(
        SecretId=resources.management_key_secret_arn, VersionStage="AWSCURRENT"
    )["SecretString"]
    assert new != old
    fresh_authorizer()  # a fresh container (the key cache lives for a minute)

    assert authorize({"Authorization": f"Bearer {new}"})["context"]["authMethod"] == "management-key"
    assert authorize({"Authorization": f"Bearer {old}"})["context"]["authMethod"] == "management-key"


def test_api_token_carries_the_users_groups(resources: LocalResources, authorize: Any) -> None:
    store = TokenStore(resources.tokens_table)
    value, _ = store.create(username="bob", groups=["team-a", "team-b"], expiration=int(time.time()) + 3600)
    admin_value, _ = store.create(username="alice", groups=["lisa-admins"])

    result = authorize({"Authorization": f"Bearer {value}"})
    assert result["principalId"] == "bob"
    assert result["context"] == {
        "username": "bob",
        "groups": json.dumps(["team-a", "team-b"]),
        "isAdmin": "false",
        "authMethod": "api-token",
    }
    assert authorize({"Authorization": f"bearer {admin_value}"})["context"]["isAdmin"] == "true"


def test_expired_api_token_is_refused(resources: LocalResources, authorize: Any) -> None:
    value, _ = TokenStore(resources.tokens_table).create(
        username="bob", groups=[], expiration=int(time.time()) - 1
    )
    _assert_unauthorized(authorize, {"Authorization": f"Bearer {value}"})


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "lisa_unknown-token"},
        {"Authorization": "Bearer lisa_unknown-token"},
        {"Api-Key": "not-the-key"},
    ],
    ids=[
        "no-headers",
        "empty",
        "blank",
        "scheme-only",
        "spaces",
        "basic",
        "no-scheme",
        "unknown",
        "api-key-wrong",
    ],
)
def test_missing_or_bad_credentials_are_unauthorized(
    resources: LocalResources, authorize: Any, headers: dict[str, str] | None
) -> None:
    _assert_unauthorized(authorize, headers)


def test_no_credential_is_logged(
    resources: LocalResources, authorize: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    authorize({"Authorization": f"Bearer {resources.management_key}"})
    _assert_unauthorized(authorize, {"Authorization": "Bearer lisa_secret-guess"})
    output = capsys.readouterr()
    assert resources.management_key not in output.out + output.err
    assert "lisa_secret-guess" not in output.out + output.err


@pytest.mark.parametrize(
    ("method_arn", "expected"),
    [
        (f"{API_ARN}/GET/models", f"{API_ARN}/*/*"),
        (f"{API_ARN}/PUT/models/a.b", f"{API_ARN}/*/*"),
        ("arn:aws:execute-api:eu-west-1:1:x/dev/DELETE/", "arn:aws:execute-api:eu-west-1:1:x/dev/*/*"),
    ],
)
def test_policy_covers_the_whole_stage(method_arn: str, expected: str) -> None:
    principal = Principal("alice", ("team",), False, "api-token")
    policy = handler.stage_policy(method_arn, principal)
    assert policy["principalId"] == "alice"
    assert policy["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [expected]}
    ]
    assert policy["context"] == principal_to_context(principal)


@pytest.mark.parametrize(
    "method_arn", ["not-an-arn", "arn:aws:execute-api:eu-west-1:1:x", "arn:aws:x:y:1:api"]
)
def test_malformed_method_arn_is_refused(method_arn: str) -> None:
    with pytest.raises(ValueError):
        handler.stage_policy(method_arn, Principal("alice", (), False, "api-token"))
