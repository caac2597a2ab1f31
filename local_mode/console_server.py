"""The console in local mode: its static files, its ``config.json`` and the one-time sign-in, on 127.0.0.1.

The sign-in link ``make local`` prints carries a one-time code in the URL *fragment*
(``http://127.0.0.1:8782/#code=...``): browsers never send a fragment to a server, so the code
appears in no request line and no log. The console reads it, removes it from the address bar and
trades it once (``POST /local/sign-in``, code in the JSON body) for the local admin's API token; a
used or expired code answers 401. Nothing here logs a request.

Every answer carries the security headers the CloudFront distribution sends in AWS
(``lisa_stacks/console.py`` uses the same ``SECURITY_HEADERS`` and ``content_security_policy``).
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lisa_stacks.console_policy import SECURITY_HEADERS, content_security_policy
from local_mode.http_thread import BackgroundHttpServer

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
SIGN_IN_PATH = "/local/sign-in"
#: How long a minted sign-in code stays usable (seconds).
CODE_TTL_SECONDS = 600.0
MAX_SIGN_IN_BODY = 4096


class SignInCodes:
    """One-time codes: each works once, within ``ttl`` seconds."""

    def __init__(self, ttl: float = CODE_TTL_SECONDS) -> None:
        self._ttl = ttl
        self._codes: dict[str, float] = {}
        self._lock = threading.Lock()

    def mint(self) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = time.monotonic() + self._ttl
        return code

    def redeem(self, code: str) -> bool:
        """Whether ``code`` is unused and unexpired; it is used up either way."""
        now = time.monotonic()
        with self._lock:
            match = next((known for known in self._codes if hmac.compare_digest(known, code)), None)
            if match is None:
                return False
            expires = self._codes.pop(match)
            self._codes = {known: until for known, until in self._codes.items() if until > now}
        return expires > now


class ConsoleServer(BackgroundHttpServer):
    """The console on ``http://127.0.0.1:<port>``; ``config`` becomes its ``/config.json``."""

    def __init__(self, host: str, port: int, root: Path = CONSOLE_DIR) -> None:
        self.codes = SignInCodes()
        #: What a sign-in code is traded for (set once local mode has created the admin token).
        self.token = ""
        self.config: dict[str, Any] = {}
        handler = type("ConsoleRequestHandler", (_Handler,), {"console": self, "root": root.resolve()})
        super().__init__(handler, host, port, "console")

    def sign_in_link(self) -> str:
        """A fresh link that signs the local admin in once."""
        return f"{self.url}/#code={self.codes.mint()}"


class _Handler(BaseHTTPRequestHandler):
    console: ConsoleServer
    root: Path
    protocol_version = "HTTP/1.1"
    server_version = "lisa-local-console"

    def _send(self, status: int, body: bytes, content_type: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        config = self.console.config
        csp = content_security_policy([config.get("adminApiUrl", ""), config.get("serveUrl", "")])
        for name, value in (SECURITY_HEADERS | {"Content-Security-Policy": csp}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == "/config.json":
            self._json(HTTPStatus.OK, self.console.config)
            return
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            self._json(HTTPStatus.NOT_FOUND, {"message": f"no file {path}"})
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._send(HTTPStatus.OK, target.read_bytes(), content_type, cache="no-cache")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if urlsplit(self.path).path != SIGN_IN_PATH:
            self._json(HTTPStatus.NOT_FOUND, {"message": "no such route"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_SIGN_IN_BODY:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"message": "body too large"})
            return
        try:
            code = json.loads(self.rfile.read(length) or b"{}").get("code")
        except (ValueError, AttributeError):
            code = None
        if not isinstance(code, str) or not code:
            self._json(
                HTTPStatus.BAD_REQUEST, {"message": "code: required (the part after #code= in the link)"}
            )
            return
        if not self.console.codes.redeem(code) or not self.console.token:
            self._json(
                HTTPStatus.UNAUTHORIZED,
                {
                    "message": "This sign-in link was used already or has expired; run `make local` "
                    "again or paste an API token."
                },
            )
            return
        self._json(HTTPStatus.OK, {"token": self.console.token})

    def log_message(self, format: str, *args: Any) -> None:
        """Nothing: a request log is not needed here, and must never hold a credential."""
