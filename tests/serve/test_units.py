"""Unit checks of the serve app's pieces that need no server: settings, body checks, the auth cache."""

from __future__ import annotations

import asyncio

import pytest

from lisa_domain.auth import Authenticator
from lisa_domain.tokens import TokenRecord
from serve.auth import RecordingTokenStore, ServeAuthenticator
from serve.bodies import Endpoint, parse
from serve.config import DEFAULT_MAX_BODY_BYTES, ServeConfig
from serve.errors import ServeError


def test_config_defaults_and_validation() -> None:
    config = ServeConfig.from_env({"MODELS_TABLE_NAME": "models"})
    assert config.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 4 * 1024 * 1024
    assert config.registry_poll_seconds == 0.25
    assert config.backend_retries == 0
    with pytest.raises(ValueError, match="MODELS_TABLE_NAME"):
        ServeConfig.from_env({})
    with pytest.raises(ValueError, match="LISA_SERVE_MAX_BODY_BYTES"):
        ServeConfig.from_env({"MODELS_TABLE_NAME": "m", "LISA_SERVE_MAX_BODY_BYTES": "big"})
    with pytest.raises(ValueError, match="LISA_SERVE_ACCESS_LOG"):
        ServeConfig.from_env({"MODELS_TABLE_NAME": "m", "LISA_SERVE_ACCESS_LOG": "maybe"})


def test_parse_passes_known_parameters_only() -> None:
    body = parse(b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_k": 5}', Endpoint.CHAT)
    assert body["top_k"] == 5
    for bad in ("api_key", "api_base", "base_url", "metadata", "litellm_params", "mock_response", "timeout"):
        with pytest.raises(ServeError) as caught:
            parse(f'{{"model": "m", "messages": [], "{bad}": 1}}'.encode(), Endpoint.CHAT)
        assert caught.value.status == 400
    with pytest.raises(ServeError) as caught:
        parse(b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": true}', Endpoint.CHAT)
    assert caught.value.param == "max_tokens"


class _FakeStore(RecordingTokenStore):
    def __init__(self, record: TokenRecord) -> None:
        super().__init__("unused", client=object())
        self.record = record
        self.reads = 0

    def find(self, value: str) -> TokenRecord | None:
        self.reads += 1
        if self.record.expired():
            return self.record  # the authenticator checks expiry itself
        self._found[self.record.tokenHash] = self.record
        return self.record


class _Clock:
    """Wall-clock stand-in for the modules that read ``time.time()``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_auth_cache_never_outlives_token_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    from lisa_domain import tokens
    from lisa_domain.tokens import hash_token
    from serve import auth as serve_auth

    clock = _Clock(1_800_000_000.0)
    monkeypatch.setattr(serve_auth, "time", clock)
    monkeypatch.setattr(tokens, "time", clock)
    value = "lisa_value"
    record = TokenRecord(
        tokenId="t",
        tokenHash=hash_token(value),
        username="u",
        groups=["g"],
        createdAt=int(clock.now),
        tokenExpiration=int(clock.now) + 1,
    )
    store = _FakeStore(record)
    auth = ServeAuthenticator(Authenticator(admin_group="admins", tokens=store), tokens=store, ttl=60)

    async def run() -> None:
        headers = {"authorization": f"Bearer {value}"}
        assert (await auth.principal(headers)).username == "u"
        clock.now += 0.5
        assert (await auth.principal(headers)).username == "u"
        assert store.reads == 1  # the second call came from the cache
        clock.now = float(record.tokenExpiration or 0)  # the token's last moment has passed
        with pytest.raises(ServeError) as caught:
            await auth.principal(headers)
        assert caught.value.status == 401
        assert store.reads == 2  # the cache did not answer for an expired token

    asyncio.run(run())
