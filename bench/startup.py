"""Start-up and cold start: admin handler import vs ``import boto3``, serve start-to-ready, ``make synth``.

    .venv/bin/python -m bench.startup [--repeat 7] [--no-synth] [--imports-only]

* Import time: a fresh interpreter per sample (``python -c``), timing only the import statement
  (the interpreter's own start is the same for both and excluded). Target: admin handler <= 1.5x
  ``import boto3``. Also shown: the import plus ``load_routes()`` (the route modules, request models
  and domain the first request imports), so the work the lazy imports moved stays visible.
* Serve: from ``Popen`` of ``python -m serve`` to the first 200 from ``/health/ready`` (registry
  loaded, one model), with a moto server already running. Target: < 5 s.
* ``make synth``: wall time of the Makefile target as a developer runs it (its ``install``
  prerequisite is a no-op once installed); run last, once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

from bench._http import median
from bench._procs import PYTHON, ROOT, Process, Processes, log, wait_http

ADMIN_ENV = {
    "PYTHONPATH": str(ROOT / "lambdas"),
    "MODELS_TABLE_NAME": "lisa-models",
    "TOKENS_TABLE_NAME": "lisa-tokens",
    "MANAGEMENT_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mk",
    "MODEL_SECRET_PREFIX": "lisa/models/",
    "CREATE_MODEL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:c",
    "UPDATE_MODEL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:u",
    "DELETE_MODEL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:d",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "LISA",
}


def import_seconds(statement: str, env: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [PYTHON, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(out.stdout.strip().splitlines()[-1])


def serve_start_seconds(repeat: int) -> list[float]:
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-startup")
        lisa.add_model("startup-model", backend_url)
        samples = []
        for index in range(repeat):
            process = Process(
                f"serve-start-{index}",
                [PYTHON, "-m", "serve", "--host", "127.0.0.1", "--port", "0"],
                env=lisa.serve_env(),
                capture_stdout=True,
            )
            try:
                url = process.wait_line(r"listening on (http://\S+)", 120).group(1)
                wait_http(url + "/health/ready", 120)
                samples.append(time.monotonic() - process.started)
            finally:
                process.stop()
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--serve-repeat", type=int, default=3)
    parser.add_argument("--no-synth", action="store_true")
    parser.add_argument("--imports-only", action="store_true", help="only the import times")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    log("import times")
    boto = [import_seconds("import boto3", {}) for _ in range(args.repeat)]
    admin = [import_seconds("import admin_api.handler", ADMIN_ENV) for _ in range(args.repeat)]
    loaded = [
        import_seconds("import admin_api.handler; admin_api.handler.load_routes()", ADMIN_ENV)
        for _ in range(args.repeat)
    ]
    ratio = median(admin) / median(boto)
    rows.append(("`import boto3`", f"{median(boto) * 1000:.0f} ms", ""))
    rows.append(
        (
            "admin handler import (`admin_api.handler`)",
            f"{median(admin) * 1000:.0f} ms ({ratio:.2f}x boto3)",
            f"<= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}",
        )
    )
    rows.append(
        (
            "admin handler import + `load_routes()` (first request)",
            f"{median(loaded) * 1000:.0f} ms ({median(loaded) / median(boto):.2f}x boto3)",
            "",
        )
    )
    if args.imports_only:
        _print(args, rows)
        return
    log("serve start-to-ready")
    serve = serve_start_seconds(args.serve_repeat)
    rows.append(
        (
            "serve: process start to ready",
            f"{median(serve):.2f} s (min {min(serve):.2f}, max {max(serve):.2f})",
            f"< 5 s: {'met' if median(serve) < 5 else 'NOT met'}",
        )
    )
    if not args.no_synth:
        log("make synth (once)")
        started = time.monotonic()
        result = subprocess.run(["make", "synth"], cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        status = "ok" if result.returncode == 0 else f"failed ({result.returncode}): {result.stderr[-300:]}"
        rows.append(("`make synth` wall time", f"{seconds:.1f} s", status))
    _print(args, rows)


def _print(args: argparse.Namespace, rows: list[tuple[str, str, str]]) -> None:
    print(f"\nStart-up (median of {args.repeat} imports, {args.serve_repeat} serve starts)\n")
    print("| what | time | target |")
    print("| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
