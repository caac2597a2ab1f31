"""Start-up and cold start: admin handler import vs ``import boto3``, serve start-to-ready, ``make synth``.

    .venv/bin/python -m bench.startup [--repeat 7] [--no-synth] [--imports-only]
    .venv/bin/python -m bench.startup --models 10,100,1000 [--serve-repeat 3] [--secrets]
    .venv/bin/python -m bench.startup --phases 1000 [--secrets]

* Import time: a fresh interpreter per sample (``python -c``), timing only the import statement
  (the interpreter's own start is the same for both and excluded). Target: admin handler <= 1.5x
  ``import boto3``. Also shown: the import plus ``load_routes()`` (the route modules, request models
  and domain the first request imports), so the work the lazy imports moved stays visible.
* Serve: from ``Popen`` of ``python -m serve`` to the first 200 from ``/health/ready`` (registry
  loaded, one model), with a moto server already running. Target: < 5 s.
* ``make synth``: wall time of the Makefile target as a developer runs it (its ``install``
  prerequisite is a no-op once installed); run last, once.
* ``--models 10,100,1000``: serve start-to-ready (one worker) with that many served models, seeded
  into moto by ``bench.seed``; per count the median of ``--serve-repeat`` starts, wall clock and the
  serve process's CPU time (user + system from ``/proc``, read at ready: on a shared machine the
  less noisy figure). ``--secrets``: every model's provider key is its own Secrets Manager secret
  (an external model), so start-up also reads one secret per model. ``--baseline DIR``: the serve
  code of another checkout (``git archive <commit> litellm_container lambdas | tar -x -C DIR``) is
  started alternately with this one's, so an A/B sees the same load.
* ``--phases N``: where one worker's start goes with N models, in this process, each phase's wall
  and CPU time: importing ``serve.app`` (LiteLLM), building the services, the registry read (the
  follower's Scan; its wall time is mostly moto's), parsing the items, the provider keys, the
  Router and the rest of the snapshot.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench._http import median
from bench._procs import PYTHON, ROOT, Lisa, Process, Processes, log, wait_http
from bench.seed import seed_models

#: Clock ticks per second of ``/proc/<pid>/stat``'s CPU times.
_TICKS = os.sysconf("SC_CLK_TCK")
_SECRET_PREFIX = "lisa-startup/models/"
T = TypeVar("T")

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def serve_start(lisa: Lisa, name: str, root: Path = ROOT) -> tuple[float, float]:
    """One start of ``python -m serve`` (one worker) of the checkout at ``root``: seconds from
    ``Popen`` to the first 200 from ``/health/ready``, and the CPU seconds the process used until then."""
    env = lisa.serve_env(LISA_SERVE_WORKERS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(root / "litellm_container"), str(root / "lambdas")])
    process = Process(
        name, [PYTHON, "-m", "serve", "--host", "127.0.0.1", "--port", "0"], env=env, capture_stdout=True
    )
    try:
        url = process.wait_line(r"listening on (http://\S+)", 120).group(1)
        wait_http(url + "/health/ready", 300)
        return time.monotonic() - process.started, cpu_seconds(process.pid)
    finally:
        process.stop()


def serve_start_seconds(repeat: int) -> list[float]:
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-startup")
        lisa.add_model("startup-model", backend_url)
        return [serve_start(lisa, f"serve-start-{index}")[0] for index in range(repeat)]


def by_model_count(counts: list[int], repeat: int, secrets: bool, baseline: Path | None) -> None:
    """Start-to-ready, wall and CPU, per number of served models (seeded incrementally); with a
    ``baseline`` checkout, its starts alternate with this one's, so both see the same load."""
    roots = {"this checkout": ROOT, **({"baseline": baseline} if baseline else {})}
    rows = []
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-startup")
        seeded = 0
        for count in sorted(counts):
            seed_models(
                lisa,
                [f"model-{index:04d}" for index in range(seeded, count)],
                backend_url,
                secret_prefix=_SECRET_PREFIX if secrets else None,
            )
            seeded = count
            samples: dict[str, list[tuple[float, float]]] = {label: [] for label in roots}
            for index in range(repeat):
                for label, root in roots.items():
                    samples[label].append(serve_start(lisa, f"serve-{count}-{index}", root))
            rows += [(count, label, values) for label, values in samples.items()]
            log(f"{count} models measured")
    keys = "one Secrets Manager secret per model" if secrets else "keys inline"
    print(f"\nServe start to ready, one worker (median of {repeat} starts; {keys})\n")
    print("| served models | serve code | wall s (min-max) | CPU s of the serve process (min-max) |")
    print("| --- | --- | --- | --- |")
    for count, label, values in rows:
        walls, cpus = [wall for wall, _ in values], [cpu for _, cpu in values]
        print(
            f"| {count} | {label} | {median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) "
            f"| {median(cpus):.2f} ({min(cpus):.2f}-{max(cpus):.2f}) |"
        )


def phases(count: int, secrets: bool) -> None:
    """One worker's start with ``count`` models, phase by phase, in this process."""
    rows: list[tuple[str, float, float]] = []

    def timed(name: str, call: Callable[[], T]) -> T:
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        rows.append((name, time.perf_counter() - wall, time.process_time() - cpu))
        return result

    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-phases")
        seed_models(
            lisa,
            [f"model-{index:04d}" for index in range(count)],
            backend_url,
            secret_prefix=_SECRET_PREFIX if secrets else None,
        )
        env = lisa.serve_env()
        os.environ.update(env)
        sys.path[:0] = env["PYTHONPATH"].split(os.pathsep)
        app = timed("import `serve.app` (LiteLLM, FastAPI)", lambda: importlib.import_module("serve.app"))
        from lisa_domain.registry import parse_followed
        from serve.config import ServeConfig

        services = timed(
            "build the services (clients, followers)",
            lambda: app.build_services(ServeConfig.from_env(), endpoint_url=lisa.moto_url),
        )
        follower = services.follower
        registry = follower._registry
        log_item = timed("read the version item (GetItem)", registry.change_log)
        items = timed("read the registry (consistent Scan, all pages)", registry.all_items)
        followed = timed("parse the items (`ModelRecord`)", lambda: [parse_followed(item) for item in items])
        models = {model.record.modelId: model for model in followed if model is not None}
        factory, router_rows = follower._router._factory, len(rows)

        def measured_factory(model_list: list[dict[str, Any]]) -> Any:
            return timed(
                f"`Router(model_list=...)` of {len(model_list)} deployments", lambda: factory(model_list)
            )

        follower._router._factory = measured_factory
        snapshot = timed(
            "the snapshot (keys, Router, entries)", lambda: follower.build(log_item.version, models)
        )
        assert len(snapshot.models) == count, len(snapshot.models)
    router = next(row for row in rows[router_rows:] if row[0].startswith("`Router"))
    total = rows[-1]
    rows.insert(
        len(rows) - 1,
        (
            "  of which provider keys and entries (snapshot minus Router)",
            total[1] - router[1],
            total[2] - router[2],
        ),
    )
    print(
        f"\nOne worker's start with {count} models, in-process ({'secrets' if secrets else 'keys inline'})\n"
    )
    print("| phase | wall s | CPU s |")
    print("| --- | --- | --- |")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--serve-repeat", type=int, default=3)
    parser.add_argument("--no-synth", action="store_true")
    parser.add_argument("--imports-only", action="store_true", help="only the import times")
    parser.add_argument("--models", help="comma-separated served-model counts: start-to-ready, wall and CPU")
    parser.add_argument("--phases", type=int, help="one worker's start with this many models, phase by phase")
    parser.add_argument("--secrets", action="store_true", help="each model's key in its own secret")
    parser.add_argument(
        "--baseline", type=Path, help="with --models: another checkout's serve code, started alternately"
    )
    args = parser.parse_args()
    if args.models:
        counts = [int(count) for count in args.models.split(",")]
        by_model_count(counts, args.serve_repeat, args.secrets, args.baseline)
        return
    if args.phases:
        phases(args.phases, args.secrets)
        return
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
