"""GET /usage (admins, paginated, per user/model/group) and GET /usage/me through the admin API handler."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from admin_api import handler
from lisa_contracts.settings import AdminApiSettings
from lisa_domain.auth import Principal
from lisa_domain.usage import Counts, FlushBatch, UsageKey, UsageStore
from local_mode.resources import LocalResources
from tests.support.lambda_state import configure, fresh_admin_api
from tests.unit.helpers import ADMIN, USER_A, FakeContext, rest_event

D1, D2 = "2026-12-01", "2026-12-02"


@pytest.fixture
def usage(resources: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[UsageStore]:
    configure(
        monkeypatch,
        AdminApiSettings.build(models_table=resources.models_table, usage_table=resources.usage_table),
    )
    fresh_admin_api()
    store = UsageStore(resources.usage_table, boto3.client("dynamodb"))
    rows = {
        UsageKey(D1, "bob", "chat"): Counts(3, 1, 30, 12, {"team-a"}),
        UsageKey(D2, "bob", "embed"): Counts(2, 0, 8, 0, {"team-a"}),
        UsageKey(D1, "carol", "chat"): Counts(1, 0, 5, 5, {"team-b"}),
        UsageKey(D1, "dave", "chat"): Counts(4, 0, 1, 1, {"team-a", "team-b"}),
        UsageKey("2026-11-30", "bob", "chat"): Counts(100, 0, 1, 1, {"team-a"}),
    }
    store.flush("test", FlushBatch(1, rows, {}))
    yield store
    fresh_admin_api()


def call(path: str, query: dict[str, str] | None = None, principal: Principal = ADMIN) -> tuple[int, Any]:
    response = handler.lambda_handler(
        rest_event("GET", path, query=query, principal=principal), FakeContext()
    )
    return response["statusCode"], json.loads(response["body"])


def test_admins_read_totals_per_user_model_and_group(usage: UsageStore) -> None:
    status, body = call("/usage", {"from": D1, "to": D2})
    assert status == 200 and body["groupBy"] == "user" and "nextToken" not in body
    assert [(row["user"], row["requests"], row["totalTokens"]) for row in body["usage"]] == [
        ("bob", 5, 50),
        ("carol", 1, 10),
        ("dave", 4, 2),
    ]
    _, by_model = call("/usage", {"from": D1, "to": D2, "groupBy": "model"})
    assert [(row["model"], row["requests"], row["errors"]) for row in by_model["usage"]] == [
        ("chat", 8, 1),
        ("embed", 2, 0),
    ]
    _, by_group = call("/usage", {"from": D1, "to": D2, "groupBy": "group"})
    assert [(row["group"], row["requests"]) for row in by_group["usage"]] == [("team-a", 9), ("team-b", 5)]


def test_usage_pages_follow_next_token(usage: UsageStore) -> None:
    names, query = [], {"from": D1, "to": D2, "limit": "2"}
    while True:
        status, body = call("/usage", query)
        assert status == 200 and len(body["usage"]) <= 2
        names += [row["user"] for row in body["usage"]]
        if "nextToken" not in body:
            break
        query = {**query, "nextToken": body["nextToken"]}
    assert names == ["bob", "carol", "dave"]


def test_non_admins_read_only_their_own_usage(usage: UsageStore) -> None:
    status, body = call("/usage", {"from": D1, "to": D2}, principal=USER_A)
    assert status == 403 and "/usage/me" in body["message"]
    status, mine = call("/usage/me", {"from": D1, "to": D2}, principal=USER_A)
    assert status == 200 and mine["username"] == "bob"
    assert [(row["day"], row["model"], row["requests"]) for row in mine["usage"]] == [
        (D1, "chat", 3),
        (D2, "embed", 2),
    ]
    assert mine["total"] == {
        "requests": 5,
        "errors": 1,
        "promptTokens": 38,
        "completionTokens": 12,
        "totalTokens": 50,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": D2, "to": D1}, "to"),
        ({"from": "2026-01-01", "to": "2026-12-01"}, "to"),
        ({"groupBy": "team"}, "groupBy"),
        ({"limit": "0"}, "limit"),
        ({"nextToken": "garbage!"}, "nextToken"),
    ],
)
def test_bad_parameters_are_refused_naming_them(usage: UsageStore, query: dict[str, str], field: str) -> None:
    status, body = call("/usage", {"from": D1, "to": D2} | query)
    assert status in (400, 422) and field in body["message"]


def test_without_a_usage_table_the_routes_say_so(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USAGE_TABLE_NAME")
    fresh_admin_api()
    status, body = call("/usage/me", principal=USER_A)
    assert status == 400 and "no usage table" in body["message"]


def _create_token(body: dict[str, Any]) -> tuple[int, Any]:
    event = rest_event("POST", "/api-tokens", body=body, principal=ADMIN)
    response = handler.lambda_handler(event, FakeContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_tokens_own_rate_limit_may_not_exceed_its_users(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(
        monkeypatch,
        AdminApiSettings.build(
            models_table=resources.models_table,
            usage_limits='{"rateLimit": {"rpm": 60}, "groups": {"team-a": {"rateLimit": {"rpm": 100, "tpm": 1000}}}}',
        ),
    )
    fresh_admin_api()
    tokens_before = boto3.client("dynamodb").scan(TableName=resources.tokens_table)["Count"]
    status, body = _create_token({"username": "bob", "groups": ["team-b"], "rateLimit": {"rpm": 61}})
    assert status == 400 and "rateLimit.rpm: at most 60" in body["message"]
    status, body = _create_token({"username": "bob", "groups": ["team-a"], "rateLimit": {"rpm": 100}})
    assert status == 400 and "rateLimit.tpm: at most 1000" in body["message"]  # no tpm: unlimited
    assert boto3.client("dynamodb").scan(TableName=resources.tokens_table)["Count"] == tokens_before
    status, body = _create_token(
        {
            "username": "bob",
            "groups": ["team-a"],
            "rateLimit": {"rpm": 100, "tpm": 500},
            "monthlyTokenBudget": 9,
        }
    )
    assert status == 201
    assert body["rateLimit"] == {"rpm": 100, "tpm": 500} and body["monthlyTokenBudget"] == 9
    status, body = _create_token({"username": "bob", "rateLimit": {"rpm": 0}})
    assert status == 422 and "rateLimit.rpm" in body["message"]
    fresh_admin_api()
