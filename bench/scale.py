"""Scale: model listing latency with 1,000 registered models.

    .venv/bin/python -m bench.scale [--models 1000] [--requests 200]

Registers ``--models`` models (all served) in a moto server, then measures

* ``GET /v2/serve/models`` on ``python -m serve`` (management key; target p50 < 10 ms),
* the admin API's ``GET /models`` (first page, default limit) and a full listing through every
  page, served by the real Lambda handlers behind local mode's API-Gateway adapter
  (``local_mode.apigw``), against the same moto server.

Requests are sequential (latency, not throughput), ``--requests`` of each.

``--memory 10,100,1000`` instead measures, for each number of served models (seeded by
``bench.seed``: registry-written items copied, seconds instead of ~17 min for 1,000), ``python -m
serve``'s time from start to ready and the resident memory of its process tree once ready (one
worker), next to the LiteLLM proxy (``litellm[proxy]``, its own virtual environment, one worker)
configured with the same models (time to ``/health/liveliness``, which the proxy answers after
loading its config). RSS is read twice: at ready, and after one chat completion to each model (so
what LiteLLM builds per deployment on its first call, such as its HTTP client, is counted too).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench._http import median, percentile
from bench._procs import ADMIN_GROUP, Processes, log, start_proxy, start_serve
from bench.seed import seed_models


def timed(call: Callable[[], httpx.Response], requests: int) -> tuple[list[float], httpx.Response]:
    samples = []
    response = call()
    for _ in range(requests):
        started = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return sorted(samples), response


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its descendants (``/proc``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total = int(line.split()[1]) * 1024
    for child in children.read_text().split() if children.exists() else []:
        total += tree_rss(int(child))
    return total


def call_each(url: str, key: str, models: list[str]) -> int:
    """One chat completion to each model at ``url`` (the chat path included), one after the other;
    how many answered 200."""
    ok = 0
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for model in models:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
            ok += client.post(url, json=body).status_code == 200
    return ok


def memory(counts: list[int]) -> None:
    """Start-up time and RSS of ``python -m serve`` and of the LiteLLM proxy per number of models."""
    rows = []
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-memory")
        registered = 0
        for count in sorted(counts):
            seed_models(lisa, [f"model-{index:04d}" for index in range(registered, count)], backend_url)
            registered = count
            models = [f"model-{index:04d}" for index in range(count)]
            row: list[float] = [count]
            for target in ("lisa", "proxy"):
                started = time.monotonic()
                if target == "lisa":
                    process, url = start_serve(lisa, name=f"serve-{count}", LISA_SERVE_WORKERS="1")
                    url, key = url + "/v2/serve/chat/completions", lisa.management_key
                else:
                    process, url = start_proxy(
                        dict.fromkeys(models, "echo"), backend_url, "sk-bench", workers=1
                    )
                    url, key = url + "/v1/chat/completions", "sk-bench"
                try:
                    row += [time.monotonic() - started, tree_rss(process.pid)]
                    answered = call_each(url, key, models)
                    assert answered == count, f"{target}: {answered} of {count} models answered"
                    row.append(tree_rss(process.pid))
                finally:
                    process.stop()
            rows.append(row)
            log(f"{count} models measured")
    print("\nStart-up and resident memory per worker (one worker each), by served models\n")
    print(
        "| models | LISA serve: start to ready s | LISA RSS at ready MiB | LISA RSS after one call per model MiB "
        "| LiteLLM proxy: start to live s | proxy RSS at live MiB | proxy RSS after one call per model MiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for served, ready, rss, used, proxy_ready, proxy_rss, proxy_used in rows:
        print(
            f"| {served:.0f} | {ready:.1f} | {rss / 2**20:.0f} | {used / 2**20:.0f} "
            f"| {proxy_ready:.1f} | {proxy_rss / 2**20:.0f} | {proxy_used / 2**20:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--memory", help="comma-separated model counts: start-up and RSS instead")
    args = parser.parse_args()
    if args.memory:
        memory([int(count) for count in args.memory.split(",")])
        return
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-scale")
        log(f"registering {args.models} models")
        started = time.monotonic()
        for index in range(args.models):
            lisa.add_model(f"model-{index:04d}", backend_url)
        log(f"registered in {time.monotonic() - started:.1f} s")
        serve_url = processes.add(start_serve(lisa))
        headers = {"Authorization": f"Bearer {lisa.management_key}"}
        rows = []
        with httpx.Client(headers=headers, timeout=30) as client:
            samples, response = timed(lambda: client.get(serve_url + "/v2/serve/models"), args.requests)
            assert len(response.json()["data"]) == args.models, "the serve app does not list every model"
            rows.append(("serve `GET /v2/serve/models`", samples, len(response.content)))

            # The admin API: real handlers behind the API-Gateway adapter, in this process.
            os.environ.update(
                {
                    "AWS_ENDPOINT_URL": lisa.moto_url,
                    "MODELS_TABLE_NAME": lisa.models_table,
                    "TOKENS_TABLE_NAME": lisa.tokens_table,
                    "MANAGEMENT_KEY_SECRET_ARN": lisa.management_key_secret_arn,
                    "ADMIN_GROUP": ADMIN_GROUP,
                    "MODEL_SECRET_PREFIX": "lisa-scale/models/",
                    "CREATE_MODEL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:c",
                    "UPDATE_MODEL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:u",
                    "DELETE_MODEL_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:d",
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    "POWERTOOLS_METRICS_DISABLED": "true",
                    "POWERTOOLS_LOG_LEVEL": "WARNING",
                }
            )
            from admin_api.handler import lambda_handler as admin_handler
            from authorizer.handler import lambda_handler as authorizer_handler
            from local_mode.apigw import AdminApiServer, ApiGatewayAdapter

            admin = AdminApiServer(ApiGatewayAdapter(admin_handler, authorizer_handler))
            admin.start()
            try:
                samples, response = timed(
                    lambda: client.get(admin.url + "/models"), max(20, args.requests // 4)
                )
                first_page = len(response.json()["models"])
                rows.append(
                    (f"admin `GET /models` (first page, {first_page} models)", samples, len(response.content))
                )

                def full_listing() -> httpx.Response:
                    listed, token = 0, None
                    while True:
                        params = {"limit": "100", **({"nextToken": token} if token else {})}
                        page = client.get(admin.url + "/models", params=params)
                        page.raise_for_status()
                        body = page.json()
                        listed += len(body["models"])
                        token = body.get("nextToken")
                        if not token:
                            assert listed == args.models, listed
                            return page

                samples, response = timed(full_listing, 5)
                rows.append((f"admin `GET /models`, all {args.models} (pages of 100)", samples, 0))
            finally:
                admin.stop()
        print(f"\nListing with {args.models} registered models ({args.requests} sequential requests), ms\n")
        print("| request | p50 | p99 | max | response bytes |")
        print("| --- | --- | --- | --- | --- |")
        for name, values, size in rows:
            print(
                f"| {name} | {median(values) * 1000:.2f} | {percentile(values, 99) * 1000:.2f} "
                f"| {values[-1] * 1000:.2f} | {size or '-'} |"
            )
        serve_p50 = median(rows[0][1])
        print(
            f"\nTarget serve list p50 < 10 ms: {'met' if serve_p50 < 0.010 else 'NOT met'} ({serve_p50 * 1000:.2f} ms)"
        )


if __name__ == "__main__":
    main()
