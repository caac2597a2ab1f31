"""OIDC JWT verification against a real identity-provider stand-in on 127.0.0.1.

Every test generates nothing on the network beyond loopback: the "identity provider" is a
ThreadingHTTPServer serving a discovery document and a JWKS built from key pairs made here, and it
counts every request so caching and refresh pacing are asserted exactly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from lisa_domain.auth import Authenticator, Principal, bearer_value
from lisa_domain.errors import Unauthorized
from lisa_domain.oidc import OidcSettings, OidcVerifier, claim_value, parse_groups
from tests.support.oidc_issuer import REALM_PATH, IdentityProvider, KeyPair, ec_key, rsa_key, sign

ADMIN_GROUP = "lisa-admins"
CLIENT_ID = "lisa-client"

# Every token minted by a test, so the autouse log check can look for each of them.
MINTED: list[str] = []


# --------------------------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Keys:
    rsa: KeyPair
    ec: KeyPair
    rsa_other: KeyPair  # never published
    rsa_rotated: KeyPair  # published only by the rotation test


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa=rsa_key("rsa-1"), ec=ec_key("ec-1"), rsa_other=rsa_key("rsa-other"), rsa_rotated=rsa_key("rsa-2")
    )


# ------------------------------------------------------------------------------ identity provider


@pytest.fixture
def idp(keys: Keys) -> Iterator[IdentityProvider]:
    provider = IdentityProvider([keys.rsa.jwk(), keys.ec.jwk()])
    yield provider
    provider.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_verifier(idp: IdentityProvider, clock: FakeClock, **settings: Any) -> OidcVerifier:
    oidc = OidcSettings(issuer=idp.issuer, client_id=CLIENT_ID, **settings)
    return OidcVerifier(oidc, ADMIN_GROUP, http_timeout=2.0, clock=clock)


@pytest.fixture
def verifier(idp: IdentityProvider, clock: FakeClock) -> OidcVerifier:
    return make_verifier(idp, clock)


# ---------------------------------------------------------------------------------------- tokens


def mint(
    key: KeyPair, idp: IdentityProvider, *, alg: str | None = None, kid: str | None = None, **claims: Any
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": CLIENT_ID,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "groups": ["team-a"],
    }
    payload.update(claims)
    token = sign(key, payload, alg=alg, kid=kid)
    MINTED.append(token)
    return token


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"
    MINTED.append(token)
    return token


def claims_for(idp: IdentityProvider, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": idp.issuer,
        "aud": CLIENT_ID,
        "sub": "mallory",
        "exp": now + 300,
        "groups": [ADMIN_GROUP],
    } | extra


@pytest.fixture(autouse=True)
def no_token_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """After every test: no log record carries a minted token or any of its segments."""
    caplog.set_level(logging.DEBUG)
    start = len(MINTED)
    yield
    tokens = MINTED[start:]
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        for token in tokens:
            # Malformed "tokens" such as "" or "a.b" are substrings of anything; check real ones.
            if len(token) > 8:
                assert token not in text
            for segment in token.split("."):
                if len(segment) > 8:
                    assert segment not in text


def reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The rejection reasons logged so far, kid suffix removed."""
    prefix = "jwt rejected: "
    messages = [record.getMessage() for record in caplog.records]
    return [m[len(prefix) :].split(" (kid=")[0] for m in messages if m.startswith(prefix)]


# ------------------------------------------------------------------------------------ valid tokens


def test_rs256_token_gives_principal(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    principal = verifier.verify(mint(keys.rsa, idp, groups=["team-a", "team-b"]))
    assert principal == Principal("alice", ("team-a", "team-b"), False, "jwt")


def test_es256_token_gives_principal(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    principal = verifier.verify(mint(keys.ec, idp, sub="bob"))
    assert principal == Principal("bob", ("team-a",), False, "jwt")


def test_rs384_with_unpinned_rsa_key(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    principal = verifier.verify(mint(keys.rsa, idp, alg="RS384"))
    assert principal is not None and principal.username == "alice"


@pytest.mark.parametrize(
    ("groups_claim", "claims", "expected"),
    [
        ("groups", {"groups": ["a", "b"]}, ("a", "b")),
        (
            "cognito:groups",
            {"cognito:groups": ["us-east-1_pool-admins", "readers"]},
            ("us-east-1_pool-admins", "readers"),
        ),
        (
            "realm_access.roles",
            {"realm_access": {"roles": ["offline_access", "lisa-admins"]}},
            ("offline_access", "lisa-admins"),
        ),
        ("resource_access.lisa.roles", {"resource_access": {"lisa": {"roles": ["x"]}}}, ("x",)),
        ("https://lisa.example.com/groups", {"https://lisa.example.com/groups": ["ns"]}, ("ns",)),
        ("groups", {"groups": " a b,c "}, ("a b,c",)),  # one string is one group name, never split
        ("groups", {"groups": f"x {ADMIN_GROUP}"}, (f"x {ADMIN_GROUP}",)),  # and never an admin
        ("groups", {"groups": None}, ()),
        ("realm_access.roles", {"realm_access": {}}, ()),
        ("groups", {"groups": ["ok", 7, "", {"x": 1}]}, ("ok",)),
        ("groups", {"groups": {"not": "a list"}}, ()),
    ],
)
def test_groups_claim_locations(
    idp: IdentityProvider,
    clock: FakeClock,
    keys: Keys,
    groups_claim: str,
    claims: dict[str, Any],
    expected: tuple[str, ...],
) -> None:
    verifier = make_verifier(idp, clock, groups_claim=groups_claim)
    principal = verifier.verify(mint(keys.rsa, idp, **claims))
    assert principal is not None
    assert principal.groups == expected
    assert principal.is_admin == (ADMIN_GROUP in expected)


def test_admin_group_makes_admin(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    admin = verifier.verify(mint(keys.ec, idp, groups=["team-a", ADMIN_GROUP]))
    user = verifier.verify(mint(keys.ec, idp, groups=["team-a"]))
    assert admin is not None and admin.is_admin
    assert user is not None and not user.is_admin


def test_username_claim_is_configurable(idp: IdentityProvider, clock: FakeClock, keys: Keys) -> None:
    cognito = make_verifier(idp, clock, username_claim="cognito:username")
    principal = cognito.verify(mint(keys.rsa, idp, **{"cognito:username": "carol"}))
    assert principal is not None and principal.username == "carol"
    # No silent fallback to "sub": a token without the configured claim is rejected.
    assert cognito.verify(mint(keys.rsa, idp)) is None


@pytest.mark.parametrize("username", [None, "", "   ", 42, ["alice"]])
def test_unusable_username_rejected(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, username: Any
) -> None:
    claims = {"sub": username} if username is not None else {}
    token = mint(keys.rsa, idp, **claims) if claims else mint(keys.rsa, idp, sub=None)
    assert verifier.verify(token) is None


def test_audience_list_containing_client_id_accepted(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys
) -> None:
    assert verifier.verify(mint(keys.rsa, idp, aud=["other-api", CLIENT_ID])) is not None


def test_verifier_is_callable(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    assert verifier(mint(keys.rsa, idp)) is not None


# --------------------------------------------------------------------------------- claim checks


def test_wrong_issuer_rejected(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    assert verifier.verify(mint(keys.rsa, idp, iss="https://evil.example.com/realms/lisa")) is None
    assert verifier.verify(mint(keys.rsa, idp, iss=idp.issuer + "/")) is None  # exact match only
    assert verifier.verify(mint(keys.rsa, idp, iss=idp.issuer[:-1])) is None
    assert reasons(caplog) == ["wrong issuer"] * 3


def test_wrong_audience_rejected(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    assert verifier.verify(mint(keys.rsa, idp, aud="another-client")) is None
    assert verifier.verify(mint(keys.rsa, idp, aud=None)) is None
    assert verifier.verify(mint(keys.rsa, idp, aud=CLIENT_ID[:-1])) is None  # no substring match
    assert reasons(caplog) == ["wrong audience", "missing claim aud", "wrong audience"]


@pytest.mark.parametrize("claim", ["exp", "iss"])
def test_required_claims(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, claim: str) -> None:
    assert verifier.verify(mint(keys.rsa, idp, **{claim: None})) is None


def test_expired_beyond_leeway_rejected(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    assert verifier.verify(mint(keys.rsa, idp, iat=now - 600, exp=now - 120)) is None
    assert reasons(caplog) == ["expired"]


def test_expired_within_leeway_accepted(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    now = int(time.time())
    assert verifier.verify(mint(keys.rsa, idp, iat=now - 600, exp=now - 30)) is not None


def test_leeway_is_configurable(idp: IdentityProvider, clock: FakeClock, keys: Keys) -> None:
    strict = make_verifier(idp, clock, leeway_seconds=0)
    now = int(time.time())
    assert strict.verify(mint(keys.rsa, idp, iat=now - 600, exp=now - 30)) is None


def test_nbf_in_future_rejected(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    assert verifier.verify(mint(keys.rsa, idp, nbf=now + 600)) is None
    assert verifier.verify(mint(keys.rsa, idp, nbf=now + 30)) is not None  # within leeway
    assert reasons(caplog) == ["not yet valid (nbf or iat in the future)"]


def test_signature_by_another_key_with_same_kid(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    assert verifier.verify(mint(keys.rsa, idp)) is not None
    forged = mint(keys.rsa_other, idp, kid=keys.rsa.kid, groups=[ADMIN_GROUP])
    assert verifier.verify(forged) is None
    assert reasons(caplog) == ["bad signature"]
    assert idp.jwks_fetches == 1  # a known kid never triggers a refresh


def test_tampered_payload_rejected(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    header, _, signature = mint(keys.rsa, idp).split(".")
    tampered = f"{header}.{b64(json.dumps(claims_for(idp)).encode())}.{signature}"
    MINTED.append(tampered)
    assert verifier.verify(tampered) is None


def test_alg_must_match_key_type(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    # An ES256 token naming the RSA key's kid: no ES256 key under that kid.
    assert verifier.verify(mint(keys.ec, idp, kid=keys.rsa.kid)) is None
    assert reasons(caplog) == ["algorithm does not match the key"]


def test_key_pinned_alg_is_enforced(idp: IdentityProvider, clock: FakeClock, keys: Keys) -> None:
    idp.jwks = [keys.rsa.jwk(alg="RS256")]
    verifier = make_verifier(idp, clock)
    assert verifier.verify(mint(keys.rsa, idp)) is not None
    assert verifier.verify(mint(keys.rsa, idp, alg="RS512")) is None


def test_encryption_keys_are_ignored(idp: IdentityProvider, clock: FakeClock, keys: Keys) -> None:
    idp.jwks = [keys.rsa.jwk(use="enc")]
    assert make_verifier(idp, clock).verify(mint(keys.rsa, idp)) is None


def test_alg_none_rejected(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    assert verifier.verify(unsigned({"alg": "none", "kid": keys.rsa.kid}, claims_for(idp))) is None
    assert verifier.verify(unsigned({"alg": "None", "kid": keys.rsa.kid}, claims_for(idp))) is None
    assert idp.jwks_fetches == 0  # rejected before any key is looked up
    assert reasons(caplog) == ["algorithm not allowed"] * 2


def test_hs256_with_public_key_as_secret_rejected(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    header = {"alg": "HS256", "typ": "JWT", "kid": keys.rsa.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims_for(idp)).encode())}"
    signature = hmac.new(keys.rsa.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"
    MINTED.append(token)
    assert verifier.verify(token) is None
    assert reasons(caplog) == ["algorithm not allowed"]
    # Even an HS256-signed token is refused when the verifier is asked to accept HS256.
    with pytest.raises(ValueError):
        OidcSettings(issuer=idp.issuer, client_id=CLIENT_ID, algorithms=("RS256", "HS256"))


def test_missing_kid_rejected(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    token = jwt.encode(claims_for(idp), keys.rsa.private, algorithm="RS256")
    MINTED.append(token)
    assert verifier.verify(token) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "..",
        "a.b.c",
        "not-a-jwt",
        "one.two",
        "a.b.c.d",
        "eyJhbGciOiJSUzI1NiJ9.%%%.###",
        b64(b"[1, 2]") + ".e30.",
        b64(b"not json") + ".e30.sig",
        b64(b'{"alg": "RS256", "kid": "rsa-1"}') + ".bm90IGpzb24." + b64(b"x" * 256),
        b64(b'{"alg": "RS256", "kid": "rsa-1"}') + ".e30." + "A" * 20000,
        b64(b'{"alg": ["RS256"], "kid": "rsa-1"}') + ".e30.sig",
        b64(b'{"alg": "RS256", "kid": 7}') + ".e30.sig",
    ],
)
def test_malformed_tokens_rejected(verifier: OidcVerifier, token: str) -> None:
    MINTED.append(token)
    assert verifier.verify(token) is None


# ---------------------------------------------------------------------------- caching and refresh


def test_many_verifications_fetch_once(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    assert (idp.discovery_fetches, idp.jwks_fetches) == (0, 0)  # lazy: nothing fetched at construction
    tokens = [mint(keys.rsa, idp), mint(keys.ec, idp)]
    for _ in range(50):
        for token in tokens:
            assert verifier.verify(token) is not None
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)


def test_concurrent_cold_start_fetches_once(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys
) -> None:
    token = mint(keys.ec, idp)
    barrier = threading.Barrier(16)
    results: list[Principal | None] = []

    def worker() -> None:
        barrier.wait()
        results.extend(verifier.verify(token) for _ in range(10))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 160 and all(result is not None for result in results)
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)


def test_unknown_kid_refresh_is_paced(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, clock: FakeClock
) -> None:
    assert verifier.verify(mint(keys.rsa, idp)) is not None
    assert idp.jwks_fetches == 1

    clock.advance(61)
    assert verifier.verify(mint(keys.rsa_other, idp, kid="unknown-1")) is None
    assert idp.jwks_fetches == 2  # exactly one refresh

    clock.advance(30)
    assert verifier.verify(mint(keys.rsa_other, idp, kid="unknown-2")) is None
    assert verifier.verify(mint(keys.rsa_other, idp, kid="unknown-1")) is None
    assert idp.jwks_fetches == 2  # within 60 s: no fetch at all

    clock.advance(31)
    assert verifier.verify(mint(keys.rsa_other, idp, kid="unknown-3")) is None
    assert idp.jwks_fetches == 3  # 61 s after the last refresh: refreshes again
    assert idp.discovery_fetches == 1  # discovery is never re-fetched while it works

    assert verifier.verify(mint(keys.ec, idp)) is not None  # known keys keep working throughout
    assert idp.jwks_fetches == 3


def test_unknown_kid_on_cold_start_is_the_first_fetch(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys
) -> None:
    assert verifier.verify(mint(keys.rsa_other, idp, kid="nope")) is None
    assert verifier.verify(mint(keys.rsa_other, idp, kid="nope-2")) is None
    assert (idp.discovery_fetches, idp.jwks_fetches) == (1, 1)
    assert verifier.verify(mint(keys.rsa, idp)) is not None  # the cached set is used
    assert idp.jwks_fetches == 1


def test_key_rotation(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, clock: FakeClock) -> None:
    assert verifier.verify(mint(keys.rsa, idp)) is not None
    rotated = mint(keys.rsa_rotated, idp, sub="dave")
    idp.jwks = [keys.rsa_rotated.jwk(), keys.ec.jwk()]  # the provider publishes a new key, drops the old

    assert verifier.verify(rotated) is None  # within 60 s of the last fetch: not yet refreshed
    clock.advance(61)
    principal = verifier.verify(rotated)
    assert principal is not None and principal.username == "dave"
    assert idp.jwks_fetches == 2
    # The new set replaced the old one: the dropped key no longer verifies.
    assert verifier.verify(mint(keys.rsa, idp)) is None


def test_failed_refresh_keeps_cached_keys(
    verifier: OidcVerifier, idp: IdentityProvider, keys: Keys, clock: FakeClock
) -> None:
    assert verifier.verify(mint(keys.rsa, idp)) is not None
    idp.fail_jwks = True
    clock.advance(61)
    assert verifier.verify(mint(keys.rsa_other, idp, kid="unknown")) is None
    assert idp.jwks_fetches == 2
    assert verifier.verify(mint(keys.rsa, idp)) is not None  # old keys still cached
    # The failed attempt counts for pacing, then the next attempt also rediscovers.
    idp.fail_jwks = False
    clock.advance(61)
    rotated = mint(keys.rsa_rotated, idp)
    idp.jwks = [keys.rsa_rotated.jwk()]
    assert verifier.verify(rotated) is not None
    assert (idp.discovery_fetches, idp.jwks_fetches) == (2, 3)


def test_unreachable_issuer_rejects_without_raising(keys: Keys, clock: FakeClock) -> None:
    provider = IdentityProvider([keys.rsa.jwk()])
    issuer = provider.issuer
    provider.close()  # nothing listens on that port any more
    verifier = OidcVerifier(
        OidcSettings(issuer=issuer, client_id=CLIENT_ID), ADMIN_GROUP, http_timeout=1.0, clock=clock
    )
    now = int(time.time())
    token = jwt.encode(
        {"iss": issuer, "aud": CLIENT_ID, "sub": "alice", "exp": now + 300},
        keys.rsa.private,
        algorithm="RS256",
        headers={"kid": keys.rsa.kid},
    )
    MINTED.append(token)
    assert verifier.verify(token) is None


def test_discovery_issuer_must_match_exactly(
    idp: IdentityProvider, clock: FakeClock, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    idp.discovery_issuer = idp.issuer + "/"
    verifier = make_verifier(idp, clock)
    assert verifier.verify(mint(keys.rsa, idp)) is None
    assert idp.jwks_fetches == 0
    assert any("differs from the configured issuer" in record.getMessage() for record in caplog.records)


def test_trailing_slash_issuer(keys: Keys, clock: FakeClock) -> None:
    """An issuer written with a trailing slash (Auth0 style) is discovered without a double slash."""
    provider = IdentityProvider([keys.rsa.jwk()])
    try:
        provider.issuer = provider.base + REALM_PATH + "/"
        verifier = OidcVerifier(
            OidcSettings(issuer=provider.issuer, client_id=CLIENT_ID), ADMIN_GROUP, clock=clock
        )
        assert (
            verifier.settings.discovery_url
            == provider.base + REALM_PATH + "/.well-known/openid-configuration"
        )
        assert verifier.verify(mint(keys.rsa, provider)) is not None
        assert provider.discovery_fetches == 1
    finally:
        provider.close()


# --------------------------------------------------------------------------------- integration


def test_through_authenticator(verifier: OidcVerifier, idp: IdentityProvider, keys: Keys) -> None:
    authenticator = Authenticator(admin_group=ADMIN_GROUP, jwt_verifier=verifier.verify)
    token = mint(keys.ec, idp, sub="erin", groups=[ADMIN_GROUP])
    principal = authenticator.authenticate(bearer_value({"Authorization": f"Bearer {token}"}))
    assert principal == Principal("erin", (ADMIN_GROUP,), True, "jwt")
    assert authenticator.authenticate(bearer_value({"api-key": token})).username == "erin"

    now = int(time.time())
    expired = mint(keys.ec, idp, iat=now - 900, exp=now - 600)
    with pytest.raises(Unauthorized) as caught:
        authenticator.authenticate(expired)
    assert expired not in str(caught.value)


def test_no_token_in_any_log_record(
    idp: IdentityProvider, clock: FakeClock, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = make_verifier(idp, clock)
    now = int(time.time())
    tokens = [
        mint(keys.rsa, idp),
        mint(keys.ec, idp, groups="a,b"),
        mint(keys.rsa, idp, exp=now - 3600),
        mint(keys.rsa, idp, nbf=now + 3600),
        mint(keys.rsa, idp, aud="nope"),
        mint(keys.rsa, idp, iss="https://evil.example.com"),
        mint(keys.rsa_other, idp, kid=keys.rsa.kid),
        mint(keys.rsa_other, idp, kid="rotating"),
        mint(keys.rsa, idp, sub=None),
        mint(keys.rsa, idp, groups={"odd": "type"}),
        unsigned({"alg": "none", "kid": "rsa-1"}, claims_for(idp)),
        unsigned({"alg": "RS256", "kid": "rsa-1"}, claims_for(idp), b"garbage-signature-bytes"),
    ]
    for token in tokens:
        verifier.verify(token)
        clock.advance(61)
    messages = [record.getMessage() for record in caplog.records]
    assert any("jwt rejected: expired" in message for message in messages)
    assert any("jwt rejected: bad signature" in message for message in messages)
    key_material = [keys.rsa.jwk()["n"], keys.ec.jwk()["x"], "BEGIN"]
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for secret in [*tokens, *key_material]:
            assert secret not in text
        for token in tokens:
            assert all(segment not in text for segment in token.split(".") if len(segment) > 8)


# ------------------------------------------------------------------------------------ settings


def test_from_env_unset_is_none() -> None:
    assert OidcSettings.from_env({}) is None
    assert OidcSettings.from_env({"OIDC_ISSUER": "  ", "OIDC_CLIENT_ID": "x"}) is None


def test_from_env_reads_every_variable() -> None:
    settings = OidcSettings.from_env(
        {
            "OIDC_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc",
            "OIDC_CLIENT_ID": "app-client",
            "OIDC_USERNAME_CLAIM": "cognito:username",
            "OIDC_GROUPS_CLAIM": "cognito:groups",
            "OIDC_LEEWAY_SECONDS": "30",
            "OIDC_GROUPS_STRING": "reject",
        }
    )
    assert settings == OidcSettings(
        issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc",
        client_id="app-client",
        username_claim="cognito:username",
        groups_claim="cognito:groups",
        leeway_seconds=30,
        groups_string="reject",
    )


def test_from_env_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OIDC_ISSUER", "https://idp.example.com")
    monkeypatch.setenv("OIDC_CLIENT_ID", "lisa")
    for name in ("OIDC_USERNAME_CLAIM", "OIDC_GROUPS_CLAIM", "OIDC_LEEWAY_SECONDS", "OIDC_GROUPS_STRING"):
        monkeypatch.delenv(name, raising=False)
    settings = OidcSettings.from_env()
    assert settings is not None
    assert (settings.username_claim, settings.groups_claim, settings.leeway_seconds) == ("sub", "groups", 60)
    assert settings.groups_string == "one-group"
    assert "HS256" not in settings.algorithms and {"RS256", "ES256"} <= set(settings.algorithms)


@pytest.mark.parametrize(
    "env",
    [
        {"OIDC_ISSUER": "https://idp.example.com"},
        {"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "x", "OIDC_LEEWAY_SECONDS": "soon"},
        {"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "x", "OIDC_LEEWAY_SECONDS": "-1"},
        {"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "x", "OIDC_LEEWAY_SECONDS": "3600"},
        {"OIDC_ISSUER": "http://idp.example.com", "OIDC_CLIENT_ID": "x"},
        {"OIDC_ISSUER": "idp.example.com", "OIDC_CLIENT_ID": "x"},
        {"OIDC_ISSUER": "https://idp.example.com", "OIDC_CLIENT_ID": "x", "OIDC_GROUPS_STRING": "split"},
    ],
)
def test_from_env_rejects_bad_configuration(env: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        OidcSettings.from_env(env)


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ("RS256", "HS512"), ()])
def test_symmetric_and_none_algorithms_cannot_be_configured(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        OidcSettings(issuer="https://idp.example.com", client_id="x", algorithms=algorithms)


def test_http_allowed_only_for_loopback() -> None:
    assert OidcSettings(issuer="http://localhost:8080/realms/x", client_id="x").issuer
    assert OidcSettings(issuer="http://[::1]:8080", client_id="x").issuer


def test_claim_helpers() -> None:
    claims = {"a.b": 1, "a": {"b": 2, "c": {"d": ["x"]}}}
    assert claim_value(claims, "a.b") == 1  # a literal name wins over the path
    assert claim_value(claims, "a.c.d") == ["x"]
    assert claim_value(claims, "a.c.e") is None
    assert claim_value(claims, "a.b.c") is None
    assert parse_groups(" x,y  z ") == ("x,y  z",)
    assert parse_groups("lisa-admins", "reject") is None
    assert parse_groups(["a", "a b"], "reject") == ("a", "a b")
    assert parse_groups(3) is None


@pytest.mark.parametrize(
    ("mode", "expected"), [("one-group", ("x lisa-admins",)), ("reject", ())], ids=["one-group", "reject"]
)
def test_groups_string_modes(
    idp: IdentityProvider, clock: FakeClock, keys: Keys, mode: str, expected: tuple[str, ...]
) -> None:
    """A string groups claim is one group (default) or no groups (reject): never split into names."""
    verifier = make_verifier(idp, clock, groups_string=mode)
    principal = verifier.verify(mint(keys.rsa, idp, groups="x lisa-admins"))
    assert principal is not None
    assert principal.groups == expected
    assert not principal.is_admin
    assert verifier.verify(mint(keys.rsa, idp, groups=["x", ADMIN_GROUP])) == Principal(
        "alice", ("x", ADMIN_GROUP), True, "jwt"
    )
