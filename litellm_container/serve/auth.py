"""Authentication for the serve API: API tokens from memory, the rest through ``lisa_domain.auth``.

An API token is answered by the replica's ``TokenFollower`` (a SHA-256 and one dictionary lookup,
no remote call); its stored expiry is checked on every request, so a token stops working at its
expiry second, and a revoked one within the follower's bound (one second). Until the tokens are
loaded, a credential that is not otherwise valid gets 503 ``not_ready`` rather than 401.

Other credentials go to the shared ``Authenticator`` in a worker thread (it may make blocking calls:
a JWKS fetch for a JWT; when allowed, a Secrets Manager read of the management key every minute).
The management key is refused on the serve API unless ``LISA_SERVE_ALLOW_MANAGEMENT_KEY`` is true
(``serve_management_key``): clients use API tokens or JWTs, and a leaked management key (an
admin-API credential) does not also open every model. A successful management-key result is
reused for ``ttl`` seconds (``LISA_SERVE_AUTH_CACHE_SECONDS``, default 0: never), keyed by the
credential's SHA-256 (the value itself is never kept), never past the principal's ``expires_at``.
JWT results are not reused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from lisa_domain.auth import Authenticator, ManagementKey, Principal, credential_candidates
from lisa_domain.errors import Forbidden, Unauthorized
from lisa_domain.tokens import expired, hash_token
from serve.config import ServeConfig
from serve.errors import ServeError
from serve.token_follower import TokenFollower

_MAX_ENTRIES = 10_000
#: Which failure answers a request none of whose credentials is valid: the highest rank.
_FAILURE_RANK = {401: 0, 403: 1, 503: 2}


def serve_management_key(config: ServeConfig, secretsmanager: Any) -> ManagementKey | None:
    """The management key as a serve-API credential: ``None`` (refused like any unknown value, and
    never read from Secrets Manager) unless ``allow_management_key`` is set."""
    if not config.allow_management_key or not config.management_key_secret_arn:
        return None
    return ManagementKey(config.management_key_secret_arn, secretsmanager)


def _invalid() -> ServeError:
    return ServeError(
        401, "Invalid or expired credentials.", type="authentication_error", code="invalid_api_key"
    )


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    valid_until: float  # wall clock (expiry is wall clock too)


class ServeAuthenticator:
    def __init__(
        self,
        authenticator: Authenticator,
        *,
        tokens: TokenFollower | None,
        ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``authenticator`` checks what is not an API token (it gets no token store);
        ``tokens`` answers API tokens; ``clock`` is the wall clock expiry is checked against."""
        self._authenticator = authenticator
        self._tokens = tokens
        self._ttl = ttl
        self._clock = clock
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
        key = hash_token(credential)
        if self._tokens is not None:
            token = self._tokens.lookup(key)
            if token is not None:
                if expired(token.expires_at, self._clock()):
                    raise _invalid()
                return token
        entry = self._cache.get(key)
        if entry is not None:
            if entry.valid_until > self._clock():
                return entry.principal
            self._cache.pop(key, None)
        try:
            principal = await run_in_threadpool(self._authenticator.authenticate, credential)
        except Unauthorized:
            if self._tokens is not None and not self._tokens.loaded:
                raise ServeError(
                    503, "API tokens are not loaded yet; retry.", type="server_error", code="not_ready"
                ) from None
            raise _invalid() from None
        except Forbidden as error:
            raise ServeError(403, str(error), type="permission_error", code="forbidden") from None
        except Exception as error:
            raise ServeError(
                503,
                f"Credentials could not be checked right now ({type(error).__name__}); retry.",
                type="server_error",
                code="auth_unavailable",
            ) from None
        if self._ttl > 0 and principal.method != "jwt":
            self._remember(key, principal)
        return principal

    def _remember(self, key: str, principal: Principal) -> None:
        valid_until = self._clock() + self._ttl
        if principal.expires_at is not None:
            valid_until = min(valid_until, float(principal.expires_at))
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = _Entry(principal, valid_until)
