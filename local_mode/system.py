"""The whole system on one machine: emulator, resources, admin API, serve app, local model hosting.

``LocalSystem.start()`` brings the parts up in order, every one on 127.0.0.1:

1. moto's server in this process (``MOTO_PORT`` set first; Step Functions executes definitions);
2. the resources the stacks define: tables, the management key, the workflow-steps function and the
   three state machines from the same ASL files the CDK app deploys;
3. this process's environment becomes the Lambda environment (``AWS_ENDPOINT_URL`` = the emulator,
   ``HOSTING_BACKEND=local``), and the workflow-steps handler is registered with the
   in-process Lambda adapter;
4. the admin API behind the API-Gateway-style adapter (real authorizer, real handler);
5. the serve app as a subprocess, the container's own entry point;
6. an admin API token (created through the admin API with the management key), the demo models
   (through the admin API and the workflows) and ``.lisa/local.json``;
7. the console (``local_mode/console_server.py``) on its own port, whose origin is the only one
   both APIs answer CORS for; its one-time sign-in link is printed and written as ``consoleUrl``.

``stop()`` undoes all of it and leaves no process behind: model processes and the serve app run
in their own process groups and are killed as groups; each also gets SIGTERM from the kernel if
this process dies without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from local_mode.ports import HOST, free_port, port_or_free
from local_mode.processes import spawner, stop_process_group

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPORT_ROOTS = (REPO_ROOT / "lambdas", REPO_ROOT / "litellm_container", REPO_ROOT)
REGION = "us-east-1"
PREFIX = "lisa-local"
SERVE_PREFIX = "/v2/serve"
#: The serve container's entry point (litellm_container/Dockerfile), run from the same import roots.
SERVE_MODULE = "serve"

logger = logging.getLogger("local_mode")


class StartupError(RuntimeError):
    """A part of local mode did not come up; the message says which and why."""


def _ensure_import_roots() -> None:
    for root in reversed(IMPORT_ROOTS):
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))


@dataclass(frozen=True)
class Options:
    admin_port: int = 8780
    serve_port: int = 8781
    console_port: int = 8782
    state_file: Path = REPO_ROOT / ".lisa" / "local.json"
    run_dir: Path = REPO_ROOT / ".lisa"
    demo: bool = True
    #: Seconds each demo model may take to reach InService before local mode gives up waiting.
    demo_timeout: float = 600.0
    poll_seconds: int = 1
    max_polls: int = 300


@dataclass
class HttpResult:
    status: int
    body: Any


def http_json(
    method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 30.0
) -> HttpResult:
    """One JSON request with urllib (no third-party client in the process that hosts the handlers)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (http on 127.0.0.1)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
            status = int(response.status)
    except urllib.error.HTTPError as error:
        raw, status = error.read(), int(error.code)
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return HttpResult(status, parsed)


@dataclass
class LocalSystem:
    options: Options = field(default_factory=Options)
    out: TextIO = field(default_factory=lambda: sys.stdout)

    admin_url: str = ""
    serve_url: str = ""
    console_url: str = ""
    #: A one-time sign-in link for the console (``.lisa/local.json`` ``consoleUrl``).
    console_link: str = ""
    _console: Any = None
    admin_token: str = ""
    admin_group: str = ""
    _models_table: str = ""
    _usage_table: str = ""
    _identity: dict[str, str] = field(default_factory=dict)
    management_key: str = ""
    _moto: Any = None
    _admin: Any = None
    _serve: subprocess.Popen[bytes] | None = None
    _serve_log: IO[bytes] | None = None
    _wrote_state: bool = False
    _stopped: bool = False
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    # ---- output ------------------------------------------------------------------------------
    def say(self, message: str = "") -> None:
        print(message, file=self.out, flush=True)

    # ---- start -------------------------------------------------------------------------------
    def start(self) -> None:
        started = time.monotonic()
        _ensure_import_roots()
        self.options.run_dir.mkdir(parents=True, exist_ok=True)
        os.environ["LISA_LOCAL_RUN_DIR"] = str(self.options.run_dir)
        self._start_emulator()
        self._start_console()
        self._create_resources()
        self._start_admin_api()
        self._start_cost_control()
        self._start_serve()
        self._create_admin_token()
        self._configure_console()
        self.say(f"local mode: up in {time.monotonic() - started:.1f} s")
        if self.options.demo:
            self._create_demo_models()
        self._write_state()
        self._print_summary()

    def _start_emulator(self) -> None:
        from moto.server import ThreadedMotoServer

        from local_mode import moto_atomic

        moto_atomic.install()  # DynamoDB's per-request atomicity, which moto's threaded server lacks
        port = free_port()
        os.environ["MOTO_PORT"] = str(port)  # moto's interpreter calls Lambda at localhost:$MOTO_PORT
        server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        server.start()
        self._moto = server
        endpoint = f"http://{HOST}:{port}"
        config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
        result = http_json("POST", f"{endpoint}/moto-api/config", body=config)
        if result.status >= 300:
            raise StartupError(f"moto refused its configuration: {result.status} {result.body}")
        # Every boto3 client of this process (the in-process Lambdas) and of the serve app talks to it.
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        self.say(f"local mode: AWS emulator (moto) on {endpoint}")

    def _create_resources(self) -> None:
        from local_mode import sfn_lambda_adapter
        from local_mode.resources import create_resources, create_workflows

        resources = create_resources(PREFIX)
        workflows = create_workflows(PREFIX)
        self.management_key = resources.management_key
        from lisa_contracts.names import METRICS_NAMESPACE
        from lisa_contracts.settings import (
            DEFAULT_ADMIN_GROUP,
            AdminApiSettings,
            AuthorizerSettings,
            WorkflowStepsSettings,
        )

        # The in-process Lambdas read their settings models from this process's environment; the
        # serve process gets its own (``_serve_env``).
        secrets = {"model_secret_prefix": f"{PREFIX}/models/"}
        lambdas = {"powertools_service_name": "lisa-local"}
        self._identity = {
            "tokens_table": resources.tokens_table,
            "management_key_secret_arn": resources.management_key_secret_arn,
            "admin_group": DEFAULT_ADMIN_GROUP,
        }
        self._models_table = resources.models_table
        self._usage_table = resources.usage_table
        admin = AdminApiSettings.build(
            models_table=resources.models_table,
            tokens_table=resources.tokens_table,
            usage_table=resources.usage_table,
            admin_group=DEFAULT_ADMIN_GROUP,
            **secrets,
            **lambdas,
            # Local demo models listen on loopback over http (admin API modelUrl policy).
            model_url_allow_http=True,
            model_url_allowed_cidrs="127.0.0.0/8,::1/128",
            cors_origins=self.console_url,
            create_state_machine_arn=workflows.create_state_machine_arn,
            update_state_machine_arn=workflows.update_state_machine_arn,
            delete_state_machine_arn=workflows.delete_state_machine_arn,
            workflow_poll_seconds=self.options.poll_seconds,
            workflow_max_polls=self.options.max_polls,
        )
        self.admin_group = admin.admin_group
        steps = WorkflowStepsSettings.build(
            models_table=resources.models_table, hosting_backend="local", **secrets, **lambdas
        )
        os.environ.update(
            admin.to_env() | AuthorizerSettings.build(**self._identity, **lambdas).to_env() | steps.to_env()
        )
        # Read by Powertools itself.
        os.environ.update(
            {
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines would flood the console
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            }
        )
        from lisa_domain.settings import settings
        from local_mode import hosting
        from workflow_steps.handler import lambda_handler as workflow_handler

        settings.cache_clear()
        hosting.register()
        sfn_lambda_adapter.register(workflows.function_arn, workflow_handler)
        self._cleanups.append(lambda: sfn_lambda_adapter.unregister(workflows.function_arn))
        self.say("local mode: tables, management key, workflow function and 3 state machines created")

    def _start_admin_api(self) -> None:
        from admin_api.handler import lambda_handler as admin_handler
        from authorizer.handler import lambda_handler as authorizer_handler
        from local_mode.apigw import AdminApiServer, ApiGatewayAdapter

        adapter = ApiGatewayAdapter(
            admin_handler, authorizer_handler, region=REGION, cors_origins=(self.console_url,)
        )
        server = AdminApiServer(adapter, HOST, port_or_free(self.options.admin_port))
        server.start()
        self._admin = server
        self.admin_url = server.url
        self.say(f"local mode: admin API on {self.admin_url}")

    def _start_cost_control(self) -> None:
        from local_mode.cost_control import EvaluatorLoop, scheduler_seconds

        loop = EvaluatorLoop(scheduler_seconds())
        loop.start()
        self._cleanups.append(loop.stop)
        self.say(f"local mode: cost-control evaluator every {loop.interval:g} s (local_mode/cost_control.py)")

    def _serve_env(self, port: int) -> dict[str, str]:
        from lisa_contracts.settings import ServeSettings
        from local_mode.cost_control import serve_settings

        # Rate limits and budgets: LISA_USAGE_LIMITS in this process's environment reaches the serve
        # process and the admin API (none by default, as in a deployment).
        serve = ServeSettings.build(
            models_table=self._models_table,
            usage_table=self._usage_table,
            **self._identity,
            host=HOST,
            port=port,
            graceful_shutdown_seconds=3,
            litellm_local_model_cost_map=True,
            cors_origins=self.console_url,
            workers=1,  # one serve process on a developer machine (deployments: one per task vCPU)
            **serve_settings(),
        )
        env = dict(os.environ) | serve.to_env()
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(
                    [str(REPO_ROOT / "lambdas"), str(REPO_ROOT / "litellm_container")]
                    + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _start_serve(self) -> None:
        port = port_or_free(self.options.serve_port)
        log_dir = self.options.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "serve.log"
        self._serve_log = log_path.open("wb")
        self._serve = spawner.popen(
            [sys.executable, "-m", SERVE_MODULE],
            cwd=str(REPO_ROOT / "litellm_container"),
            env=self._serve_env(port),
            stdin=subprocess.DEVNULL,
            stdout=self._serve_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 90
        while True:
            if self._serve.poll() is not None:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise StartupError(f"the serve app exited with code {self._serve.returncode}:\n{tail}")
            try:
                if http_json("GET", f"{base}/health/ready", timeout=2).status == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StartupError(
                    f"the serve app was not ready ({base}/health/ready) within 90 s (log: {log_path})"
                )
            time.sleep(0.2)
        self.serve_url = base + SERVE_PREFIX
        self.say(f"local mode: serve app on {self.serve_url} (log: {log_path})")

    def _create_admin_token(self) -> None:
        # The admin API's first request prints Powertools' ColdStart metric (an EMF line meant for
        # CloudWatch, printed even with POWERTOOLS_METRICS_DISABLED): keep it off the console.
        with contextlib.redirect_stdout(io.StringIO()):
            result = http_json(
                "POST",
                f"{self.admin_url}/api-tokens",
                token=self.management_key,
                body={"username": "local-admin", "groups": [self.admin_group], "name": "local mode admin"},
            )
        if result.status not in (200, 201) or not isinstance(result.body, dict) or "token" not in result.body:
            raise StartupError(f"could not create the admin token: {result.status} {result.body}")
        self.admin_token = str(result.body["token"])

    def _start_console(self) -> None:
        from local_mode.console_server import ConsoleServer

        server = ConsoleServer(HOST, port_or_free(self.options.console_port))
        server.start()
        self._console = server
        self.console_url = server.url
        self.say(f"local mode: console on {self.console_url}")

    def _configure_console(self) -> None:
        self._console.config = {"mode": "local", "adminApiUrl": self.admin_url, "serveUrl": self.serve_url}
        self._console.token = self.admin_token
        # One-time code in the URL fragment: browsers never send it, so no server can log it.
        self.console_link = self._console.sign_in_link()

    def _create_demo_models(self) -> None:
        from local_mode.demo import DEMO_MODELS

        self.say("local mode: creating the demo models through the admin API")
        for body in DEMO_MODELS:
            result = http_json("POST", f"{self.admin_url}/models", self.admin_token, body)
            if result.status >= 300:
                self.say(f"  {body['modelId']}: create refused: {result.status} {result.body}")
        self.wait_for([str(body["modelId"]) for body in DEMO_MODELS], self.options.demo_timeout)

    def wait_for(self, model_ids: list[str], timeout: float) -> dict[str, str]:
        """Show each model's status changes until every one is settled; returns the final statuses."""
        started = time.monotonic()
        last: dict[str, str] = {}
        settled = {"InService", "Failed", "Stopped"}
        while True:
            for model_id in model_ids:
                if last.get(model_id) in settled:
                    continue
                result = http_json("GET", f"{self.admin_url}/models/{model_id}", self.admin_token)
                if result.status == 404:
                    status, reason = "gone", None
                elif result.status != 200:
                    status, reason = f"error {result.status}", None
                else:
                    model = result.body.get("model", {})
                    status, reason = str(model.get("status")), model.get("statusReason")
                if status != last.get(model_id):
                    elapsed = time.monotonic() - started
                    line = f"  {model_id:<12} {status:<10} ({elapsed:4.0f} s)"
                    if reason and status == "Failed":
                        line += f": {reason}"
                    self.say(line)
                    last[model_id] = status
            if all(last.get(m) in settled or last.get(m) == "gone" for m in model_ids):
                return last
            if time.monotonic() - started > timeout:
                self.say(f"  still waiting after {timeout:.0f} s; local mode keeps running")
                return last
            time.sleep(0.5)

    def state(self) -> dict[str, str]:
        return {
            "adminApiUrl": self.admin_url,
            "serveUrl": self.serve_url,
            "adminToken": self.admin_token,
            "consoleUrl": self.console_link,
        }

    def _write_state(self) -> None:
        path = self.options.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        temporary.write_text(json.dumps(self.state(), indent=2) + "\n")
        temporary.chmod(0o600)  # it holds an admin token
        temporary.replace(path)
        self._wrote_state = True

    def _print_summary(self) -> None:
        from local_mode.demo import examples

        self.say()
        self.say("LISA local mode is running.")
        self.say(f"  admin API:   {self.admin_url}")
        self.say(f"  serve API:   {self.serve_url}")
        self.say(f"  admin token: {self.admin_token}")
        self.say(f"  console:     {self.console_link}")
        self.say("               (sign-in link, works once; the code after # never reaches a server)")
        self.say()
        self.say(examples(self.admin_url, self.serve_url, self.admin_token, str(self.options.state_file)))

    # ---- stop --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything this started; safe to call twice and after a partial start."""
        if self._stopped:
            return
        self._stopped = True
        if self._admin is not None:
            self._admin.stop()
        if self._console is not None:
            self._console.stop()
        if "local_mode.hosting" in sys.modules:
            from local_mode.hosting import processes

            processes.stop_all(close=True)
        if self._serve is not None:
            stop_process_group(self._serve)
        if self._serve_log is not None:
            self._serve_log.close()
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception:  # pragma: no cover - best effort on the way out
                logger.exception("cleanup failed")
        if self._moto is not None:
            self._moto.stop()
        if self._wrote_state:
            try:
                current = json.loads(self.options.state_file.read_text())
                if current.get("adminToken") == self.admin_token:
                    self.options.state_file.unlink()  # its URLs and token are dead now
            except (OSError, ValueError):
                pass
