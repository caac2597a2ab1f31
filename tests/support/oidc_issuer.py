"""A real OIDC identity-provider stand-in on 127.0.0.1 for tests: discovery document + JWKS over HTTP.

Key pairs are generated here (RSA 2048 / EC P-256); ``IdentityProvider`` serves
``<issuer>/.well-known/openid-configuration`` and ``<issuer>/certs`` from a ThreadingHTTPServer and
counts every request; ``sign`` makes a compact JWS with a key pair. Nothing leaves loopback.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

REALM_PATH = "/realms/lisa"


@dataclass(frozen=True)
class KeyPair:
    kid: str
    alg: str
    private: Any
    public: Any

    def jwk(self, **extra: Any) -> dict[str, Any]:
        to_jwk = RSAAlgorithm.to_jwk if self.alg.startswith(("RS", "PS")) else ECAlgorithm.to_jwk
        jwk: dict[str, Any] = dict(to_jwk(self.public, as_dict=True))
        jwk.update({"kid": self.kid, "use": "sig"}, **extra)
        return jwk

    def public_pem(self) -> bytes:
        return bytes(
            self.public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def rsa_key(kid: str) -> KeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(kid, "RS256", private, private.public_key())


def ec_key(kid: str) -> KeyPair:
    private = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(kid, "ES256", private, private.public_key())


def sign(key: KeyPair, claims: dict[str, Any], *, alg: str | None = None, kid: str | None = None) -> str:
    """A compact JWS of ``claims`` (``None`` values dropped) signed with ``key``."""
    payload = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(payload, key.private, algorithm=alg or key.alg, headers={"kid": kid or key.kid})


class IdentityProvider:
    """Discovery + JWKS over real HTTP on 127.0.0.1, with request counters and switches."""

    def __init__(self, jwks: list[dict[str, Any]]) -> None:
        self.jwks = jwks
        self.counts: Counter[str] = Counter()
        self.fail_jwks = False
        self.discovery_issuer: str | None = None  # None: the real issuer
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with provider._lock:
                    provider.counts[self.path] += 1
                if self.path == REALM_PATH + "/.well-known/openid-configuration":
                    issuer = provider.discovery_issuer or provider.issuer
                    self._json(200, {"issuer": issuer, "jwks_uri": provider.base + REALM_PATH + "/certs"})
                elif self.path == REALM_PATH + "/certs":
                    if provider.fail_jwks:
                        self._json(500, {"error": "boom"})
                    else:
                        self._json(200, {"keys": list(provider.jwks)})
                else:
                    self._json(404, {"error": "not found"})

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.base + REALM_PATH
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    @property
    def discovery_fetches(self) -> int:
        return self.counts[REALM_PATH + "/.well-known/openid-configuration"]

    @property
    def jwks_fetches(self) -> int:
        return self.counts[REALM_PATH + "/certs"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
