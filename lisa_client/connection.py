"""Where the CLI connects, and with which token.

In order: ``--local`` reads local mode's state file (``local_state_file``); otherwise
``--admin-url`` / ``LISA_ADMIN_URL`` with ``--token`` / ``LISA_TOKEN``, or, without a token, the
one ``lisa login`` cached for that URL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from lisa_client import credentials

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_FILE = Path(".lisa") / "local.json"


class NotConfigured(Exception):
    """No usable admin URL or token; the message says what to set."""


@dataclass(frozen=True)
class Connection:
    admin_url: str
    token: str
    serve_url: str | None = None


def local_state_file() -> Path:
    """``LISA_LOCAL_STATE_FILE``; else ``.lisa/local.json`` in the working directory when there is
    one, else this repository's (where ``make local`` writes it)."""
    if configured := os.environ.get("LISA_LOCAL_STATE_FILE"):
        return Path(configured)
    here = Path.cwd() / STATE_FILE
    return here if here.exists() else REPO_ROOT / STATE_FILE


def from_local(path: Path | None = None) -> Connection:
    state_file = path or local_state_file()
    try:
        state = json.loads(state_file.read_text())
        return Connection(state["adminApiUrl"], state["adminToken"], state.get("serveUrl"))
    except FileNotFoundError as error:
        raise NotConfigured(f"--local: {state_file} not found; start local mode with `make local`") from error
    except (ValueError, KeyError, TypeError) as error:
        raise NotConfigured(f"--local: {state_file} is not local mode's state file") from error


def resolve(admin_url: str | None, token: str | None, serve_url: str | None, local: bool) -> Connection:
    if local:
        return from_local()
    if not admin_url:
        raise NotConfigured("no admin API: pass --admin-url or set LISA_ADMIN_URL (or use --local)")
    if not token:
        token = credentials.cached_token(admin_url)
    if not token:
        raise NotConfigured(
            f"no token for {admin_url}: pass --token, set LISA_TOKEN, or sign in with `lisa login`"
        )
    return Connection(admin_url, token, serve_url)
