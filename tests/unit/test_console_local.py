"""Local mode's console server (one-time sign-in, static files, security headers) and the admin
API's CORS headers (``admin_api.cors``, the local API Gateway adapter's preflight)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lisa_domain.cors import cors_headers, parse_origins
from local_mode.apigw import ApiGatewayAdapter
from local_mode.console_server import ConsoleServer, SignInCodes

CONSOLE = "http://127.0.0.1:8782"


def test_a_sign_in_code_works_once() -> None:
    codes = SignInCodes()
    code = codes.mint()
    assert not codes.redeem("x" + code[1:])
    assert codes.redeem(code)
    assert not codes.redeem(code)


def test_an_expired_sign_in_code_is_refused() -> None:
    codes = SignInCodes(ttl=-1)
    assert not codes.redeem(codes.mint())


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleServer]:
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "app.js").write_text("export {};")
    (tmp_path.parent / "secret.txt").write_text("not served")
    server = ConsoleServer("127.0.0.1", 0, root=tmp_path)
    server.token = "lisa_admin-token"
    server.config = {
        "mode": "local",
        "adminApiUrl": "http://127.0.0.1:8780",
        "serveUrl": "http://127.0.0.1:8781/v2/serve",
    }
    server.start()
    yield server
    server.stop()


def test_the_console_is_served_with_a_strict_content_security_policy(console: ConsoleServer) -> None:
    page = httpx.get(console.url + "/")
    assert page.status_code == 200 and "console" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "connect-src 'self' http://127.0.0.1:8780 http://127.0.0.1:8781;" in csp, csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(console.url + "/js/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(console.url + "/config.json").json()["serveUrl"] == "http://127.0.0.1:8781/v2/serve"
    assert httpx.get(console.url + "/../secret.txt").status_code == 404
    assert httpx.get(console.url + "/%2e%2e/secret.txt").status_code == 404


def test_the_sign_in_link_is_traded_once_for_the_token_and_never_logged(
    console: ConsoleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    link = console.sign_in_link()
    assert link.startswith(console.url + "/#code=")
    code = link.split("#code=", 1)[1]
    exchange = console.url + "/local/sign-in"
    assert httpx.post(exchange, json={}).status_code == 400
    assert httpx.post(exchange, json={"code": "guess"}).status_code == 401
    first = httpx.post(exchange, json={"code": code})
    assert first.status_code == 200 and first.json() == {"token": "lisa_admin-token"}
    again = httpx.post(exchange, json={"code": code})
    assert again.status_code == 401 and "used already" in again.json()["message"]
    captured = capsys.readouterr()
    assert code not in captured.out + captured.err


def test_cors_headers_only_for_an_allowed_origin() -> None:
    allowed = parse_origins(f" {CONSOLE}/ , https://console.example.com")
    assert allowed == (CONSOLE, "https://console.example.com")
    assert cors_headers(CONSOLE, allowed) == {"Access-Control-Allow-Origin": CONSOLE, "Vary": "Origin"}
    assert cors_headers("https://evil.example", allowed) == {}
    assert cors_headers(None, allowed) == {}
    assert cors_headers(CONSOLE, ()) == {}


def test_the_admin_lambda_adds_cors_headers_for_the_console_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from admin_api.cors import with_cors
    from lisa_domain.settings import settings

    monkeypatch.setenv("MODELS_TABLE_NAME", "models")
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", CONSOLE)
    settings.cache_clear()
    try:
        response: dict[str, Any] = {
            "statusCode": 200,
            "multiValueHeaders": {"Content-Type": ["application/json"]},
        }
        added = with_cors({"headers": {"origin": CONSOLE}}, dict(response))
        assert added["headers"]["Access-Control-Allow-Origin"] == CONSOLE
        other = with_cors({"headers": {"Origin": "https://evil.example"}}, dict(response))
        assert "headers" not in other
    finally:
        settings.cache_clear()


def _deny(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise Exception("Unauthorized")


def _handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps({"ok": True})}


def test_the_local_gateway_answers_preflight_and_its_own_errors_with_cors() -> None:
    adapter = ApiGatewayAdapter(_handler, _deny, cors_origins=(CONSOLE,))
    preflight = adapter.handle("OPTIONS", "/models", [("Origin", CONSOLE)], b"")
    headers = dict(preflight.headers)
    assert preflight.status == 204
    assert headers["Access-Control-Allow-Origin"] == CONSOLE
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Origin" not in dict(
        adapter.handle("OPTIONS", "/models", [("Origin", "https://evil.example")], b"").headers
    )
    refused = adapter.handle("GET", "/models", [("Origin", CONSOLE)], b"")
    assert refused.status == 401 and dict(refused.headers)["Access-Control-Allow-Origin"] == CONSOLE
    assert "Access-Control-Allow-Origin" not in dict(adapter.handle("GET", "/models", [], b"").headers)


def test_the_console_loads_nothing_from_another_origin() -> None:
    """No CDN, no font service: every script, style, font and image comes from console/ itself."""
    import re

    root = Path(__file__).resolve().parents[2] / "console"
    files = [p for p in root.rglob("*") if p.suffix in (".html", ".js", ".css")]
    assert files
    remote = re.compile(
        r"""(?:src|href)\s*=\s*["'](?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//|from\s+["'](?:https?:)?//"""
    )
    for path in files:
        assert not remote.search(path.read_text()), f"{path.name} loads a remote resource"
