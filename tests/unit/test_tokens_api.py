"""API tokens through the admin API: lifecycle, lifetimes, permissions, pagination, no Scan by id.

Every request goes through the real authorizer (JWTs from a real issuer on 127.0.0.1) and then the
real admin handler (``tests.unit.identity_harness``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import pytest

from admin_api import handler as admin_handler
from authorizer import handler as authorizer_handler
from lisa_contracts.settings import AdminApiSettings, SettingsError
from lisa_domain.auth import MAX_OIDC_HTTP_TIMEOUT, authenticator_from_env, jwt_verifier_from_env
from lisa_domain.errors import Unauthorized
from lisa_domain.tokens import TokenStore
from local_mode.resources import LocalResources
from tests.conftest import ADMIN_GROUP
from tests.support.lambda_state import fresh_authorizer
from tests.support.oidc_issuer import IdentityProvider, KeyPair
from tests.unit.conftest import Workflows
from tests.unit.identity_harness import (
    API_GROUP,
    Harness,
    make_harness,
    record_dynamodb_calls,
    tokens_table_items,
)

DAY = 86_400


def api_user_jwt(harness: Harness, username: str = "bob", groups: tuple[str, ...] = ("team-a",)) -> str:
    return harness.jwt(username, [API_GROUP, *groups])


def admin_jwt(harness: Harness) -> str:
    return harness.jwt("alice", [ADMIN_GROUP])


def store_calls() -> list[str]:
    """DynamoDB calls of the admin API's token store from now on."""
    return record_dynamodb_calls(admin_handler.token_service().store._client)


# ------------------------------------------------------------------------------------ lifecycle


def test_lifecycle_create_use_list_get_revoke(harness: Harness, resources: LocalResources) -> None:
    user = api_user_jwt(harness)
    assert harness.request("GET", "/models", user)[0] == 200  # JWTs work on the admin API
    calls = store_calls()

    status, created = harness.request(
        "POST", "/api-tokens", user, body={"groups": ["team-a"], "name": "laptop"}
    )
    assert status == 201, created
    value, token_id = created["token"], created["tokenId"]
    assert value.startswith("lisa_")
    assert created["username"] == "bob"
    assert created["groups"] == ["team-a"]
    assert created["name"] == "laptop"
    assert created["createdBy"] == "bob"
    assert created["expired"] is False
    assert abs(created["tokenExpiration"] - (time.time() + 90 * DAY)) < 60
    assert "tokenHash" not in created

    # Stored as its SHA-256 hash only.
    [item] = tokens_table_items(resources)
    assert item["tokenHash"] == {"S": hashlib.sha256(value.encode()).hexdigest()}
    assert value not in repr(item)

    # The token works through the authorizer, as bob with the token's groups.
    fresh_authorizer()
    result = authorizer_handler.authenticator().authenticate(value)
    assert (result.username, result.groups, result.method) == ("bob", ("team-a",), "api-token")
    assert harness.request("GET", "/models", value)[0] == 200

    status, listed = harness.request("GET", "/api-tokens", user)
    assert status == 200
    assert [token["tokenId"] for token in listed["tokens"]] == [token_id]
    assert "nextToken" not in listed
    assert all("token" not in token and "tokenHash" not in token for token in listed["tokens"])

    status, got = harness.request("GET", f"/api-tokens/{token_id}", value)  # the token sees itself
    assert status == 200
    assert got == {key: val for key, val in created.items() if key != "token"}

    status, revoked = harness.request("DELETE", f"/api-tokens/{token_id}", user)
    assert status == 200
    assert revoked["tokenId"] == token_id
    assert tokens_table_items(resources) == []

    fresh_authorizer()  # a fresh authorizer container; in AWS: the cache TTL has passed
    assert harness.request("GET", "/models", value)[0] == 401
    assert harness.request("GET", f"/api-tokens/{token_id}", user)[0] == 404
    assert harness.request("DELETE", f"/api-tokens/{token_id}", user)[0] == 404
    assert "Scan" not in calls  # by-id and per-user reads are Queries; the by-value read is GetItem
    assert {"Query", "TransactWriteItems"} <= set(calls)  # each write also bumps the tokens version


def test_revoked_token_is_refused_by_a_warm_authorizer_at_once(harness: Harness) -> None:
    """The authorizer Lambda itself caches nothing per token (only API Gateway's TTL applies)."""
    value, token_id = harness.api_token("bob", ["team-a"])
    assert harness.request("GET", "/models", value)[0] == 200
    assert harness.request("DELETE", f"/api-tokens/{token_id}", admin_jwt(harness))[0] == 200
    assert harness.request("GET", "/models", value)[0] == 401


def test_admin_creates_for_any_user_with_any_groups(harness: Harness) -> None:
    status, created = harness.request(
        "POST",
        "/api-tokens",
        admin_jwt(harness),
        body={"username": "dave", "groups": [ADMIN_GROUP, "team-z"], "name": "ci"},
    )
    assert status == 201, created
    assert (created["username"], created["groups"], created["createdBy"]) == (
        "dave",
        [ADMIN_GROUP, "team-z"],
        "alice",
    )
    # dave's token is an admin credential because it carries the admin group.
    status, _ = harness.request("POST", "/models", created["token"], body={"modelId": "x"})
    assert status == 422  # past the admin-only gate, stopped by validation


def test_admin_token_for_another_user_defaults_to_no_groups(harness: Harness) -> None:
    status, created = harness.request("POST", "/api-tokens", admin_jwt(harness), body={"username": "dave"})
    assert status == 201
    assert created["groups"] == []


def test_management_key_must_name_the_user(harness: Harness) -> None:
    key = harness.resources.management_key
    status, body = harness.request("POST", "/api-tokens", key, body={})
    assert status == 400
    assert "username" in body["message"]
    status, created = harness.request("POST", "/api-tokens", key, body={"username": "erin"})
    assert status == 201
    assert created["createdBy"] == "lisa-management-key"


# ------------------------------------------------------------------------------------ lifetimes


def test_expired_token_is_refused(harness: Harness) -> None:
    value, _ = harness.api_token("bob", ["team-a"], expires_in=-1)
    assert harness.request("GET", "/models", value)[0] == 401


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(-10, 400), (0, 400), (91 * DAY, 400), (3650 * DAY, 400), (DAY, 201), (90 * DAY, 201)],
)
def test_token_expiration_bounds(
    harness: Harness, resources: LocalResources, offset: int, expected: int
) -> None:
    expiration = int(time.time()) + offset
    status, body = harness.request(
        "POST", "/api-tokens", api_user_jwt(harness), body={"tokenExpiration": expiration}
    )
    assert status == expected, body
    if expected == 400:
        assert "tokenExpiration" in body["message"]
        assert tokens_table_items(resources) == []
    else:
        assert body["tokenExpiration"] == expiration


def test_configured_maximum_lifetime(
    resources: LocalResources,
    workflows: Workflows,
    oidc_issuer: IdentityProvider,
    oidc_key: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = make_harness(resources, oidc_issuer, oidc_key, monkeypatch, token_max_lifetime_days=7)
    user = api_user_jwt(harness)
    now = int(time.time())
    status, body = harness.request("POST", "/api-tokens", user, body={"tokenExpiration": now + 8 * DAY})
    assert status == 400
    assert "tokenExpiration" in body["message"] and "7 days" in body["message"]
    status, body = harness.request("POST", "/api-tokens", user, body={})
    assert status == 201
    assert abs(body["tokenExpiration"] - (now + 7 * DAY)) < 60


@pytest.mark.parametrize("value", ["0", "x", "3651"])
def test_bad_maximum_lifetime_setting_fails_loudly(value: str) -> None:
    with pytest.raises(SettingsError, match="TOKEN_MAX_LIFETIME_DAYS"):
        AdminApiSettings.from_env({"MODELS_TABLE_NAME": "models", "TOKEN_MAX_LIFETIME_DAYS": value})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bogus": 1}, "body.bogus"),
        ({"groups": "team-a"}, "body.groups"),
        ({"groups": ["has space"]}, "body.groups.0"),
        ({"name": "n" * 129}, "body.name"),
        ({"tokenExpiration": "tomorrow"}, "body.tokenExpiration"),
        ({"username": ""}, "body.username"),
    ],
)
def test_invalid_bodies_name_the_field(
    harness: Harness, resources: LocalResources, body: dict[str, Any], field: str
) -> None:
    status, answer = harness.request("POST", "/api-tokens", admin_jwt(harness), body=body)
    assert status == 422
    assert field in [problem["field"] for problem in answer["errors"]]
    assert tokens_table_items(resources) == []


# ---------------------------------------------------------------------------------- permissions


def test_users_outside_the_api_group_cannot_create(harness: Harness, resources: LocalResources) -> None:
    outsider = harness.jwt("carol", ["team-b"])
    for body in ({}, {"bogus": True}, {"groups": "not-a-list"}):  # 403 whatever the body
        status, answer = harness.request("POST", "/api-tokens", outsider, body=body)
        assert status == 403
        assert API_GROUP in answer["message"]
    assert tokens_table_items(resources) == []


def test_api_user_creates_only_for_itself(harness: Harness) -> None:
    status, body = harness.request("POST", "/api-tokens", api_user_jwt(harness), body={"username": "carol"})
    assert status == 403
    assert "username" in body["message"]


def test_api_user_grants_only_its_own_groups(harness: Harness) -> None:
    user = api_user_jwt(harness, groups=("team-a", "team-b"))
    status, body = harness.request(
        "POST", "/api-tokens", user, body={"groups": ["team-a", ADMIN_GROUP, "team-c"]}
    )
    assert status == 403
    assert "groups" in body["message"] and ADMIN_GROUP in body["message"] and "team-c" in body["message"]
    status, body = harness.request("POST", "/api-tokens", user, body={"groups": ["team-b"]})
    assert status == 201
    assert body["groups"] == ["team-b"]
    status, body = harness.request("POST", "/api-tokens", user, body={})  # default: all its groups
    assert status == 201
    assert set(body["groups"]) == {API_GROUP, "team-a", "team-b"}


def test_api_token_cannot_mint_tokens(harness: Harness) -> None:
    value, _ = harness.api_token("bob", [API_GROUP, "team-a"])
    status, body = harness.request("POST", "/api-tokens", value, body={})
    assert status == 403
    assert "identity provider" in body["message"]


def test_users_see_and_revoke_only_their_own(harness: Harness) -> None:
    bob_value, bob_id = harness.api_token("bob", ["team-a"])
    _, carol_id = harness.api_token("carol", ["team-b"])
    bob = harness.jwt("bob", ["team-a"])  # not in the API group: may still list and revoke its own

    status, listed = harness.request("GET", "/api-tokens", bob)
    assert status == 200
    assert [token["tokenId"] for token in listed["tokens"]] == [bob_id]
    assert harness.request("GET", f"/api-tokens/{carol_id}", bob)[0] == 404
    assert harness.request("DELETE", f"/api-tokens/{carol_id}", bob)[0] == 404
    assert harness.request("GET", "/api-tokens", bob, headers={})[0] == 200
    status, body = harness.request("GET", "/api-tokens?username=carol", bob)
    assert status == 403
    assert "username" in body["message"]
    assert harness.request("GET", "/api-tokens?username=bob", bob)[0] == 200
    assert harness.request("GET", "/api-tokens/not-a-token-id", bob)[0] == 404

    assert harness.request("DELETE", f"/api-tokens/{bob_id}", bob)[0] == 200
    assert harness.request("GET", "/models", bob_value)[0] == 401
    assert harness.request("GET", f"/api-tokens/{carol_id}", admin_jwt(harness))[0] == 200


def test_non_admins_still_cannot_change_models(harness: Harness) -> None:
    user = api_user_jwt(harness)
    assert harness.request("POST", "/models", user, body={})[0] == 403
    assert harness.request("DELETE", "/models/m1", user)[0] == 403


# ----------------------------------------------------------------------------------- pagination


def test_admin_lists_everything_in_pages(harness: Harness) -> None:
    ids = {harness.api_token(user, [])[1] for user in ("u1", "u1", "u2", "u3", "u4")}
    admin = admin_jwt(harness)
    seen: list[str] = []
    pages = 0
    query = "/api-tokens?limit=2"
    while True:
        status, page = harness.request("GET", query, admin)
        assert status == 200
        pages += 1
        assert len(page["tokens"]) <= 2
        seen += [token["tokenId"] for token in page["tokens"]]
        if "nextToken" not in page:
            break
        query = f"/api-tokens?limit=2&nextToken={page['nextToken']}"
    assert pages == 3
    assert sorted(seen) == sorted(ids)

    status, page = harness.request("GET", "/api-tokens?username=u1", admin)
    assert status == 200
    assert {token["username"] for token in page["tokens"]} == {"u1"}
    assert len(page["tokens"]) == 2


def test_user_listing_pages_through_its_index(harness: Harness) -> None:
    mine = {harness.api_token("bob", [])[1] for _ in range(5)}
    harness.api_token("carol", [])
    bob = harness.jwt("bob", [])
    calls = store_calls()
    seen: list[str] = []
    query = "/api-tokens?limit=2"
    while True:
        status, page = harness.request("GET", query, bob)
        assert status == 200, page
        seen += [token["tokenId"] for token in page["tokens"]]
        if "nextToken" not in page:
            break
        query = f"/api-tokens?limit=2&nextToken={page['nextToken']}"
    assert sorted(seen) == sorted(mine)
    assert set(calls) == {"Query"}


def _page_through(harness: Harness, credential: str, query: str) -> tuple[list[str], list[str]]:
    """Every tokenId of a paged listing and every nextToken it handed out."""
    seen: list[str] = []
    cursors: list[str] = []
    next_query = query
    while True:
        status, page = harness.request("GET", next_query, credential)
        assert status == 200, page
        seen += [token["tokenId"] for token in page["tokens"]]
        if "nextToken" not in page:
            return seen, cursors
        cursors.append(page["nextToken"])
        next_query = f"{query}&nextToken={page['nextToken']}"


def test_next_token_carries_no_token_hash(harness: Harness, resources: LocalResources) -> None:
    for user in ("u1", "u1", "u1", "u2", "u3"):
        harness.api_token(user, [])
    hashes = [item["tokenHash"]["S"] for item in tokens_table_items(resources)]
    admin = admin_jwt(harness)
    _, all_cursors = _page_through(harness, admin, "/api-tokens?limit=1")
    _, user_cursors = _page_through(harness, admin, "/api-tokens?limit=1&username=u1")
    cursors = all_cursors + user_cursors
    assert len(all_cursors) == 4 and len(user_cursors) == 2
    for cursor in cursors:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        assert set(json.loads(decoded)) == {"tokenId"}
        for token_hash in hashes:
            assert token_hash not in cursor and token_hash not in decoded
            assert token_hash[:16] not in decoded


def test_paging_survives_revoking_every_token_already_listed(harness: Harness) -> None:
    ids = {harness.api_token("u1", [])[1] for _ in range(5)}
    admin = admin_jwt(harness)
    seen: list[str] = []
    query = "/api-tokens?limit=2"
    while True:
        status, page = harness.request("GET", query, admin)
        assert status == 200, page
        for token in page["tokens"]:
            seen.append(token["tokenId"])
            assert harness.request("DELETE", f"/api-tokens/{token['tokenId']}", admin)[0] == 200
        if "nextToken" not in page:
            break
        query = f"/api-tokens?limit=2&nextToken={page['nextToken']}"
    assert sorted(seen) == sorted(ids)


def test_next_token_of_a_revoked_token_or_another_listing_is_400(harness: Harness) -> None:
    for user in ("u1", "u1", "u2", "u2"):
        harness.api_token(user, [])
    admin = admin_jwt(harness)
    status, page = harness.request("GET", "/api-tokens?limit=1&username=u2", admin)
    assert status == 200
    status, body = harness.request(
        "GET", f"/api-tokens?limit=1&username=u1&nextToken={page['nextToken']}", admin
    )
    assert status == 400 and body["message"].startswith("nextToken:")
    starts_next = json.loads(
        base64.urlsafe_b64decode(page["nextToken"] + "=" * (-len(page["nextToken"]) % 4))
    )
    assert harness.request("DELETE", f"/api-tokens/{starts_next['tokenId']}", admin)[0] == 200
    status, body = harness.request(
        "GET", f"/api-tokens?limit=1&username=u2&nextToken={page['nextToken']}", admin
    )
    assert status == 400
    assert body["message"] == (
        "nextToken: the token the next page starts with was revoked or expired; list from the start"
    )
    assert harness.request("GET", "/api-tokens?limit=1&username=u2", admin)[0] == 200


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=0", 422),
        ("limit=101", 422),
        ("nextToken=garbage", 400),
        ("nextToken=e30", 400),  # {}
        ("nextToken=eyJ0b2tlbklkIjogIi4uLyJ9", 400),  # {"tokenId": "../"}
        ("nextToken=eyJ0b2tlbkhhc2giOiB7IlMiOiAiYWJjIn19", 400),  # an old-style cursor with a hash
    ],
)
def test_bad_paging_parameters(harness: Harness, query: str, status: int) -> None:
    answer_status, body = harness.request("GET", f"/api-tokens?{query}", admin_jwt(harness))
    assert answer_status == status
    assert ("limit" if "limit" in query else "nextToken") in body["message"]


def test_only_the_admin_list_all_scans(harness: Harness) -> None:
    _, token_id = harness.api_token("bob", [])
    admin = admin_jwt(harness)
    calls = store_calls()
    assert harness.request("GET", f"/api-tokens/{token_id}", admin)[0] == 200
    assert harness.request("GET", "/api-tokens?username=bob", admin)[0] == 200
    assert harness.request("DELETE", f"/api-tokens/{token_id}", admin)[0] == 200
    assert "Scan" not in calls
    assert harness.request("GET", "/api-tokens", admin)[0] == 200
    assert calls.count("Scan") == 1


def test_store_delete_is_conditional(resources: LocalResources) -> None:
    store = TokenStore(resources.tokens_table)
    _, record = store.create(username="bob", groups=[])
    assert store.get_by_id(record.tokenId) == record
    assert store.delete(record) is True
    assert store.delete(record) is False
    assert store.get_by_id(record.tokenId) is None


# ------------------------------------------------------------------------------- the factory


def test_authenticator_from_env_wires_every_credential(
    harness: Harness, resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    authenticator = authenticator_from_env()
    assert authenticator.authenticate(resources.management_key).method == "management-key"
    value, _ = harness.api_token("bob", ["team-a"])
    assert authenticator.authenticate(value).method == "api-token"
    assert authenticator.authenticate(harness.jwt("erin", [ADMIN_GROUP])).is_admin

    monkeypatch.delenv("OIDC_ISSUER")
    without_oidc = authenticator_from_env()
    jwt = harness.jwt("erin", [ADMIN_GROUP])
    with pytest.raises(Unauthorized):
        without_oidc.authenticate(jwt)


def test_oidc_settings_are_checked_at_start_up() -> None:
    assert jwt_verifier_from_env(ADMIN_GROUP, {}) is None
    with pytest.raises(ValueError, match="OIDC_CLIENT_ID"):
        jwt_verifier_from_env(ADMIN_GROUP, {"OIDC_ISSUER": "https://idp.example.com"})
    with pytest.raises(ValueError, match="http_timeout"):
        jwt_verifier_from_env(ADMIN_GROUP, {}, http_timeout=MAX_OIDC_HTTP_TIMEOUT + 1)
