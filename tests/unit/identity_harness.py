"""The admin API as a client meets it, in-process: the real authorizer, then the real admin handler.

Requests go through ``local_mode.apigw.ApiGatewayAdapter`` (API Gateway's REST proxy semantics:
authorizer first, 401 on ``Unauthorized``, its context in ``requestContext.authorizer``) without a
socket. JWTs come from a real OIDC issuer on 127.0.0.1 (``tests.support.oidc_issuer``). Every
credential the harness makes is remembered in ``secrets`` so log tests can search for them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from admin_api import handler as admin_handler
from authorizer import handler as authorizer_handler
from lisa_contracts.names import TOKENS_TABLE_KEY, TOKENS_VERSION_KEY
from lisa_contracts.settings import AdminApiSettings, AuthorizerSettings
from lisa_domain.tokens import TokenStore
from local_mode.apigw import ApiGatewayAdapter
from local_mode.resources import LocalResources
from tests.conftest import ADMIN_GROUP
from tests.support.lambda_state import configure, fresh_admin_api, fresh_authorizer
from tests.support.oidc_issuer import IdentityProvider, KeyPair, sign

API_GROUP = "lisa-api-users"
CLIENT_ID = "lisa-admin-client"


@dataclass
class Harness:
    resources: LocalResources
    issuer: IdentityProvider
    key: KeyPair
    secrets: list[str] = field(default_factory=list)
    adapter: ApiGatewayAdapter = field(init=False)

    def __post_init__(self) -> None:
        self.adapter = ApiGatewayAdapter(
            admin_handler.lambda_handler, authorizer_handler.lambda_handler, stage="prod"
        )
        self.secrets.append(self.resources.management_key)

    @property
    def store(self) -> TokenStore:
        return TokenStore(self.resources.tokens_table)

    # ---- credentials -------------------------------------------------------------------------
    def jwt(
        self,
        username: str,
        groups: list[str],
        *,
        key: KeyPair | None = None,
        issuer: str | None = None,
        expires_in: int = 300,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer or self.issuer.issuer,
            "aud": CLIENT_ID,
            "sub": username,
            "iat": now - 10 if expires_in > 0 else now + expires_in - 600,
            "exp": now + expires_in,
            "groups": groups,
        }
        token = sign(key or self.key, claims)
        self.secrets.append(token)
        return token

    def api_token(self, username: str, groups: list[str], *, expires_in: int = 3600) -> tuple[str, str]:
        """A stored API token: (value, tokenId)."""
        value, record = self.store.create(
            username=username, groups=groups, expiration=int(time.time()) + expires_in, created_by="test"
        )
        self.secrets.append(value)
        return value, record.tokenId

    # ---- requests ----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        credential: str | None = None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        sent = dict(headers or {})
        if credential is not None:
            sent["Authorization"] = f"Bearer {credential}"
        if body is not None:
            sent["Content-Type"] = "application/json"
        raw = json.dumps(body).encode() if body is not None else b""
        response = self.adapter.handle(method, path, list(sent.items()), raw)
        text = response.body.decode()
        if method == "POST" and response.status == 201:
            created = json.loads(text)
            if isinstance(created, dict) and isinstance(created.get("token"), str):
                self.secrets.append(created["token"])
        return response.status, json.loads(text) if text else None


def record_dynamodb_calls(client: Any) -> list[str]:
    """Every DynamoDB operation ``client`` makes from now on, by name (``Query``, ``Scan``, ...)."""
    calls: list[str] = []

    def before_call(model: Any, **_: Any) -> None:
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb.*", before_call)
    return calls


def make_harness(
    resources: LocalResources,
    issuer: IdentityProvider,
    key: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
    **admin_api: Any,
) -> Harness:
    """Point the authorizer and the admin API (``AdminApiSettings`` fields ``admin_api`` on top) at
    ``resources`` and ``issuer``; fresh singletons."""
    configure(
        monkeypatch,
        AuthorizerSettings.build(
            tokens_table=resources.tokens_table,
            management_key_secret_arn=resources.management_key_secret_arn,
            admin_group=ADMIN_GROUP,
            oidc_issuer=issuer.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_groups_claim="groups",
        ),
        AdminApiSettings.build(
            models_table=resources.models_table,
            tokens_table=resources.tokens_table,
            admin_group=ADMIN_GROUP,
            api_group=API_GROUP,
            **admin_api,
        ),
    )
    fresh_authorizer()
    fresh_admin_api()
    return Harness(resources, issuer, key)


def tokens_table_items(resources: LocalResources) -> list[dict[str, Any]]:
    """The stored tokens (the table's ``#version`` item, which serve replicas follow, left out)."""
    client = boto3.client("dynamodb")
    items = client.scan(TableName=resources.tokens_table, ConsistentRead=True)["Items"]
    return [item for item in items if item[TOKENS_TABLE_KEY]["S"] != TOKENS_VERSION_KEY]
