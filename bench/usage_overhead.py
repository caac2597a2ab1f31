"""Usage metering and limits: the serve overhead they add, and the DynamoDB writes they make.

    .venv/bin/python -m bench.usage_overhead [--rounds 5] [--requests 400] [--concurrency 1]

Two ``python -m serve`` processes on one registry (moto) and one stand-in backend: ``off`` (no
usage table: no metering, no limits) and ``on`` (metering, and a rate limit and a monthly budget
for the benchmark's caller, high enough never to refuse: every request takes the limiter's and the
budget's path). The ``on`` process reaches DynamoDB through a counting proxy, which counts its
writes to the usage table (flush transactions, lease updates). Rounds alternate between the two
(the table shows the median of the rounds), so noise from other processes hits both alike. It
prints p50 and p99 per process, the p50 added by metering and limits (target: under 0.3 ms), and
the usage-table writes per 1,000 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import httpx

from bench._http import Run, load, median, post
from bench._procs import Lisa, Processes, log, start_serve

MODEL = "bench-echo"
WRITES = ("TransactWriteItems", "UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem")
LIMITS = {"rateLimit": {"rpm": 1_000_000, "tpm": 100_000_000}, "monthlyTokenBudget": 10**12}


class CountingProxy(ThreadingHTTPServer):
    """Forwards every request to the emulator; counts write calls naming the usage table."""

    def __init__(self, upstream: str, table: str) -> None:
        self.upstream, self.table = upstream, table
        self.writes: dict[str, int] = {}
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=30)
        super().__init__(("127.0.0.1", 0), _Forward)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def total(self) -> int:
        with self.lock:
            return sum(self.writes.values())


class _Forward(BaseHTTPRequestHandler):
    server: CountingProxy

    def log_message(self, *_: Any) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        if operation in WRITES and self.server.table.encode() in body:
            with self.server.lock:
                self.server.writes[operation] = self.server.writes.get(operation, 0) + 1
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = self.server.client.request(
            self.command, self.server.upstream + self.path, content=body, headers=headers
        )
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _forward


def _round(url: str, token: str, requests: int, concurrency: int) -> Run:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 8}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def make(_: int) -> bytes:
        return post("/v2/serve/chat/completions", host, port, payload, headers)

    return asyncio.run(load(host, port, make, concurrency=concurrency, requests=requests, max_seconds=60))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.usage_overhead", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400, help="requests per process per round")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)

    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-bench-usage")
        lisa.add_model(MODEL, backend_url)
        token = lisa.tokens.create(username="bench-user", groups=["bench"])[0]
        usage_table = _usage_table(lisa)
        proxy = CountingProxy(lisa.moto_url, usage_table)
        processes.callback(proxy.shutdown)
        common = {"LISA_SERVE_WORKERS": "1"}
        off = processes.add(start_serve(lisa, name="serve-off", **common))
        on = processes.add(
            start_serve(
                _through(lisa, proxy.url),
                name="serve-on",
                USAGE_TABLE_NAME=usage_table,
                LISA_USAGE_LIMITS=json.dumps(LIMITS),
                **common,
            )
        )
        for url in (off, on):  # warm up: imports, the first lease, the first budget read
            _round(url, token, 50, args.concurrency)
        runs: dict[str, list[Run]] = {"off": [], "on": []}
        writes_before = proxy.total()
        for index in range(args.rounds):
            for name, url in (("off", off), ("on", on)) if index % 2 == 0 else (("on", on), ("off", off)):
                runs[name].append(_round(url, token, args.requests, args.concurrency))
            log(f"round {index + 1}/{args.rounds} done")
        cost = in_process_cost(lisa.moto_url, usage_table)
        processes.close()  # SIGTERM: the "on" process flushes what it still holds
        writes = proxy.total() - writes_before
        report(runs, writes, args.concurrency, dict(proxy.writes))
    print(
        f"in-process cost of metering and limits per request (admit + record, warm lease): "
        f"{cost * 1e6:.1f} us (no network, no other process: the figure least disturbed by a busy machine)"
    )


def in_process_cost(moto_url: str, usage_table: str, requests: int = 20_000) -> float:
    """Seconds of CPU per request that ``serve.metering.Metered`` adds (limits on), in this process."""
    import time

    import boto3

    from lisa_contracts.limits import UsageLimits
    from lisa_domain.auth import Principal
    from lisa_domain.usage import UsageStore
    from serve.limits import BudgetGuard, RateLimiter, UsageGate
    from serve.metering import Meter, Metered

    store = UsageStore(usage_table, boto3.client("dynamodb", endpoint_url=moto_url))
    budgets = BudgetGuard(store)
    gate = UsageGate(UsageLimits.model_validate(LIMITS), RateLimiter(store), budgets)
    meter = Meter(store, flush_seconds=10, budgets=budgets)
    principal = Principal("in-process", ("bench",), False, "api-token")
    usage = {"prompt_tokens": 12, "completion_tokens": 8}

    async def run(count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            metered = Metered(meter, gate, principal, MODEL, time.perf_counter())
            await metered.admit()
            metered.usage(usage)
            metered.finish(200)
        return (time.perf_counter() - started) / count

    asyncio.run(run(100))  # the first lease and budget read
    return min(asyncio.run(run(requests)) for _ in range(3))


def _usage_table(lisa: Lisa) -> str:
    return lisa.models_table.removesuffix("-models") + "-usage"


def _through(lisa: Lisa, endpoint: str) -> Lisa:
    """The same registry, reached through ``endpoint`` (the counting proxy)."""
    return Lisa(
        endpoint,
        lisa.models_table,
        lisa.tokens_table,
        lisa.management_key_secret_arn,
        lisa.management_key,
        lisa.registry,
        lisa.tokens,
    )


def report(runs: dict[str, list[Run]], writes: int, concurrency: int, by_operation: dict[str, int]) -> None:
    p50 = {name: median([run.percentile(50) for run in rounds]) * 1000 for name, rounds in runs.items()}
    p99 = {name: median([run.percentile(99) for run in rounds]) * 1000 for name, rounds in runs.items()}
    rps = {name: median([run.rps for run in rounds]) for name, rounds in runs.items()}
    answered = sum(len(run.ok) for run in runs["on"]) or 1
    failed = {name: sum(len(run.results) - len(run.ok) for run in rounds) for name, rounds in runs.items()}
    print(f"\nUsage metering and limits, concurrency {concurrency}, median of {len(runs['on'])} rounds")
    print(f"{'serve':<6} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'failed':>7}")
    for name in ("off", "on"):
        print(f"{name:<6} {p50[name]:>8.3f} {p99[name]:>8.3f} {rps[name]:>8.1f} {failed[name]:>7}")
    added = p50["on"] - p50["off"]
    print(f"\nadded p50: {added:.3f} ms (target: under 0.3 ms) -> {'met' if added < 0.3 else 'NOT met'}")
    print(
        f"usage-table writes: {writes} for {answered} requests = {writes * 1000 / answered:.1f} per 1,000 "
        f"requests ({', '.join(f'{k}: {v}' for k, v in sorted(by_operation.items())) or 'none'})"
    )


if __name__ == "__main__":
    main()
