"""Child processes that never outlive local mode: own process group, ``PR_SET_PDEATHSIG``, group kill."""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

#: Seconds a process gets to exit after SIGTERM before its group gets SIGKILL.
STOP_GRACE_SECONDS = 5.0

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _Spawner:
    """Starts processes from one long-lived thread.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child ends, and workflow steps run
    in short-lived request threads; forking from this thread ties the children to the process.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[list[str], dict[str, Any], Future[subprocess.Popen[bytes]]]] = (
            queue.Queue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            args, kwargs, future = self._requests.get()
            try:
                future.set_result(subprocess.Popen(args, **kwargs))  # noqa: S603 (fixed argv, no shell)
            except BaseException as error:
                future.set_exception(error)

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        kwargs.setdefault("start_new_session", True)
        kwargs.setdefault("preexec_fn", _die_with_parent())
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="local-process-spawner", daemon=True)
                self._thread.start()
        future: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((args, kwargs, future))
        return future.result(timeout=30)


spawner = _Spawner()


def signal_group(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def stop_process_group(process: subprocess.Popen[Any], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process's group, wait up to ``grace`` seconds, then SIGKILL it (no orphans)."""
    signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    signal_group(process, signal.SIGKILL)  # also reaps any grandchild left in the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
