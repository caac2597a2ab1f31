"""OIDC JWT verification: the issuer's keys, fetched lazily and cached, and the claims LISA reads.

``OidcVerifier.verify`` is the ``jwt_verifier`` of ``lisa_domain.auth.Authenticator``: it returns the
caller's ``Principal`` for a valid token and ``None`` for anything else (never raising for a bad
token). What it checks, in order:

* the token is a compact JWS of at most ``MAX_TOKEN_LENGTH`` characters whose header names a
  ``kid`` and an ``alg`` from ``OidcSettings.algorithms`` (asymmetric only: ``none`` and ``HS*`` are
  never accepted, whatever the configuration says);
* the ``kid`` is in the issuer's JWKS and that key may be used with that ``alg`` (a key's own
  ``alg`` pins it; otherwise its type and curve decide); keys with ``use`` other than ``sig`` are
  ignored;
* the signature, then ``iss`` (exact string match), ``aud`` (must contain the client id),
  ``exp`` (required) and ``nbf``/``iat`` (when present), with ``leeway_seconds`` of clock skew;
* the username claim is a non-empty string.

Keys: the discovery document (``<issuer without trailing slash>/.well-known/openid-configuration``)
is fetched once, on the first token; it must name the configured issuer exactly and give a
``jwks_uri``. The JWKS is fetched then and cached in-process. An unknown ``kid`` triggers a JWKS
refresh, but there is never more than one fetch attempt per ``min_refresh_seconds`` (60 s), counting
the first one and failed ones, so a flood of forged ``kid`` values cannot make LISA hammer the
issuer. Verifying a token whose key is cached takes no lock and makes no network call.

Logging: only reasons (``"jwt rejected: expired"``) and, at most, the ``kid`` (truncated). No token,
token fragment, claim value or key material is ever logged.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK
from jwt.exceptions import InvalidSubjectError

from lisa_contracts.settings import DEFAULT_OIDC_LEEWAY_SECONDS, IdentitySettings
from lisa_domain.auth import Principal

logger = logging.getLogger(__name__)

#: Algorithms the verifier can be configured to accept (asymmetric signatures only).
SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
DEFAULT_LEEWAY_SECONDS = DEFAULT_OIDC_LEEWAY_SECONDS
MAX_LEEWAY_SECONDS = 300
MAX_TOKEN_LENGTH = 16 * 1024
MAX_DOCUMENT_BYTES = 1024 * 1024
DISCOVERY_PATH = "/.well-known/openid-configuration"

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHM_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_LOOPBACK_HOSTS = frozenset({"localhost"})
#: What a groups claim that is one string means (``OIDC_GROUPS_STRING``): one group of that exact
#: name, or no groups. Never a list split on spaces or commas: a group "x lisa-admins" is not admin.
GROUPS_STRING_MODES: tuple[str, ...] = ("one-group", "reject")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str) -> None:
    """HTTPS only, except plain HTTP to a loopback address (tests and local mode)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    raise ValueError(f"{what} must be an https:// URL (http:// only for localhost): {url!r}")


@dataclass(frozen=True)
class OidcSettings:
    """Which issuer LISA trusts and how it reads a user from that issuer's tokens.

    ``issuer`` is compared with the token's ``iss`` exactly, so write it as the identity provider
    does (Cognito, Keycloak and Okta: no trailing slash; Auth0: with one). ``client_id`` is the
    audience every token's ``aud`` must contain. ``username_claim`` and ``groups_claim`` name a
    claim: first as a literal top-level name (so ``cognito:groups`` or an Auth0 namespaced claim
    such as ``https://example.com/groups`` work as written), otherwise as a dotted path into nested
    objects (``realm_access.roles``).
    """

    issuer: str
    client_id: str
    username_claim: str = "sub"
    groups_claim: str = "groups"
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    groups_string: str = "one-group"

    def __post_init__(self) -> None:
        if not self.issuer.strip() or self.issuer != self.issuer.strip():
            raise ValueError("OIDC issuer must be a non-empty URL without surrounding whitespace")
        _check_url(self.issuer, "OIDC issuer")
        if not self.client_id.strip():
            raise ValueError("OIDC client id (the expected audience) must not be empty")
        if not self.username_claim.strip():
            raise ValueError("OIDC username claim must not be empty")
        if not self.groups_claim.strip():
            raise ValueError("OIDC groups claim must not be empty")
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"OIDC leeway must be between 0 and {MAX_LEEWAY_SECONDS} seconds")
        if self.groups_string not in GROUPS_STRING_MODES:
            raise ValueError(
                f"OIDC_GROUPS_STRING must be one of {', '.join(GROUPS_STRING_MODES)}, got {self.groups_string!r}"
            )
        if not self.algorithms:
            raise ValueError("OIDC algorithms must not be empty")
        unsupported = sorted(set(self.algorithms) - SUPPORTED_ALGORITHMS)
        if unsupported:
            raise ValueError(
                f"OIDC algorithms not supported: {unsupported}; choose from {sorted(SUPPORTED_ALGORITHMS)}"
            )

    @property
    def discovery_url(self) -> str:
        """OIDC Discovery 1.0 section 4: a terminating ``/`` is removed before appending the path."""
        return self.issuer.rstrip("/") + DISCOVERY_PATH

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcSettings | None:
        """Settings from the ``OIDC_*`` variables; ``None`` when ``OIDC_ISSUER`` is unset or empty."""
        return cls.from_settings(IdentitySettings.from_env(environ))

    @classmethod
    def from_settings(cls, identity: IdentitySettings) -> OidcSettings | None:
        """The OIDC part of the identity settings; ``None`` when no issuer is configured."""
        if not identity.oidc_issuer:
            return None
        if not identity.oidc_client_id:
            raise ValueError("OIDC_CLIENT_ID must be set when OIDC_ISSUER is set")
        return cls(
            issuer=identity.oidc_issuer,
            client_id=identity.oidc_client_id,
            username_claim=identity.oidc_username_claim,
            groups_claim=identity.oidc_groups_claim,
            leeway_seconds=identity.oidc_leeway_seconds,
            groups_string=identity.oidc_groups_string,
        )


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    """The claim ``name`` as a literal top-level key, else as a dotted path; ``None`` when absent."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def parse_groups(value: Any, groups_string: str = "one-group") -> tuple[str, ...] | None:
    """Groups from a claim value: a list of strings, or (``groups_string="one-group"``) one string
    that is a single group name, never split.

    Missing (``None``) gives no groups. Non-string list items and empty names are dropped;
    duplicates are removed keeping the first. A string with ``groups_string="reject"``, or any
    other type, gives ``None`` (unusable claim: no groups).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        if groups_string != "one-group":
            return None
        names = [value.strip()]
    elif isinstance(value, list | tuple):
        names = [item.strip() for item in value if isinstance(item, str)]
    else:
        return None
    return tuple(dict.fromkeys(name for name in names if name))


def _safe_kid(kid: object) -> str:
    """A ``kid`` fit for a log line: printable, short (it comes from an untrusted header)."""
    text = "".join(char if char.isprintable() else "?" for char in str(kid))
    return text[:64] + ("..." if len(text) > 64 else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects, so an https:// URL can never be downgraded or sent elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def _fetch_json(url: str, timeout: float) -> dict[str, Any]:
    _check_url(url, "OIDC document URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (scheme checked)
    with _opener.open(request, timeout=timeout) as response:
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"document larger than {MAX_DOCUMENT_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("document is not a JSON object")
    return document


def _algorithms_for(jwk: Mapping[str, Any], allowed: tuple[str, ...]) -> list[str]:
    """The allowed algorithms this JWK may verify: its own ``alg`` if set, else by type and curve."""
    kty = jwk.get("kty")
    if kty == "RSA":
        compatible = [alg for alg in allowed if alg in _RSA_ALGORITHMS]
    elif kty == "EC":
        curve_alg = _EC_ALGORITHM_BY_CURVE.get(str(jwk.get("crv")))
        compatible = [curve_alg] if curve_alg in allowed else []
    else:
        return []
    pinned = jwk.get("alg")
    if pinned is not None:
        return [pinned] if pinned in compatible else []
    return compatible


KeyTable = dict[str, dict[str, PyJWK]]


def _key_table(jwks: Mapping[str, Any], allowed: tuple[str, ...]) -> KeyTable:
    """``kid -> alg -> key`` for every usable signing key of a JWKS document."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise ValueError("JWKS has no 'keys' list")
    table: KeyTable = {}
    for jwk in keys:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid or jwk.get("use", "sig") != "sig":
            continue
        for alg in _algorithms_for(jwk, allowed):
            try:
                table.setdefault(kid, {})[alg] = PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError:
                logger.warning("oidc: skipping unusable JWKS key kid=%s alg=%s", _safe_kid(kid), alg)
    return table


_REJECTIONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed for this key"),
    (InvalidSubjectError, "sub is not a string"),
    (jwt.InvalidIssuedAtError, "iat is not a number"),
    (jwt.DecodeError, "malformed"),
)


class OidcVerifier:
    """Verifies OIDC JWTs from one issuer; thread-safe, keys cached in-process.

    ``clock`` (monotonic seconds) only paces JWKS fetches; ``exp``/``nbf`` use the wall clock.
    """

    def __init__(
        self,
        settings: OidcSettings,
        admin_group: str,
        *,
        http_timeout: float = 5.0,
        min_refresh_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._admin_group = admin_group
        self._http_timeout = http_timeout
        self._min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks_uri: str | None = None
        # Replaced wholesale under the lock, read without it (a reference read is atomic).
        self._keys: KeyTable = {}
        self._last_attempt: float | None = None

    @property
    def settings(self) -> OidcSettings:
        return self._settings

    def __call__(self, token: str) -> Principal | None:
        return self.verify(token)

    def verify(self, token: str) -> Principal | None:
        """The caller behind a valid token, else ``None`` (the reason is logged, the token never)."""
        try:
            return self._verify(token)
        except _Rejected as rejection:
            if rejection.kid is None:
                logger.info("jwt rejected: %s", rejection.reason)
            else:
                logger.info("jwt rejected: %s (kid=%s)", rejection.reason, _safe_kid(rejection.kid))
            return None
        except Exception as error:
            # A verifier bug must not become a 500; log only the type (a message or traceback
            # could carry token material).
            logger.error("jwt rejected: unexpected verifier error %s", type(error).__name__)
            return None

    def _verify(self, token: str) -> Principal:
        settings = self._settings
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise _Rejected("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _Rejected("malformed header") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in settings.algorithms:
            raise _Rejected("algorithm not allowed")
        if not isinstance(kid, str) or not kid:
            raise _Rejected("no kid in header")
        keys = self._keys_for(kid)
        if keys is None:
            raise _Rejected("unknown kid", kid=kid)
        key = keys.get(alg)
        if key is None:
            raise _Rejected("algorithm does not match the key", kid=kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=settings.client_id,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"], "verify_signature": True},
            )
        except jwt.MissingRequiredClaimError as error:
            raise _Rejected(f"missing claim {error.claim}", kid=kid) from None
        except jwt.PyJWTError as error:
            reason = next((text for kind, text in _REJECTIONS if isinstance(error, kind)), "invalid")
            raise _Rejected(reason, kid=kid) from None
        username = claim_value(claims, settings.username_claim)
        if not isinstance(username, str) or not username.strip():
            raise _Rejected(f"username claim {settings.username_claim} missing or not a string", kid=kid)
        groups = parse_groups(claim_value(claims, settings.groups_claim), settings.groups_string)
        if groups is None:
            logger.warning(
                "oidc: groups claim %s has an unusable type (OIDC_GROUPS_STRING=%s); no groups",
                settings.groups_claim,
                settings.groups_string,
            )
            groups = ()
        return Principal(username, groups, self._admin_group in groups, "jwt")

    def _keys_for(self, kid: str) -> dict[str, PyJWK] | None:
        """The keys for ``kid``: from the cache, else after at most one (paced) JWKS fetch."""
        keys = self._keys.get(kid)
        if keys is not None:
            return keys
        with self._lock:
            keys = self._keys.get(kid)  # another thread may have refreshed meanwhile
            if keys is not None:
                return keys
            now = self._clock()
            if self._last_attempt is not None and now - self._last_attempt < self._min_refresh_seconds:
                return None
            self._last_attempt = now
            self._refresh(kid)
            return self._keys.get(kid)

    def _refresh(self, kid: str) -> None:
        """Fetch discovery (until it once succeeds) and the JWKS; on failure keep the old keys."""
        try:
            if self._jwks_uri is None:
                self._jwks_uri = self._discover()
            logger.info("oidc: fetching JWKS (kid=%s not cached)", _safe_kid(kid))
            table = _key_table(_fetch_json(self._jwks_uri, self._http_timeout), self._settings.algorithms)
        except Exception as error:  # network, HTTP, JSON or document errors alike
            # The JWKS location may have moved: look it up again on the next attempt.
            self._jwks_uri = None
            logger.warning(
                "oidc: key fetch failed (%s: %s); keeping cached keys", type(error).__name__, error
            )
            return
        self._keys = table
        logger.info("oidc: JWKS loaded with %d signing key id(s)", len(table))

    def _discover(self) -> str:
        settings = self._settings
        logger.info("oidc: fetching discovery document %s", settings.discovery_url)
        document = _fetch_json(settings.discovery_url, self._http_timeout)
        if document.get("issuer") != settings.issuer:
            raise ValueError(
                f"discovery issuer {document.get('issuer')!r} differs from the configured issuer "
                f"{settings.issuer!r}; set OIDC_ISSUER exactly as the identity provider writes it"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("discovery document has no jwks_uri")
        _check_url(jwks_uri, "jwks_uri")
        return jwks_uri


class _Rejected(Exception):
    def __init__(self, reason: str, kid: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kid = kid
