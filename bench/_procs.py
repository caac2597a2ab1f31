"""Processes the benchmarks start on 127.0.0.1 (and stop by their own PID): an AWS emulator (moto),
the stand-in model backend, LISA serve replicas and the LiteLLM proxy server."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from local_mode.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ADMIN_GROUP = "lisa-admins"
OFFLINE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
}
for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)
os.environ.pop("AWS_PROFILE", None)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def wait_http(url: str, timeout: float, ok: Callable[[httpx.Response], bool] | None = None) -> float:
    """Seconds until ``url`` answers (200, or ``ok``); TimeoutError after ``timeout``."""
    started = time.monotonic()
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if (ok or (lambda r: r.status_code == 200))(response):
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{url} did not answer in {timeout} s")
        time.sleep(0.02)


class Process:
    """A child process with its output in a log file; ``stop()`` ends exactly this PID."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        capture_stdout: bool = False,
    ) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"lisa-bench-{name}-", suffix=".log")[1])
        self._log: IO[str] = self.log_path.open("w")
        self.started = time.monotonic()
        self.popen = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE if capture_stdout else self._log,
            stderr=self._log,
            text=True,
        )
        self.lines: list[str] = []
        self._line_event = threading.Event()
        if capture_stdout:
            threading.Thread(target=self._pump, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)
            self._line_event.set()

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if match := re.search(pattern, line):
                    return match
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} printed no {pattern!r} in {timeout} s: {self.tail()}")
            self._line_event.wait(0.05)
            self._line_event.clear()

    def tail(self, size: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-size:]

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()


@contextlib.contextmanager
def _stopped_on_error(process: Process) -> Iterator[None]:
    """Stops ``process`` if the block raises: a start that fails or is interrupted (Ctrl-C) leaves nothing."""
    try:
        yield
    except BaseException:
        process.stop()
        raise


# ---- the AWS emulator -------------------------------------------------------------------------------
def start_moto() -> tuple[Process, str]:
    port = free_port()
    process = Process("moto", [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
    url = f"http://127.0.0.1:{port}"
    with _stopped_on_error(process):
        wait_http(url + "/moto-api/", 30)
    return process, url


# ---- the stand-in model backend -----------------------------------------------------------------
def start_backend(port: int | None = None) -> tuple[Process, str]:
    """``tests.support.fake_backend`` on uvicorn (uvloop/httptools when installed); URL ends in /v1."""
    port = port or free_port()
    process = Process("backend", [PYTHON, "-m", "bench.backend", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    with _stopped_on_error(process):
        wait_http(url + "/v1/models", 30)
    return process, url + "/v1"


# ---- LISA ---------------------------------------------------------------------------------------
@dataclass
class Lisa:
    """LISA's registry in the emulator and what a benchmark needs to drive it."""

    moto_url: str
    models_table: str
    tokens_table: str
    management_key_secret_arn: str
    management_key: str
    registry: Any  # lisa_domain.registry.ModelRegistry
    tokens: Any  # lisa_domain.tokens.TokenStore

    def serve_env(self, **extra: str) -> dict[str, str]:
        return {
            "PYTHONPATH": os.pathsep.join([str(ROOT / "litellm_container"), str(ROOT / "lambdas")]),
            "AWS_ENDPOINT_URL": self.moto_url,
            "MODELS_TABLE_NAME": self.models_table,
            "TOKENS_TABLE_NAME": self.tokens_table,
            "MANAGEMENT_KEY_SECRET_ARN": self.management_key_secret_arn,
            "LISA_SERVE_ALLOW_MANAGEMENT_KEY": "true",  # the benchmarks authenticate with it
            "ADMIN_GROUP": ADMIN_GROUP,
            "LISA_SERVE_ACCESS_LOG": "false",
            "LISA_SERVE_LOG_LEVEL": "warning",
            **extra,
        }

    def add_model(
        self, model_id: str, backend_url: str, backend_model: str = "echo", *, model_type: str = "textgen"
    ) -> None:
        from lisa_domain.registry import now
        from lisa_domain.schema import ModelRecord, ModelStatus, ModelType

        self.registry.create(
            ModelRecord(
                modelId=model_id,
                modelName=backend_model,
                modelType=ModelType(model_type),
                streaming=model_type == "textgen",
                status=ModelStatus.CREATING,
                createdAt=now(),
                updatedAt=now(),
            )
        )
        self.registry.register(
            model_id,
            {"model": f"openai/{backend_model}", "api_base": backend_url, "api_key": "unused"},
            allowed_from=[ModelStatus.CREATING],
        )


def lisa_registry(moto_url: str, prefix: str = "lisa-bench") -> Lisa:
    for path in ("lambdas", "litellm_container"):
        if str(ROOT / path) not in sys.path:
            sys.path.insert(0, str(ROOT / path))
    import boto3

    from lisa_domain.registry import ModelRegistry
    from lisa_domain.tokens import TokenStore
    from local_mode.resources import create_resources

    resources = create_resources(prefix, endpoint_url=moto_url)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_url)
    return Lisa(
        moto_url=moto_url,
        models_table=resources.models_table,
        tokens_table=resources.tokens_table,
        management_key_secret_arn=resources.management_key_secret_arn,
        management_key=resources.management_key,
        registry=ModelRegistry(resources.models_table, dynamodb),
        tokens=TokenStore(resources.tokens_table, dynamodb),
    )


def start_serve(lisa: Lisa, *, name: str = "serve", **extra_env: str) -> tuple[Process, str]:
    """``python -m serve`` (the container's entry point) on a free port, waited for until ready."""
    process = Process(
        name,
        [PYTHON, "-m", "serve", "--host", "127.0.0.1", "--port", "0"],
        env=lisa.serve_env(**extra_env),
        capture_stdout=True,
    )
    with _stopped_on_error(process):
        url = process.wait_line(r"listening on (http://\S+)", 120).group(1)
        wait_http(url + "/health/ready", 60)
    return process, url


# ---- the LiteLLM proxy server ----------------------------------------------------------------------
PROXY_VERSION = "1.108.7"
PROXY_VENV = Path(os.environ.get("LISA_BENCH_PROXY_VENV", str(ROOT / "bench" / ".venv-proxy")))


def proxy_venv() -> Path:
    """The proxy's own virtual environment, created on first use (``litellm[proxy]==1.108.7``)."""
    litellm = PROXY_VENV / "bin" / "litellm"
    if litellm.exists():
        return litellm
    log(
        f"creating {PROXY_VENV} with litellm[proxy]=={PROXY_VERSION} for the comparison "
        "(first run only: a few minutes)"
    )
    subprocess.run([sys.executable, "-m", "venv", str(PROXY_VENV)], check=True)
    subprocess.run(
        [
            str(PROXY_VENV / "bin" / "pip"),
            "install",
            "--disable-pip-version-check",
            "-q",
            f"litellm[proxy]=={PROXY_VERSION}",
        ],
        check=True,
    )
    log("proxy environment ready")
    return litellm


def start_proxy(
    models: Mapping[str, str], backend_url: str, master_key: str, *, workers: int = 1
) -> tuple[Process, str]:
    """The LiteLLM proxy (no database) with ``models`` (name -> backend model) and ``workers``
    worker processes, on a free port."""
    litellm = proxy_venv()
    port = free_port()
    lines = ["model_list:"]
    for name, backend_model in models.items():
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: openai/{backend_model}",
            f"      api_base: {backend_url}",
            "      api_key: unused",
        ]
    lines += [
        "general_settings:",
        f"  master_key: {master_key}",
        "litellm_settings:",
        "  telemetry: false",
        "  num_retries: 0",
        "  request_timeout: 300",
    ]
    config = Path(tempfile.mkstemp(prefix="lisa-bench-proxy-", suffix=".yaml")[1])
    config.write_text("\n".join(lines) + "\n")
    process = Process(
        "litellm-proxy",
        [
            str(litellm),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(workers),
        ],
        env={"DISABLE_SCHEMA_UPDATE": "true", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    with _stopped_on_error(process):
        try:
            wait_http(url + "/health/liveliness", 180)
        except TimeoutError:
            raise RuntimeError(f"the LiteLLM proxy did not start: {process.tail()}") from None
    return process, url


# ---- a benchmark's processes ------------------------------------------------------------------
class Processes(contextlib.ExitStack):
    """The processes a benchmark starts, stopped in reverse order when the ``with`` block ends.

        with Processes() as processes:
            lisa, backend_url = processes.registry_with_backend("lisa-example")
            serve_url = processes.add(start_serve(lisa))

    Every recorded process is stopped, also after an error or Ctrl-C (and if stopping one fails).
    """

    def add(self, started: tuple[Process, str]) -> str:
        """Records a ``start_*`` result's process; returns its URL."""
        process, url = started
        self.add_process(process)
        return url

    def add_process(self, process: Process) -> Process:
        self.callback(process.stop)
        return process

    def registry_with_backend(self, prefix: str = "lisa-bench") -> tuple[Lisa, str]:
        """Starts moto and the stand-in backend; returns LISA's registry (``prefix``) and the backend's URL."""
        moto_url = self.add(start_moto())
        backend_url = self.add(start_backend())
        return lisa_registry(moto_url, prefix), backend_url
