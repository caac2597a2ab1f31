"""Schema fuzzing of the serve API at scale (>= 1,000 cases), against ``python -m serve``.

    .venv/bin/python -m bench.fuzz_serve [--cases-per-operation 80]

Starts moto, the stand-in backend and the serve app (the container's entry point), registers a
chat model, an embedding model and a model whose backend fails (500: the documented 502), then
runs ``tests.fuzz.harness`` over the serve app's OpenAPI document (``serve.openapi``): positive and
negative cases for every operation, half of the bodies naming a real model. Prints the number of
cases, the status codes seen and every failure (undocumented status, content type or body, or a
5xx other than 502/503/504).
"""

from __future__ import annotations

import argparse
import os
import sys

from bench._procs import Processes, log, start_serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz_serve", description=__doc__.splitlines()[0])
    parser.add_argument("--cases-per-operation", type=int, default=80, help="per operation and mode")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-fuzz")
        lisa.add_model("fuzz-chat", backend_url)
        lisa.add_model("fuzz-embed", backend_url, "embedder", model_type="embedding")
        lisa.add_model("fuzz-broken", backend_url, "fail500")
        serve, serve_url = start_serve(lisa, LISA_SERVE_BACKEND_TIMEOUT_SECONDS="5")
        processes.add_process(serve)

        os.environ.setdefault("MODELS_TABLE_NAME", lisa.models_table)
        from serve.app import build_services, create_app
        from serve.config import ServeConfig
        from serve.openapi import openapi_document
        from tests.fuzz.harness import fuzz, use_known_models

        document = openapi_document(create_app(build_services(ServeConfig(models_table=lisa.models_table))))
        log(f"fuzzing {serve_url} ({args.cases_per_operation} cases per operation and mode)")
        report = fuzz(
            document,
            base_url=serve_url,
            headers={"Authorization": f"Bearer {lisa.management_key}"},
            cases_per_operation=args.cases_per_operation,
            seed=args.seed,
            mutate=use_known_models(["fuzz-chat", "fuzz-embed", "fuzz-broken"]),
        )
        print(f"\nServe API fuzzing: {report.cases} cases, statuses {dict(sorted(report.statuses.items()))}")
        print(f"failures: {len(report.failures)}")
        for failure in report.failures[:50]:
            print(" -", failure.replace("\n", " ")[:400])
        if serve.popen.poll() is not None:
            print("the serve process died")
        sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
