"""Local mode started as the README says (``make local`` runs ``python -m local_mode``), driven over HTTP.

The fixture starts the same command ``make local`` runs, in its own session (like a terminal's
foreground job), with ``LISA_LOCAL_STATE_FILE`` pointing into a temporary folder so a developer's
``.lisa/local.json`` is never touched, and with free ports. It waits for the state file, which
local mode writes once the demo models are settled, and reads the URLs and the admin token from it.

Every process local mode starts inherits ``LISA_LOCAL_INSTANCE=<uuid>``; ``instance_pids`` finds
them all through ``/proc``, however they were re-parented, which is how the tests prove that
nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
#: What ``make local`` runs once the runtimes are installed (the Makefile's ``local`` target).
LOCAL_MODE_COMMAND = [sys.executable, "-m", "local_mode"]
START_TIMEOUT = 400.0


def instance_pids(marker: str) -> list[int]:
    """Every live process whose environment carries ``LISA_LOCAL_INSTANCE=<marker>``."""
    needle = f"LISA_LOCAL_INSTANCE={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@dataclass
class LocalMode:
    process: subprocess.Popen[bytes]
    marker: str
    log_path: Path
    state_file: Path
    admin_url: str = ""
    serve_url: str = ""
    admin_token: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.admin_url,
            headers={"Authorization": f"Bearer {token or self.admin_token}"},
            timeout=30,
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill_everything(self) -> None:
        """Last resort after a failed test: nothing of this instance may outlive the test run."""
        for pid in instance_pids(self.marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_local_mode(tmp: Path, *extra_args: str) -> LocalMode:
    marker = uuid.uuid4().hex
    state_file = tmp / "local.json"
    log_path = tmp / "local-mode.log"
    env = dict(os.environ)
    env.update(
        {
            "LISA_LOCAL_STATE_FILE": str(state_file),
            "LISA_LOCAL_ADMIN_PORT": "0",
            "LISA_LOCAL_SERVE_PORT": "0",
            "LISA_LOCAL_INSTANCE": marker,
            "PYTHONUNBUFFERED": "1",
        }
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*LOCAL_MODE_COMMAND, *extra_args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    local = LocalMode(process, marker, log_path, state_file)
    deadline = time.monotonic() + START_TIMEOUT
    while not state_file.exists():
        if process.poll() is not None:
            raise AssertionError(f"local mode exited with {process.returncode}:\n{local.log()}")
        if time.monotonic() > deadline:
            local.kill_everything()
            raise AssertionError(
                f"local mode did not write {state_file} in {START_TIMEOUT:.0f} s:\n{local.log()}"
            )
        time.sleep(0.2)
    state = json.loads(state_file.read_text())
    local.admin_url, local.serve_url, local.admin_token = (
        state["adminApiUrl"],
        state["serveUrl"],
        state["adminToken"],
    )
    return local


@contextlib.contextmanager
def running_local_mode(tmp: Path, *extra_args: str) -> Iterator[LocalMode]:
    """``start_local_mode``; on exit stopped (SIGTERM), then anything of it left killed."""
    local = start_local_mode(tmp, *extra_args)
    try:
        yield local
    finally:
        try:
            local.stop(timeout=60)
        finally:
            local.kill_everything()


@pytest.fixture(scope="module")
def local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    """One local mode shared by the module's tests (none shuts it down); stopped after the last."""
    with running_local_mode(tmp_path_factory.mktemp("local-mode")) as local:
        yield local
