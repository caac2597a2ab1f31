"""``lisa login``'s device-code sign-in (a stand-in identity provider on httpx.MockTransport), the
token cache (mode 600, expiry, per admin URL) and how the CLI picks its connection."""

from __future__ import annotations

import base64
import importlib
import json
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from lisa_client import credentials
from lisa_client.connection import NotConfigured, from_local, resolve
from lisa_client.signin import DEVICE_GRANT, DevicePrompt, SignInFailed, device_sign_in

ISSUER = "https://idp.test/realms/lisa"


def jwt_with_exp(exp: int) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part({'exp': exp, 'sub': 'alice'})}.c2ln"


def provider(
    token_answers: list[dict[str, Any]], discovery: dict[str, Any] | None = None
) -> tuple[httpx.Client, list[dict[str, str]]]:
    posted: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(
                200,
                json=discovery
                or {"device_authorization_endpoint": f"{ISSUER}/device", "token_endpoint": f"{ISSUER}/token"},
            )
        form = dict(httpx.QueryParams(request.content.decode()))
        posted.append(form)
        if request.url.path.endswith("/device"):
            return httpx.Response(
                200,
                json={
                    "device_code": "dc-1",
                    "user_code": "ABCD-EFGH",
                    "verification_uri": f"{ISSUER}/activate",
                    "expires_in": 600,
                    "interval": 2,
                },
            )
        return httpx.Response(400 if "error" in token_answers[0] else 200, json=token_answers.pop(0))

    return httpx.Client(transport=httpx.MockTransport(handler)), posted


def test_device_code_sign_in_polls_until_approved_and_honours_slow_down() -> None:
    token = jwt_with_exp(2_000_000_000)
    http, posted = provider(
        [
            {"error": "authorization_pending"},
            {"error": "slow_down"},
            {"id_token": token, "access_token": "opaque"},
        ]
    )
    prompts: list[DevicePrompt] = []
    sleeps: list[float] = []
    signed_in = device_sign_in(ISSUER, "lisa-cli", prompts.append, http=http, sleep=sleeps.append)
    assert signed_in.token == token and signed_in.expires_at == 2_000_000_000
    assert prompts[0].user_code == "ABCD-EFGH"
    assert sleeps == [2, 2, 7]
    assert posted[0] == {"client_id": "lisa-cli", "scope": "openid profile email"}
    assert posted[1] == {"grant_type": DEVICE_GRANT, "device_code": "dc-1", "client_id": "lisa-cli"}


def test_device_code_sign_in_failures_say_why() -> None:
    http, _ = provider([{"error": "access_denied", "error_description": "the user declined"}])
    with pytest.raises(SignInFailed, match="the user declined"):
        device_sign_in(ISSUER, "lisa-cli", lambda prompt: None, http=http, sleep=lambda _: None)
    http, _ = provider([], discovery={"token_endpoint": f"{ISSUER}/token"})
    with pytest.raises(SignInFailed, match="device-code"):
        device_sign_in(ISSUER, "lisa-cli", lambda prompt: None, http=http, sleep=lambda _: None)
    clock = iter([0.0, 601.0])
    http, _ = provider([{"error": "authorization_pending"}])
    with pytest.raises(SignInFailed, match="expired"):
        device_sign_in(
            ISSUER, "c", lambda prompt: None, http=http, sleep=lambda _: None, clock=lambda: next(clock)
        )


def test_the_token_cache_is_mode_600_per_url_and_ignores_expired_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LISA_CONFIG_DIR", str(tmp_path / "lisa"))
    path = credentials.store("https://admin.test/prod/", "tok-1", 2_000_000_000, ISSUER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert credentials.cached_token("https://admin.test/prod") == "tok-1"
    assert credentials.cached_token("https://other.test") is None
    assert credentials.cached_token("https://admin.test/prod", now=2_000_000_000) is None
    assert resolve("https://admin.test/prod", None, None, local=False).token == "tok-1"
    assert resolve("https://admin.test/prod", "explicit", None, local=False).token == "explicit"
    assert (
        credentials.forget("https://admin.test/prod")
        and credentials.cached_token("https://admin.test/prod") is None
    )
    with pytest.raises(NotConfigured, match="lisa login"):
        resolve("https://admin.test/prod", None, None, local=False)


def test_local_reads_local_modes_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "local.json"
    state.write_text(
        json.dumps(
            {
                "adminApiUrl": "http://127.0.0.1:1",
                "serveUrl": "http://127.0.0.1:2/v2/serve",
                "adminToken": "t",
            }
        )
    )
    monkeypatch.setenv("LISA_LOCAL_STATE_FILE", str(state))
    connection = resolve(None, None, None, local=True)
    assert (connection.admin_url, connection.token, connection.serve_url) == (
        "http://127.0.0.1:1",
        "t",
        "http://127.0.0.1:2/v2/serve",
    )
    with pytest.raises(NotConfigured, match="make local"):
        from_local(tmp_path / "missing.json")


def test_lisa_login_caches_the_token_and_later_commands_use_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from lisa_client.cli import main

    login_module = importlib.import_module("lisa_client.cli.login")  # the package exports the command
    from lisa_client.signin import SignIn

    monkeypatch.setenv("LISA_CONFIG_DIR", str(tmp_path))

    def fake_sign_in(issuer: str, client_id: str, show: Any) -> SignIn:
        show(DevicePrompt(f"{issuer}/activate", "WXYZ-1234", None))
        return SignIn("jwt-from-idp", 2_000_000_000)

    monkeypatch.setattr(login_module, "device_sign_in", fake_sign_in)
    args = ["login", "--admin-url", "https://admin.test", "--issuer", ISSUER, "--client-id", "lisa-cli"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "WXYZ-1234" in result.stderr and credentials.cached_token("https://admin.test") == "jwt-from-idp"
    assert CliRunner().invoke(main, ["logout", "--admin-url", "https://admin.test"]).exit_code == 0
    assert credentials.cached_token("https://admin.test") is None


def test_without_a_state_file_here_local_mode_reads_the_repositorys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lisa_client.connection import REPO_ROOT, local_state_file

    monkeypatch.delenv("LISA_LOCAL_STATE_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert local_state_file() == REPO_ROOT / ".lisa" / "local.json"
    (tmp_path / ".lisa").mkdir()
    (tmp_path / ".lisa" / "local.json").write_text("{}")
    assert local_state_file() == tmp_path / ".lisa" / "local.json"
