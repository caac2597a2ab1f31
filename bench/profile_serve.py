"""Profile the serve app: LISA's own CPU per request in-process, or the whole process with py-spy.

    .venv/bin/python -m bench.profile_serve --breakdown [--requests 3000]
    .venv/bin/pip install py-spy   # not a project dependency
    .venv/bin/python -m bench.profile_serve [--stream] [--concurrency 16] [--seconds 10] [--out FILE]

``--breakdown``: LISA's own part of a non-streaming chat completion, in-process, apart from
LiteLLM's call. The real app (``serve.app.create_app``, registry and tokens in moto in-process,
both followers loaded) is called as an ASGI app with an API token, its Router's ``acompletion``
replaced by a stub that returns a ready response; the CPU time per request (``time.process_time``,
best of 3 runs) is split into auth, body checks, serialization and the rest (FastAPI/Starlette
routing, the model lookup, the response), each part timed on its own. The HTTP server (uvicorn,
httptools) is not included. Target: at most 0.5 ms per request.

Without ``--breakdown``: starts moto, the stand-in backend and ``python -m serve``, attaches
``py-spy record`` to the serve process, sends chat completions for ``--seconds`` and writes
py-spy's output (``--format`` raw: collapsed stacks, one per line with a count, which ``--top``
sums per function).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench._http import load, post
from bench._procs import ROOT, Processes, log, start_serve

MODEL = "bench-echo"
PROMPT = "the quick brown fox jumps over the lazy dog again and again"


def top(collapsed: Path, count: int) -> str:
    """Own time and total (inclusive) time per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        n = int(number)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples", "-- own --"]
    lines += [f"{n / samples:6.1%} {frame}" for frame, n in own.most_common(count)]
    lines += ["-- inclusive --"]
    lines += [f"{n / samples:6.1%} {frame}" for frame, n in total.most_common(count * 2)]
    return "\n".join(lines)


def _cpu_per_call(call: Callable[[], Awaitable[Any]], count: int) -> float:
    """Best of 3: CPU seconds per ``await call()`` (sequential, on the running loop's thread)."""

    async def run() -> float:
        for _ in range(200):
            await call()
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for _ in range(count):
                await call()
            best = min(best, (time.process_time() - started) / count)
        return best

    try:
        import uvloop

        return float(uvloop.run(run()))
    except ImportError:  # pragma: no cover
        return asyncio.run(run())


def breakdown(count: int) -> None:
    sys.path[:0] = [str(ROOT / "litellm_container"), str(ROOT / "lambdas")]
    from moto import mock_aws

    with mock_aws():
        import litellm
        from starlette.datastructures import Headers

        from lisa_domain.registry import ModelRegistry, now
        from lisa_domain.schema import ModelRecord, ModelStatus, ModelType
        from lisa_domain.tokens import TokenStore
        from local_mode.resources import create_resources
        from serve.app import build_services, create_app
        from serve.bodies import Endpoint, parse
        from serve.config import ServeConfig

        resources = create_resources("lisa-profile")
        registry = ModelRegistry(resources.models_table)
        registry.create(
            ModelRecord(
                modelId=MODEL,
                modelName="echo",
                modelType=ModelType.TEXTGEN,
                streaming=True,
                status=ModelStatus.CREATING,
                createdAt=now(),
                updatedAt=now(),
            )
        )
        params = {"model": "openai/echo", "api_base": "http://127.0.0.1:9/v1", "api_key": "unused"}
        registry.register(MODEL, params, allowed_from=[ModelStatus.CREATING])
        token, _ = TokenStore(resources.tokens_table).create(username="bench", groups=[])
        config = ServeConfig(models_table=resources.models_table, tokens_table=resources.tokens_table)
        services = build_services(config)
        services.follower.refresh()
        assert services.tokens is not None
        services.tokens.refresh()
        snapshot = services.follower.snapshot
        assert snapshot is not None and snapshot.router is not None
        answer = litellm.ModelResponse(
            id="chatcmpl-bench",
            model="echo",
            choices=[
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "echo: " + PROMPT},
                    "finish_reason": "stop",
                }
            ],
            usage={"prompt_tokens": 14, "completion_tokens": 16, "total_tokens": 30},
        )

        async def stub(**_: Any) -> Any:
            return answer

        snapshot.router.acompletion = stub  # type: ignore[method-assign]
        app = create_app(services)
        body = json.dumps(
            {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 32}
        ).encode()
        raw_headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v2/serve/chat/completions",
            "raw_path": b"/v2/serve/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        statuses: list[int] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        async def request() -> None:
            await app(dict(scope), receive, send)

        headers = Headers(raw=raw_headers)
        limits = config.request_limits

        async def auth() -> None:
            await services.auth.principal(headers)

        async def checks() -> None:
            parse(body, Endpoint.CHAT, limits)

        async def serialize() -> None:
            answer.model = MODEL
            answer.model_dump_json(exclude_none=True).encode()

        async def nothing() -> None:
            await stub()

        total = _cpu_per_call(request, count)
        assert statuses and set(statuses) == {200}, set(statuses)
        parts = {
            "auth (API token from memory)": _cpu_per_call(auth, count),
            "body checks (parse)": _cpu_per_call(checks, count),
            "serialization (model_dump_json)": _cpu_per_call(serialize, count),
        }
        loop = _cpu_per_call(nothing, count)  # the measuring loop and the stub call themselves
        parts = {name: max(0.0, value - loop) for name, value in parts.items()}
        rest = max(0.0, total - loop - sum(parts.values()))
        print(
            f"\nLISA's own CPU per non-streaming chat completion, in-process (best of 3 x {count}), LiteLLM's call stubbed\n"
        )
        print("| part | CPU us/request |")
        print("| --- | --- |")
        for name, value in parts.items():
            print(f"| {name} | {value * 1e6:.0f} |")
        print(f"| routing, model lookup, response (FastAPI/Starlette) | {rest * 1e6:.0f} |")
        print(f"| **total** | **{(total - loop) * 1e6:.0f}** |")
        verdict = "met" if total - loop <= 0.0005 else "NOT met"
        print(f"\nTarget <= 500 us: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_serve")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="/tmp/lisa-serve-profile.txt")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--serve-env", nargs="*", default=[])
    parser.add_argument("--breakdown", action="store_true", help="LISA's own CPU per request, in-process")
    parser.add_argument("--requests", type=int, default=3000, help="per --breakdown run")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.requests)
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend()
        lisa.add_model(MODEL, backend_url)
        serve, serve_url = start_serve(lisa, **dict(item.split("=", 1) for item in args.serve_env))
        processes.add_process(serve)
        parsed = urlparse(serve_url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
        headers = {"Authorization": f"Bearer {lisa.management_key}"}

        def make(index: int) -> bytes:
            payload = {
                "model": MODEL,
                "messages": [{"role": "user", "content": f"hi {index}"}],
                "stream": args.stream,
            }
            return post("/v2/serve/chat/completions", host, port, payload, headers)

        asyncio.run(load(host, port, make, concurrency=args.concurrency, requests=200, max_seconds=10))
        recorder = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(serve.pid),
                "--rate",
                "500",
                "--format",
                "raw",
                "--output",
                args.out,
                "--duration",
                str(int(args.seconds)),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        run = asyncio.run(
            load(host, port, make, concurrency=args.concurrency, requests=10**6, max_seconds=args.seconds)
        )
        recorder.wait(timeout=60)
        log(
            f"{run.rps:.0f} req/s, p50 {run.percentile(50) * 1000:.2f} ms, errors {len(run.results) - len(run.ok)}"
        )
        print(top(Path(args.out), args.top))


if __name__ == "__main__":
    main()
