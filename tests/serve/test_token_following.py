"""API tokens answered from memory: every serve replica follows the tokens table (issue 15).

Two in-process replicas (each its own app, registry follower and token follower) share the session's
moto server. Waits are bounded polls, never sleeps; the one-second bound is asserted on the measured
time from the write's return to the effect on both replicas.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from admin_api.tokens import CreateTokenRequest, TokenService, TokenSettings
from lisa_contracts.names import TOKENS_TABLE_KEY, TOKENS_VERSION_KEY
from lisa_domain.auth import Authenticator, Principal
from lisa_domain.errors import Unavailable
from lisa_domain.tokens import RECENT_CHANGES, TokenStore, hash_token
from local_mode.resources import create_resources
from serve.app import Services, build_services, create_app
from serve.auth import ServeAuthenticator
from serve.config import ServeConfig
from serve.errors import ServeError
from serve.token_follower import TokenFollower
from tests.conftest import ADMIN_GROUP
from tests.serve.conftest import ServeEnv
from tests.support.servers import ServerThread
from tests.support.waiting import wait_for

PROPAGATION_LIMIT = 1.0
ADMIN = Principal("root", (ADMIN_GROUP,), True, "jwt")


@pytest.fixture(scope="module")
def two_replicas(moto_url: str) -> Iterator[tuple[list[str], TokenStore, Any]]:
    """Two replicas at the default poll interval (0.25 s), the management key refused (the default)."""
    resources = create_resources("lisa-token-following", endpoint_url=moto_url)
    config = ServeConfig(
        models_table=resources.models_table,
        tokens_table=resources.tokens_table,
        management_key_secret_arn=resources.management_key_secret_arn,
        admin_group=ADMIN_GROUP,
    )
    servers = [
        ServerThread(create_app(build_services(config, endpoint_url=moto_url))).start() for _ in range(2)
    ]
    try:
        yield (
            [server.url for server in servers],
            TokenStore(resources.tokens_table, boto3.client("dynamodb", endpoint_url=moto_url)),
            resources,
        )
    finally:
        for server in servers:
            server.stop()


def _status(url: str, token: str) -> int:
    return httpx.get(url + "/v2/serve/models", headers={"Authorization": f"Bearer {token}"}).status_code


def _until_both(urls: list[str], token: str, status: int) -> float:
    """Seconds from now until both replicas answer ``token`` with ``status`` (bounded poll)."""
    started = time.monotonic()
    pending = set(urls)

    def settled() -> bool:
        pending.difference_update({url for url in pending if _status(url, token) == status})
        return not pending

    wait_for(settled, 5.0, f"both replicas answering {status}", interval=0.005)
    return time.monotonic() - started


def test_creation_and_revocation_reach_both_replicas_within_a_second(
    two_replicas: tuple[list[str], TokenStore, Any],
) -> None:
    urls, store, _ = two_replicas
    service = TokenService(store, TokenSettings(api_group=None, max_lifetime_days=90))
    times = []
    for index in range(3):
        value, record = service.create(ADMIN, CreateTokenRequest(username=f"user-{index}", groups=["team-a"]))
        times.append(_until_both(urls, value, 200))
        service.revoke(ADMIN, record.tokenId)
        times.append(_until_both(urls, value, 401))
    assert max(times) < PROPAGATION_LIMIT, times


def test_requests_with_api_tokens_make_no_remote_call(
    two_replicas: tuple[list[str], TokenStore, Any], moto_url: str
) -> None:
    urls, store, resources = two_replicas
    value, _ = store.create(username="quiet", groups=[])
    _until_both(urls, value, 200)
    config = ServeConfig(models_table=resources.models_table, tokens_table=resources.tokens_table)
    services = build_services(config, endpoint_url=moto_url)
    assert services.tokens is not None
    services.tokens.refresh()
    calls: list[str] = []
    services.tokens._store._client.meta.events.register(  # the follower's only AWS client
        "before-call.dynamodb.*", lambda model, **_: calls.append(model.name)
    )
    principal = asyncio.run(services.auth.principal({"Authorization": f"Bearer {value}"}))
    assert (principal.username, principal.method) == ("quiet", "api-token")
    assert calls == []


def test_management_key_refused_by_default_and_accepted_when_allowed(
    two_replicas: tuple[list[str], TokenStore, Any], serve: ServeEnv
) -> None:
    urls, _, resources = two_replicas
    assert _status(urls[0], resources.management_key) == 401
    assert serve.services.config.allow_management_key
    assert [model.id for model in serve.client("management").models.list().data]


def test_expiry_is_checked_on_every_request_to_the_second(serve: ServeEnv) -> None:
    expiry = int(time.time()) + 3600
    value, _ = serve.tokens.create(username="ends", groups=["team-a"], expiration=expiry)
    serve.wait_for_tokens()
    now = [expiry - 0.001]
    auth = ServeAuthenticator(
        Authenticator(admin_group=ADMIN_GROUP), tokens=serve.services.tokens, ttl=0, clock=lambda: now[0]
    )
    headers = {"Authorization": f"Bearer {value}"}

    principal = asyncio.run(auth.principal(headers))
    assert (principal.username, principal.expires_at) == ("ends", expiry)
    now[0] = float(expiry)  # the expiry second itself: refused, with the token still in memory
    with pytest.raises(ServeError) as caught:
        asyncio.run(auth.principal(headers))
    assert (caught.value.status, caught.value.code) == (401, "invalid_api_key")


class _GatedStore(TokenStore):
    """A token store whose first full load waits for ``release`` (a slow first load)."""

    def __init__(self, store: TokenStore) -> None:
        super().__init__(store.table_name, store._client)
        self.release = threading.Event()

    def all_tokens(self) -> list[Any]:
        assert self.release.wait(10)
        return super().all_tokens()


def test_a_replica_is_not_ready_until_the_tokens_are_loaded(serve: ServeEnv, moto_url: str) -> None:
    value = serve.token_values["alice"]
    services = build_services(serve.services.config, endpoint_url=moto_url)
    gated = _GatedStore(serve.tokens)
    tokens = TokenFollower(gated, ADMIN_GROUP, poll_seconds=0.05)
    services = Services(
        services.config,
        services.follower,
        ServeAuthenticator(Authenticator(admin_group=ADMIN_GROUP), tokens=tokens, ttl=0),
        tokens,
    )
    server = ServerThread(create_app(services)).start()
    try:
        wait_for(lambda: services.follower.snapshot is not None, 5, "the registry loaded")
        ready = httpx.get(server.url + "/health/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not ready", "registryLoaded": True, "tokensLoaded": False}
        early = httpx.get(server.url + "/v2/serve/models", headers={"Authorization": f"Bearer {value}"})
        assert (early.status_code, early.json()["error"]["code"]) == (503, "not_ready")

        gated.release.set()
        wait_for(lambda: httpx.get(server.url + "/health/ready").status_code == 200, 5, "ready")
        body = httpx.get(server.url + "/health/readiness").json()
        assert body["tokensVersion"] == serve.tokens.version().version
        assert body["tokens"] >= len(serve.token_values)
        assert _status(server.url, value) == 200
    finally:
        server.stop()


# ---- the follower and the version item, step by step (refresh() called directly) ----------------------
@pytest.fixture
def table(moto_url: str, request: pytest.FixtureRequest) -> TokenStore:
    resources = create_resources(f"lisa-tf-{abs(hash(request.node.name)) % 10**8}", endpoint_url=moto_url)
    return TokenStore(resources.tokens_table, boto3.client("dynamodb", endpoint_url=moto_url))


def _reads(store: TokenStore) -> list[str]:
    calls: list[str] = []
    store._client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


def test_a_change_rereads_only_the_changed_tokens(table: TokenStore) -> None:
    kept = [table.create(username=f"u{index}", groups=["g"])[1] for index in range(3)]
    follower = TokenFollower(table, ADMIN_GROUP, poll_seconds=1)
    assert not follower.loaded
    assert follower.refresh() and follower.loaded and len(follower) == 3
    calls = _reads(table)
    assert follower.refresh() is False
    assert calls == ["GetItem"]  # the version item only

    value, added = table.create(username="new", groups=[ADMIN_GROUP])
    table.delete(kept[0])
    calls.clear()
    assert follower.refresh()
    assert calls.count("Scan") == 0 and calls.count("GetItem") == 3  # version item + the two tokens
    assert follower.lookup(kept[0].tokenHash) is None
    principal = follower.lookup(hash_token(value))
    assert principal is not None and principal.is_admin and principal.expires_at == added.tokenExpiration
    assert follower.version == table.version().version == 5


def test_a_replica_too_far_behind_reloads_everything(table: TokenStore) -> None:
    follower = TokenFollower(table, ADMIN_GROUP, poll_seconds=1)
    follower.refresh()
    created = [table.create(username=f"u{index}", groups=[])[1] for index in range(RECENT_CHANGES + 1)]
    version = table.version()
    assert len(version.changes) == RECENT_CHANGES and version.changed_since(0) is None
    calls = _reads(table)
    follower.refresh()
    assert "Scan" in calls
    assert len(follower) == len(created)


def test_a_resync_picks_up_a_deletion_made_outside_lisa(table: TokenStore) -> None:
    _, record = table.create(username="ttl", groups=[])
    follower = TokenFollower(table, ADMIN_GROUP, poll_seconds=1, resync_seconds=3600)
    follower.refresh()
    table._client.delete_item(TableName=table.table_name, Key={TOKENS_TABLE_KEY: {"S": record.tokenHash}})
    follower.refresh()
    assert follower.lookup(record.tokenHash) is not None  # no version change: not seen yet
    follower._loaded_at -= 3600
    follower.refresh()
    assert follower.lookup(record.tokenHash) is None


class _RacingClient:
    """The real client; before its first transaction another writer creates a token (a lost race)."""

    def __init__(self, store: TokenStore) -> None:
        self._real = store._client
        self._other = store
        self.transactions = 0

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions += 1
        if self.transactions == 1:
            self._other.create(username="other", groups=[])
        return self._real.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_write_that_loses_the_race_for_the_version_is_retried(table: TokenStore) -> None:
    racing = _RacingClient(table)
    _, record = TokenStore(table.table_name, racing).create(username="mine", groups=[])
    assert racing.transactions == 2
    version = table.version()
    assert version.version == 2 and version.changes[-1] == record.tokenHash
    assert len(set(version.changes)) == 2  # both changes listed, in order


def test_lasting_contention_is_unavailable_and_writes_nothing(
    table: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lisa_domain import tokens

    monkeypatch.setattr(tokens.time, "sleep", lambda _: None)

    class Always(_RacingClient):
        def transact_write_items(self, **kwargs: Any) -> Any:
            self._other.create(username="other", groups=[])
            return self._real.transact_write_items(**kwargs)

    with pytest.raises(Unavailable):
        TokenStore(table.table_name, Always(table)).create(username="mine", groups=[])
    assert all(record.username == "other" for record in table.all_tokens())


def test_the_version_item_is_no_token_to_listings_or_lookups(table: TokenStore) -> None:
    table.create(username="a", groups=[])
    page = table.list_all(10)
    assert [record.username for record in page.tokens] == ["a"] and page.next_token is None
    assert table.find(TOKENS_VERSION_KEY) is None  # a value is hashed: it never names the version item
    assert all(not token.token_hash.startswith("#") for token in table.all_tokens())
