"""Authentication for the serve API through ``lisa_domain.auth``, without blocking the event loop.

The management key is refused on the serve API unless ``LISA_SERVE_ALLOW_MANAGEMENT_KEY`` is true
(``serve_management_key``): clients use API tokens or JWTs, and a leaked management key (an
admin-API credential) does not also open every model.

The shared ``Authenticator`` makes blocking AWS calls (a DynamoDB key read for an API token, when
allowed a Secrets Manager read for the management key every minute), so it runs in a worker thread. A
successful result is reused for ``ttl`` seconds, keyed by the credential's SHA-256 (the value
itself is never kept): the hot path then costs a hash and a dictionary read. The reuse never
outlives an API token's expiry, so an expired token fails at once; a deleted (revoked) token fails
at most ``ttl`` seconds later. ``ttl = 0`` disables reuse. JWT results are not reused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from lisa_domain.auth import Authenticator, ManagementKey, Principal, credential_candidates
from lisa_domain.errors import Forbidden, Unauthorized
from lisa_domain.tokens import TokenRecord, TokenStore, hash_token
from serve.config import ServeConfig
from serve.errors import ServeError

_MAX_ENTRIES = 10_000
#: Which failure answers a request none of whose credentials is valid: the highest rank.
_FAILURE_RANK = {401: 0, 403: 1, 503: 2}


def serve_management_key(config: ServeConfig, secretsmanager: Any) -> ManagementKey | None:
    """The management key as a serve-API credential: ``None`` (refused like any unknown value, and
    never read from Secrets Manager) unless ``allow_management_key`` is set."""
    if not config.allow_management_key or not config.management_key_secret_arn:
        return None
    return ManagementKey(config.management_key_secret_arn, secretsmanager)


class RecordingTokenStore(TokenStore):
    """A ``TokenStore`` that remembers the records it found, so the cache can honour their expiry."""

    def __init__(self, table_name: str, client: Any = None) -> None:
        super().__init__(table_name, client)
        self._found: dict[str, TokenRecord] = {}
        self._lock = threading.Lock()

    def find(self, value: str) -> TokenRecord | None:
        record = super().find(value)
        if record is not None:
            with self._lock:
                if len(self._found) > _MAX_ENTRIES:
                    self._found.clear()
                self._found[record.tokenHash] = record
        return record

    def take(self, token_hash: str) -> TokenRecord | None:
        with self._lock:
            return self._found.pop(token_hash, None)


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    valid_until: float  # wall clock (token expiry is wall clock too)


class ServeAuthenticator:
    def __init__(
        self, authenticator: Authenticator, *, tokens: RecordingTokenStore | None, ttl: float
    ) -> None:
        self._authenticator = authenticator
        self._tokens = tokens
        self._ttl = ttl
        self._cache: dict[str, _Entry] = {}

    async def principal(self, headers: Mapping[str, str]) -> Principal:
        """The caller behind the first valid credential of ``credential_candidates`` (LISA's clients
        send one in two headers); otherwise ``ServeError`` 401 (none, or none valid), or the 403 or
        503 one of them met (after a 503, a retry may succeed)."""
        candidates = credential_candidates(headers)
        if not candidates:
            raise ServeError(
                401,
                "Missing credentials: send 'Authorization: Bearer <token>', 'Api-Key: <token>' or "
                "'x-api-key: <token>'.",
                type="authentication_error",
                code="missing_api_key",
            )
        failures: list[ServeError] = []
        for credential in candidates:
            try:
                return await self._principal_for(credential)
            except ServeError as error:
                failures.append(error)
        raise max(failures, key=lambda error: _FAILURE_RANK.get(error.status, 0))

    async def _principal_for(self, credential: str) -> Principal:
        key = hash_token(credential) if self._ttl > 0 else ""
        if key:
            entry = self._cache.get(key)
            if entry is not None:
                if entry.valid_until > time.time():
                    return entry.principal
                self._cache.pop(key, None)
        try:
            principal = await run_in_threadpool(self._authenticator.authenticate, credential)
        except Unauthorized:
            raise ServeError(
                401, "Invalid or expired credentials.", type="authentication_error", code="invalid_api_key"
            ) from None
        except Forbidden as error:
            raise ServeError(403, str(error), type="permission_error", code="forbidden") from None
        except Exception as error:
            raise ServeError(
                503,
                f"Credentials could not be checked right now ({type(error).__name__}); retry.",
                type="server_error",
                code="auth_unavailable",
            ) from None
        if key:
            self._remember(key, principal)
        return principal

    def _remember(self, key: str, principal: Principal) -> None:
        valid_until = time.time() + self._ttl
        if principal.method == "jwt":
            return
        if principal.method == "api-token":
            record = self._tokens.take(key) if self._tokens is not None else None
            if record is None:
                return
            if record.tokenExpiration is not None:
                valid_until = min(valid_until, float(record.tokenExpiration))
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = _Entry(principal, valid_until)
