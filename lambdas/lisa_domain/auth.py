"""Credential checks shared by the admin API's authorizer and the serve app.

A caller presents a credential in ``Authorization`` (``Bearer <v>`` or the bare value, as LISA's
clients send it), ``Api-Key`` or ``x-api-key`` (``credential_candidates``; the admin API's authorizer
reads one header, ``bearer_value``). It is the management key (compared in constant time against
the secret's current version and, for ``MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS`` after a rotation, its
previous one; a Secrets Manager failure never blocks the other credentials), an API token (looked
up by its SHA-256 hash; expiry enforced), or an OIDC JWT (``lisa_domain.oidc``).
``authenticator_from_env()`` builds the one ``Authenticator`` a process needs from its environment.
No credential value is ever logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

from lisa_contracts.limits import TokenLimits
from lisa_contracts.settings import IdentitySettings
from lisa_domain.errors import Unauthorized
from lisa_domain.tokens import TokenStore

logger = logging.getLogger(__name__)

MANAGEMENT_USER = "lisa-management-key"
#: How long ``AWSPREVIOUS`` stays valid after the current version was created (one day).
#: The wait after a first failed management-key refresh; it doubles per failure, up to the cache TTL.
REFRESH_BACKOFF_SECONDS = 1.0
AuthMethod = Literal["management-key", "api-token", "jwt"]


@dataclass(frozen=True)
class Principal:
    username: str
    groups: tuple[str, ...]
    is_admin: bool
    method: AuthMethod
    #: When the credential stops working (Unix seconds; ``None``: never, or not known): an API
    #: token's ``tokenExpiration``. Callers that keep a principal must not keep it past this.
    expires_at: int | None = None
    #: An API token's own rate limit and budget (``None``: a token without any, or not a token).
    token_limits: TokenLimits | None = None

    def can_use(self, allowed_groups: list[str]) -> bool:
        """Whether a model open to ``allowed_groups`` (empty = everyone) is visible to this caller."""
        return self.is_admin or not allowed_groups or bool(set(allowed_groups) & set(self.groups))


#: The headers a credential may travel in, in the order they are tried: ``Authorization``, LISA's
#: ``Api-Key`` and the Anthropic client's ``x-api-key`` (names are case-insensitive).
CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key")


def _lowered(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {key.lower(): value for key, value in (headers or {}).items() if isinstance(value, str)}


def _header_credential(name: str, value: str) -> str | None:
    """The credential one header carries. ``Authorization`` holds ``Bearer <v>`` or the bare value
    (LISA's clients send it without a scheme); another scheme (``Basic ...``) carries none."""
    value = value.strip()
    if name != "authorization":
        return value or None
    scheme, separator, rest = value.partition(" ")
    if not separator:
        return None if value.lower() == "bearer" else value or None
    return rest.strip() or None if scheme.lower() == "bearer" else None


def credential_candidates(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """The distinct credentials of ``CREDENTIAL_HEADERS``, in that order (at most three): the serve
    app tries each, so a request with one valid credential among several is authenticated."""
    lowered = _lowered(headers)
    found: list[str] = []
    for name in CREDENTIAL_HEADERS:
        credential = _header_credential(name, lowered.get(name, ""))
        if credential and credential not in found:
            found.append(credential)
    return tuple(found)


def bearer_value(headers: Mapping[str, str] | None) -> str | None:
    """The admin API's credential: ``Authorization``'s when that header is present, else ``Api-Key``'s.

    One header decides, never a combination: API Gateway caches the authorizer's answer keyed by
    ``Authorization`` alone, so an answer must not depend on another header.
    """
    lowered = _lowered(headers)
    if lowered.get("authorization", "").strip():
        return _header_credential("authorization", lowered["authorization"])
    return _header_credential("api-key", lowered.get("api-key", ""))


class _NoResponseBodies(logging.Filter):
    """Drops botocore's DEBUG dump of every response body: for GetSecretValue that is the key itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Response body")


def _suppress_botocore_response_bodies() -> None:
    """Keep the management key out of the logs even when someone turns botocore's DEBUG logging on."""
    parsers = logging.getLogger("botocore.parsers")
    if not any(isinstance(existing, _NoResponseBodies) for existing in parsers.filters):
        parsers.addFilter(_NoResponseBodies())


def previous_key_ttl_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS`` (default one day; 0 = the previous version never matches)."""
    return IdentitySettings.from_env(environ).management_key_previous_ttl_seconds


def _error_code(error: Exception) -> str:
    """What failed, fit for a log line: the AWS error code or the exception type (never a message)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


@dataclass(frozen=True)
class _KeyVersions:
    current: str
    previous: str | None
    current_created: float | None  # Unix seconds: when AWSCURRENT was created (rotated in)


class ManagementKey:
    """The management key's current and, for a while after a rotation, previous version.

    The versions are re-read at most every ``ttl`` seconds. ``AWSPREVIOUS`` matches only until
    ``previous_ttl`` seconds after the ``AWSCURRENT`` version was created (its ``CreatedDate``), so
    a rotated-out key stops working after a bounded time. A failed refresh (throttling, network,
    permissions) keeps the cached versions and retries after a backoff that doubles up to ``ttl``;
    with nothing cached the key simply matches nothing, so other credentials keep working.
    ``clock`` (wall seconds) decides the previous version's validity; ``monotonic`` paces refreshes.
    """

    def __init__(
        self,
        secret_id: str,
        client: Any = None,
        ttl: float = 60.0,
        *,
        previous_ttl: float | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        _suppress_botocore_response_bodies()
        self._secret_id = secret_id
        self._client = client or boto3.client("secretsmanager")
        self._ttl = ttl
        self._previous_ttl = previous_key_ttl_from_env() if previous_ttl is None else previous_ttl
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._versions: _KeyVersions | None = None
        self._next_refresh = float("-inf")
        self._failures = 0

    def _read(self) -> _KeyVersions:
        """Both versions from Secrets Manager (no previous version before the first rotation)."""
        current = self._client.get_secret_value(SecretId=self._secret_id, VersionStage="AWSCURRENT")
        try:
            previous = self._client.get_secret_value(SecretId=self._secret_id, VersionStage="AWSPREVIOUS")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            previous = None
        created = current.get("CreatedDate")
        return _KeyVersions(
            current=current["SecretString"],
            previous=previous["SecretString"] if previous is not None else None,
            current_created=created.timestamp() if isinstance(created, datetime) else None,
        )

    def _load(self) -> _KeyVersions | None:
        """The cached versions, refreshed when due (one thread refreshes; the others use the cache)."""
        if self._monotonic() < self._next_refresh:
            return self._versions
        if not self._lock.acquire(blocking=self._versions is None):
            return self._versions
        try:
            if self._monotonic() < self._next_refresh:
                return self._versions
            try:
                self._versions = self._read()
            except Exception as error:  # any key-store failure; it must never block other credentials
                self._failures += 1
                delay = min(REFRESH_BACKOFF_SECONDS * 2 ** (self._failures - 1), self._ttl)
                self._next_refresh = self._monotonic() + delay
                logger.warning(
                    "management key: refresh failed (%s); %s; next attempt in %.1f s",
                    _error_code(error),
                    "using the cached versions"
                    if self._versions
                    else "no cached versions, it matches nothing",
                    delay,
                )
            else:
                self._failures = 0
                self._next_refresh = self._monotonic() + self._ttl
            return self._versions
        finally:
            self._lock.release()

    def _accepted(self) -> tuple[str, ...]:
        versions = self._load()
        if versions is None:
            return ()
        created = versions.current_created
        previous = versions.previous
        if previous is not None and created is not None and self._clock() < created + self._previous_ttl:
            return (versions.current, previous)
        return (versions.current,)

    def matches(self, candidate: str) -> bool:
        # Compare with every accepted version even after a match, so timing reveals nothing.
        results = [hmac.compare_digest(candidate.encode(), value.encode()) for value in self._accepted()]
        return any(results)


JwtVerifier = Callable[[str], "Principal | None"]


def token_principal(
    username: str,
    groups: tuple[str, ...],
    expiration: int | None,
    admin_group: str,
    limits: TokenLimits | None = None,
) -> Principal:
    """The caller an API token stands for (its expiry included; whether it has passed is the caller's check)."""
    return Principal(username, groups, admin_group in groups, "api-token", expiration, limits)


class Authenticator:
    def __init__(
        self,
        *,
        admin_group: str,
        tokens: TokenStore | None = None,
        management_key: ManagementKey | None = None,
        jwt_verifier: JwtVerifier | None = None,
    ) -> None:
        self._admin_group = admin_group
        self._tokens = tokens
        self._management_key = management_key
        self._jwt_verifier = jwt_verifier

    def authenticate(self, credential: str | None) -> Principal:
        """The caller behind ``credential``; Unauthorized (never saying why in detail) otherwise."""
        if not credential:
            raise Unauthorized("missing credentials: send 'Authorization: Bearer <token>'")
        if self._management_key is not None and self._management_key.matches(credential):
            return Principal(MANAGEMENT_USER, (self._admin_group,), True, "management-key")
        if self._jwt_verifier is not None and credential.count(".") == 2:
            principal = self._jwt_verifier(credential)
            if principal is not None:
                return principal
        if self._tokens is not None:
            record = self._tokens.find(credential)
            if record is not None and not record.expired():
                return token_principal(
                    record.username, tuple(record.groups), record.tokenExpiration, self._admin_group
                )
        raise Unauthorized("invalid or expired credentials")


# ---- one way to build it (the authorizer and the serve app) -----------------------------------------
#: Upper bound of one OIDC document fetch: a cold JWKS load makes two requests, and the authorizer
#: Lambda has 10 seconds in all.
MAX_OIDC_HTTP_TIMEOUT = 3.0


def jwt_verifier_from_env(
    admin_group: str, environ: Mapping[str, str] | None = None, *, http_timeout: float = MAX_OIDC_HTTP_TIMEOUT
) -> JwtVerifier | None:
    """The OIDC verifier configured by ``OIDC_*`` (``None`` when ``OIDC_ISSUER`` is unset).

    A setting that makes no sense raises ``ValueError`` (at start-up, never a silent downgrade).
    """
    from lisa_domain.oidc import OidcSettings, OidcVerifier  # oidc imports this module

    if not 0 < http_timeout <= MAX_OIDC_HTTP_TIMEOUT:
        raise ValueError(f"OIDC http_timeout must be in (0, {MAX_OIDC_HTTP_TIMEOUT}] seconds")
    oidc = OidcSettings.from_env(environ)
    if oidc is None:
        return None
    return OidcVerifier(oidc, admin_group, http_timeout=http_timeout).verify


def authenticator_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    tokens: TokenStore | None = None,
    dynamodb: Any = None,
    secretsmanager: Any = None,
    jwt_verifier: JwtVerifier | None = None,
    http_timeout: float = MAX_OIDC_HTTP_TIMEOUT,
) -> Authenticator:
    """The ``Authenticator`` the environment describes; build it once per process and keep it.

    Reads ``ADMIN_GROUP`` (default ``lisa-admins``), ``TOKENS_TABLE_NAME`` (API tokens; off when
    unset), ``MANAGEMENT_KEY_SECRET_ARN`` (the management key; off when unset),
    ``MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS`` and ``OIDC_*``
    (JWTs; off when ``OIDC_ISSUER`` is unset). ``tokens`` replaces the token store built from
    ``TOKENS_TABLE_NAME`` (the serve app passes its own); ``dynamodb`` / ``secretsmanager`` are the
    boto3 clients to use (an emulator's, say); ``jwt_verifier`` replaces the OIDC verifier.
    """
    identity = IdentitySettings.from_env(environ)
    admin_group = identity.admin_group
    if tokens is None and identity.tokens_table:
        tokens = TokenStore(identity.tokens_table, dynamodb)
    secret_arn = identity.management_key_secret_arn
    return Authenticator(
        admin_group=admin_group,
        tokens=tokens,
        management_key=(
            ManagementKey(
                secret_arn, secretsmanager, previous_ttl=identity.management_key_previous_ttl_seconds
            )
            if secret_arn
            else None
        ),
        jwt_verifier=(
            jwt_verifier
            if jwt_verifier is not None
            else jwt_verifier_from_env(admin_group, environ, http_timeout=http_timeout)
        ),
    )


# ---- the authorizer context (API Gateway passes it to the admin API as requestContext.authorizer) --
_AUTH_METHODS: tuple[AuthMethod, ...] = ("management-key", "api-token", "jwt")


def principal_to_context(principal: Principal) -> dict[str, str]:
    """The authorizer context for ``principal`` (API Gateway allows only flat string values)."""
    return {
        "username": principal.username,
        "groups": json.dumps(list(principal.groups)),
        "isAdmin": "true" if principal.is_admin else "false",
        "authMethod": principal.method,
    }


def principal_from_context(context: Mapping[str, Any] | None) -> Principal:
    """The caller an authorizer context describes; Unauthorized when it is missing or malformed."""
    if not context or not isinstance(context.get("username"), str) or not context["username"]:
        raise Unauthorized("no authenticated caller")
    try:
        groups = json.loads(context.get("groups") or "[]")
    except (TypeError, ValueError) as error:
        raise Unauthorized("malformed caller groups") from error
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise Unauthorized("malformed caller groups")
    is_admin = str(context.get("isAdmin", "false")).lower() == "true"
    method = context.get("authMethod")
    return Principal(
        username=context["username"],
        groups=tuple(groups),
        is_admin=is_admin,
        method=method if method in _AUTH_METHODS else "api-token",
    )
