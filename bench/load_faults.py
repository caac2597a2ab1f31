"""Load with faults: 10,000 requests at concurrency 64 through the serve app while things break.

    .venv/bin/python -m bench.load_faults [--requests 10000] [--concurrency 64]

Starts moto, two stand-in backends (A and B) and ``python -m serve`` with three models: ``lf-a`` on
A, ``lf-b`` on B and ``lf-toggle`` on A. Requests (a fifth of them streamed) go round-robin to the
three models while a controller thread, at fixed points of progress:

* 15%: stops ``lf-toggle`` (its registry entry loses ``litellmParams``, as the stop workflow does),
* 35%: starts it again,
* 50%: kills backend B (SIGKILL),
* 70%: restarts backend B on the same port.

Every answer is classified. Allowed: 200 (a stream must end in ``[DONE]`` or in one ``data:
{"error": ...}`` event); an OpenAI-style error body with 404 ``model_not_found`` (the stopped
model) or 502/504 (the dead backend). Anything else is a failure: a request without an answer, a
non-JSON error, any other 5xx. Afterwards every model must answer 200 again (the app serves
normally). Bounded: ``--requests`` requests and ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import Counter
from urllib.parse import urlparse

from bench._http import Result, load, percentile, post
from bench._procs import Lisa, Process, Processes, free_port, log, start_backend, start_serve

MODELS = ("lf-a", "lf-b", "lf-toggle")


def classify(result: Result, stream: bool) -> str:
    """``ok`` / ``stream-error-event`` / ``<status> <code>`` for documented errors; ``FAIL ...`` otherwise."""
    if result.status == 0:
        return "FAIL no answer"
    if result.status == 200:
        if not stream:
            return "ok"
        if result.body.rstrip().endswith(b"data: [DONE]"):
            return "ok"
        last = result.body.strip().split(b"\n\n")[-1]
        if last.startswith(b"data: ") and b'"error"' in last:
            return "stream-error-event"
        return "FAIL stream cut without an error event"
    try:
        error = json.loads(result.body)["error"]
        code = str(error["code"])
        assert isinstance(error["message"], str) and isinstance(error["type"], str)
    except (ValueError, KeyError, TypeError, AssertionError):
        return f"FAIL {result.status} without an OpenAI-style error"
    if (result.status, code) in {
        (404, "model_not_found"),
        (502, "backend_unreachable"),
        (502, "backend_error"),
    }:
        return f"{result.status} {code}"
    if (result.status, code) == (504, "backend_timeout"):
        return f"{result.status} {code}"
    return f"FAIL {result.status} {code}"


class Controller(threading.Thread):
    def __init__(
        self, lisa: Lisa, backend_a: str, backend_b: Process, port_b: int, total: int, processes: Processes
    ) -> None:
        super().__init__(daemon=True)
        self.lisa, self.backend_a, self.backend_b, self.port_b, self.total = (
            lisa,
            backend_a,
            backend_b,
            port_b,
            total,
        )
        self.done = 0
        self.events: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.processes = processes  # where the restarted backend B is recorded

    def halt(self) -> None:
        """Stops the thread, waiting (bounded) for a backend start in progress so it is recorded."""
        self.stop.set()
        if self.is_alive():
            self.join(timeout=60)

    def _at(self, fraction: float) -> bool:
        while self.done < self.total * fraction:
            if self.stop.wait(0.01):
                return False
        return True

    def run(self) -> None:
        from lisa_domain.schema import ModelStatus

        started = time.monotonic()
        registry = self.lisa.registry

        def note(what: str) -> None:
            self.events.append((time.monotonic() - started, what))
            log(f"{self.done} requests done: {what}")

        if not self._at(0.15):
            return
        registry.deregister("lf-toggle", allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
        note("lf-toggle stopped")
        if not self._at(0.35):
            return
        registry.transition("lf-toggle", allowed_from=[ModelStatus.STOPPED], to=ModelStatus.STARTING)
        registry.register(
            "lf-toggle",
            {"model": "openai/echo", "api_base": self.backend_a, "api_key": "unused"},
            allowed_from=[ModelStatus.STARTING],
        )
        note("lf-toggle started")
        if not self._at(0.50):
            return
        self.backend_b.kill()
        note("backend B killed")
        if not self._at(0.70):
            return
        self.processes.add(start_backend(self.port_b))
        note("backend B restarted")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load_faults", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=240.0)
    args = parser.parse_args()
    with Processes() as processes:
        lisa, url_a = processes.registry_with_backend("lisa-faults")
        port_b = free_port()
        backend_b, url_b = start_backend(port_b)
        processes.add_process(backend_b)
        lisa.add_model("lf-a", url_a)
        lisa.add_model("lf-b", url_b)
        lisa.add_model("lf-toggle", url_a)
        serve, serve_url = start_serve(lisa, LISA_SERVE_BACKEND_TIMEOUT_SECONDS="10")
        processes.add_process(serve)
        parsed = urlparse(serve_url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
        headers = {"Authorization": f"Bearer {lisa.management_key}"}

        def make(index: int) -> bytes:
            payload = {
                "model": MODELS[index % 3],
                "messages": [{"role": "user", "content": f"request {index}"}],
                "stream": index % 5 == 0,
            }
            return post("/v2/serve/chat/completions", host, port, payload, headers)

        outcomes: Counter[str] = Counter()
        by_model: dict[str, Counter[str]] = {model: Counter() for model in MODELS}
        controller = Controller(lisa, url_a, backend_b, port_b, args.requests, processes)
        processes.callback(controller.halt)  # on the way out, before the processes are stopped

        def on_result(index: int, result: Result) -> None:
            outcome = classify(result, index % 5 == 0)
            outcomes[outcome] += 1
            by_model[MODELS[index % 3]][outcome] += 1
            controller.done += 1

        controller.start()
        started = time.monotonic()
        run = asyncio.run(
            load(
                host,
                port,
                make,
                concurrency=args.concurrency,
                requests=args.requests,
                max_seconds=args.max_seconds,
                on_result=on_result,
            )
        )
        elapsed = time.monotonic() - started
        controller.stop.set()
        controller.join(timeout=60)

        # Afterwards: every model answers normally.
        def after(index: int) -> bytes:
            payload = {"model": MODELS[index % 3], "messages": [{"role": "user", "content": "after"}]}
            return post("/v2/serve/chat/completions", host, port, payload, headers)

        time.sleep(1.0)
        check = asyncio.run(load(host, port, after, concurrency=4, requests=60, max_seconds=30))
        healthy = sum(1 for r in check.results if r.status == 200)
        failures = sum(count for outcome, count in outcomes.items() if outcome.startswith("FAIL"))
        latencies = sorted(r.total for r in run.results if r.status == 200)
        print(
            f"\nLoad with faults: {len(run.results)} requests at concurrency {args.concurrency} in {elapsed:.1f} s"
        )
        print(
            f"({len(run.results) / elapsed:.0f} req/s; p50 {percentile(latencies, 50) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms for 200s)\n"
        )
        print("| outcome | lf-a | lf-b | lf-toggle | total |")
        print("| --- | --- | --- | --- | --- |")
        for outcome in sorted(outcomes):
            cells = " | ".join(str(by_model[m][outcome]) for m in MODELS)
            print(f"| {outcome} | {cells} | {outcomes[outcome]} |")
        print("\nevents: " + "; ".join(f"{t:.1f} s {what}" for t, what in controller.events))
        print(f"afterwards: {healthy}/{len(check.results)} requests answered 200")
        print(f"serve process alive: {serve.popen.poll() is None}")
        ok = failures == 0 and healthy == len(check.results) == 60 and len(run.results) == args.requests
        print(f"\nResult: {'PASS' if ok else 'FAIL'} ({failures} failed request(s))")


if __name__ == "__main__":
    main()
