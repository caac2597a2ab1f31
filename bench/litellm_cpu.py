"""LiteLLM's CPU time per call, in-process: only the Router (as the serve app builds it) and a backend.

    .venv/bin/python -m bench.litellm_cpu [--providers openai hosted_vllm aiohttp_openai] [--calls 500]

For each provider prefix (``openai/`` is what TGI/TEI models get, ``hosted_vllm/`` vLLM models;
``aiohttp_openai/`` is LiteLLM's aiohttp-only provider, compared for reference), one Router with
one deployment of the stand-in backend (``bench.backend``, its own process), then ``--calls``
sequential ``Router.acompletion`` calls on uvloop, non-streaming and streaming (14 chunks), three
times. It prints this process's CPU time (``time.process_time``) and wall time per call, best and
median of the three: the backend's CPU is not counted, so the figure is LiteLLM's cost per request
(plus the asyncio/aiohttp client work it does), which bounds what one serve worker can do.
A provider that fails (``aiohttp_openai/`` does not stream in LiteLLM 1.110.2) prints its error.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._procs import Processes, log, start_backend

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "the quick brown fox jumps over the lazy dog again and again"


async def _measure(router: Any, stream: bool, calls: int, rounds: int) -> list[tuple[float, float]]:
    messages = [{"role": "user", "content": PROMPT}]

    async def one() -> None:
        response = await router.acompletion(model="m", messages=messages, stream=stream, max_tokens=32)
        if stream:
            async for _ in response:
                pass

    for _ in range(50):
        await one()
    gc.collect()
    gc.freeze()
    results = []
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(calls):
            await one()
        results.append(((time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls))
    return results


async def _all(router_class: Any, url: str, args: argparse.Namespace) -> list[str]:
    rows = []
    for provider in args.providers:
        params = {"model": f"{provider}/echo", "api_base": url, "api_key": "unused"}
        for stream in (False, True):
            router = router_class(
                model_list=[{"model_name": "m", "litellm_params": params}],
                num_retries=0,
                timeout=300,
                stream_timeout=300,
                ignore_invalid_deployments=True,
            )
            mode = "stream" if stream else "non-stream"
            try:
                results = await _measure(router, stream, args.calls, args.rounds)
            except Exception as error:
                rows.append(f"| {provider}/ | {mode} | fails: {type(error).__name__} | |")
                continue
            cpu = [c * 1000 for c, _ in results]
            wall = statistics.median(w for _, w in results) * 1000
            rows.append(
                f"| {provider}/ | {mode} | {min(cpu):.2f}, {statistics.median(cpu):.2f} | {wall:.2f} |"
            )
            log(f"{provider} {mode}: cpu/wall s per call {results}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.litellm_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--providers", nargs="+", default=["openai", "hosted_vllm", "aiohttp_openai"])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "litellm_container"), str(ROOT / "lambdas")]
    from serve._litellm import Router  # the serve app's LiteLLM set-up (bookkeeping skipped)

    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run
    with Processes() as processes:
        url = processes.add(start_backend())
        rows = run(_all(Router, url, args))
        print("| provider | mode | CPU ms/call (best, median) | wall ms/call (median) |")
        print("| --- | --- | --- | --- |")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
