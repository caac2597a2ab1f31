"""OIDC device-code sign-in (RFC 8628) for ``lisa login``.

The identity provider's discovery document names the device-authorization and token endpoints; the
user opens the verification URL in any browser and enters the code while this polls the token
endpoint (``authorization_pending`` keeps waiting, ``slow_down`` adds 5 s to the interval, anything
else ends the sign-in). The ID token is what the admin API checks (issuer, audience = client id,
expiry); an access token is used only when the provider returns no ID token.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPE = "openid profile email"


class SignInFailed(Exception):
    """The sign-in did not produce a token; the message says why."""


@dataclass(frozen=True)
class DevicePrompt:
    verification_uri: str
    user_code: str
    verification_uri_complete: str | None


@dataclass(frozen=True)
class SignIn:
    token: str
    expires_at: int | None


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as error:
        raise SignInFailed(f"{what}: answered {response.status_code} without JSON") from error
    if not isinstance(data, dict):
        raise SignInFailed(f"{what}: unexpected answer")
    return data


def jwt_expiry(token: str) -> int | None:
    """The ``exp`` claim of a JWT, read without verifying it (only to know when to sign in again)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def device_sign_in(
    issuer: str,
    client_id: str,
    show: Callable[[DevicePrompt], None],
    *,
    scope: str = DEFAULT_SCOPE,
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> SignIn:
    if http is None:
        with httpx.Client(timeout=30) as owned:
            return device_sign_in(issuer, client_id, show, scope=scope, http=owned, sleep=sleep, clock=clock)
    client = http
    discovery = _json(
        client.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration"), "discovery document"
    )
    device_endpoint = discovery.get("device_authorization_endpoint")
    token_endpoint = discovery.get("token_endpoint")
    if not device_endpoint or not token_endpoint:
        raise SignInFailed(
            f"{issuer} does not offer the device-code sign-in (no device_authorization_endpoint)"
        )
    grant = _json(
        client.post(str(device_endpoint), data={"client_id": client_id, "scope": scope}),
        "device authorization",
    )
    if "device_code" not in grant:
        raise SignInFailed(
            f"device authorization refused: {grant.get('error_description') or grant.get('error')}"
        )
    show(
        DevicePrompt(
            str(grant["verification_uri"]), str(grant["user_code"]), grant.get("verification_uri_complete")
        )
    )
    interval = float(grant.get("interval", 5))
    deadline = clock() + float(grant.get("expires_in", 600))
    while clock() < deadline:
        sleep(interval)
        answer = _json(
            client.post(
                str(token_endpoint),
                data={
                    "grant_type": DEVICE_GRANT,
                    "device_code": grant["device_code"],
                    "client_id": client_id,
                },
            ),
            "token endpoint",
        )
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error:
            raise SignInFailed(f"sign-in ended: {answer.get('error_description') or error}")
        token = answer.get("id_token") or answer.get("access_token")
        if not token:
            raise SignInFailed("the token endpoint answered no id_token or access_token")
        expires_at = jwt_expiry(str(token))
        if expires_at is None and "expires_in" in answer:
            expires_at = int(time.time() + float(answer["expires_in"]))
        return SignIn(str(token), expires_at)
    raise SignInFailed("the code expired before the sign-in was completed")
