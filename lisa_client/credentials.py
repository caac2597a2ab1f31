"""The sign-in cache: ``<config dir>/lisa/credentials.json``, mode 600, one token per admin URL.

The config directory is ``LISA_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/lisa``, else ``~/.config/lisa``.
An expired token is never returned.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

#: Seconds before expiry at which a cached token is treated as expired (a request in flight).
EXPIRY_MARGIN = 30


def config_dir() -> Path:
    if configured := os.environ.get("LISA_CONFIG_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "lisa"


def credentials_file() -> Path:
    return config_dir() / "credentials.json"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(credentials_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> None:
    path = credentials_file()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    # Created 600 from the start: the token is never readable by others, not even for a moment.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(data, handle, indent=2)
    temporary.replace(path)


def _key(admin_url: str) -> str:
    return admin_url.rstrip("/")


def store(admin_url: str, token: str, expires_at: int | None, issuer: str) -> Path:
    data = _read()
    data[_key(admin_url)] = {"token": token, "expiresAt": expires_at, "issuer": issuer}
    _write(data)
    return credentials_file()


def cached_token(admin_url: str, *, now: float | None = None) -> str | None:
    entry = _read().get(_key(admin_url))
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        return None
    expires_at = entry.get("expiresAt")
    at = time.time() if now is None else now
    if isinstance(expires_at, int) and expires_at - EXPIRY_MARGIN <= at:
        return None
    return str(entry["token"])


def forget(admin_url: str) -> bool:
    data = _read()
    if data.pop(_key(admin_url), None) is None:
        return False
    _write(data)
    return True
