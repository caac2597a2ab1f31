"""Serve overhead: the backend directly vs LISA's serve app vs the LiteLLM proxy server.

    .venv/bin/python -m bench.serve_overhead [--rounds 3] [--quick] [--workers 1]

In one run, against one stand-in OpenAI-compatible backend (``bench.backend``): the backend
directly, ``python -m serve`` (LISA, registry and tokens in a moto server) and the LiteLLM proxy
(``litellm[proxy]==1.108.7`` in its own virtual environment, no database, master key), each
serving the same model with ``--workers`` worker processes. LISA is called with an API token (the
credential most users and scripts send; ``lisa``); the extra rows ``lisa (management key)`` and
``lisa (JWT)`` (a real OIDC issuer on 127.0.0.1) are non-streaming only. For concurrency 1, 16 and
64, non-streaming and streaming chat completions, it prints requests per second (and per worker),
p50 and p99 latency, time to first token (streaming: the first server-sent event) and each
gateway's added latency over direct. It also measures LiteLLM's own in-process call (the Router
alone, ``bench.litellm_cpu``) in the same run, for the target "added p50 at concurrency 1 at most
LiteLLM's call plus 0.5 ms".

Rounds are interleaved (every target once per round, per cell) and the table shows the median of
the rounds, so a burst of noise from other processes hits one round of every target rather than
every round of one. Every cell is bounded by a request count and a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from bench._http import Run, load, median, post
from bench._procs import ROOT, Lisa, Processes, log, start_proxy, start_serve

MODEL = "bench-echo"
PROMPT = "the quick brown fox jumps over the lazy dog again and again"  # 14 events when streamed
CONCURRENCY = (1, 16, 64)
LISA = "lisa"  # API token
EXTRA_CREDENTIALS = ("lisa (management key)", "lisa (JWT)")  # non-streaming rows
OIDC_CLIENT = "lisa-bench"


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    path: str
    model: str
    headers: dict[str, str]


@dataclass
class Cell:
    rps: list[float]
    p50: list[float]
    p99: list[float]
    ttft50: list[float]
    errors: int = 0

    def add(self, run: Run) -> None:
        self.rps.append(run.rps)
        self.p50.append(run.percentile(50))
        self.p99.append(run.percentile(99))
        self.ttft50.append(run.percentile(50, first_byte=True))
        self.errors += len(run.results) - len(run.ok)


def _payload(target: Target, stream: bool, index: int) -> dict[str, object]:
    return {
        "model": target.model,
        "messages": [{"role": "user", "content": f"{PROMPT} {index}"}],
        "stream": stream,
        "max_tokens": 32,
    }


async def _measure(target: Target, stream: bool, concurrency: int, requests: int, seconds: float) -> Run:
    parsed = urlparse(target.url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80

    def make(index: int) -> bytes:
        return post(target.path, host, port, _payload(target, stream, index), target.headers)

    # Warm-up: open connections, let the server's lazy paths run once.
    await load(host, port, make, concurrency=concurrency, requests=max(concurrency * 2, 20), max_seconds=10)
    run = await load(host, port, make, concurrency=concurrency, requests=requests, max_seconds=seconds)
    bad = [r for r in run.results if r.status != 200]
    if bad:
        log(f"{target.name}: {len(bad)} failed request(s), e.g. {bad[0].status} {bad[0].body[:300]!r}")
    if stream and run.ok and b"data: [DONE]" not in run.ok[0].body:
        log(f"{target.name}: stream without [DONE]: {run.ok[0].body[-200:]!r}")
    return run


def _fmt(value: float, scale: float = 1000.0, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value * scale:.{digits}f}"


def table(cells: dict[tuple[str, bool, int], Cell], targets: list[str], workers: int) -> str:
    rows = [
        "| mode | conc. | target | req/s | req/s per worker | p50 ms | p99 ms | TTFT p50 ms | added p50 ms "
        "| added p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for stream in (False, True):
        for concurrency in CONCURRENCY:
            direct = cells.get(("direct", stream, concurrency))
            for name in targets:
                cell = cells.get((name, stream, concurrency))
                if cell is None:
                    continue
                p50, p99 = median(cell.p50), median(cell.p99)
                added50 = added99 = float("nan")
                if direct is not None and name != "direct":
                    added50, added99 = p50 - median(direct.p50), p99 - median(direct.p99)
                per_worker = "-" if name == "direct" else f"{median(cell.rps) / workers:.0f}"
                rows.append(
                    f"| {'stream' if stream else 'non-stream'} | {concurrency} | {name} "
                    f"| {median(cell.rps):.0f} | {per_worker} | {_fmt(p50)} | {_fmt(p99)} "
                    f"| {_fmt(median(cell.ttft50)) if stream else '-'} "
                    f"| {'-' if name == 'direct' else _fmt(added50)} "
                    f"| {'-' if name == 'direct' else _fmt(added99)} | {cell.errors} |"
                )
    return "\n".join(rows)


def verdict(cells: dict[tuple[str, bool, int], Cell], litellm_call: dict[bool, float], workers: int) -> str:
    """The issue's targets: added p50 at concurrency 1 <= LiteLLM's in-process call + 0.5 ms, and
    throughput at concurrency 64 >= 2x the proxy's, both with the same number of worker processes."""

    def m(name: str, stream: bool, c: int, attr: str) -> float:
        cell = cells.get((name, stream, c))
        return median(getattr(cell, attr)) if cell else float("nan")

    lines = []
    for stream in (False, True):
        mode = "stream" if stream else "non-stream"
        added1 = m(LISA, stream, 1, "p50") - m("direct", stream, 1, "p50")
        bound = litellm_call.get(stream, float("nan")) + 0.0005
        proxy = m("litellm-proxy", stream, 64, "rps")
        ratio = m(LISA, stream, 64, "rps") / proxy if proxy > 0 else float("inf")
        lines += [
            f"- {mode}: LISA (API token) added p50 at concurrency 1 = {added1 * 1000:.2f} ms; LiteLLM's own "
            f"in-process call {litellm_call.get(stream, float('nan')) * 1000:.2f} ms + 0.5 ms = "
            f"{bound * 1000:.2f} ms: {'met' if added1 <= bound else 'NOT met'}",
            f"- {mode}: throughput at concurrency 64 = {ratio:.2f} x the proxy's, {workers} worker(s) each "
            f"(target >= 2): {'met' if ratio >= 2 else 'NOT met'}"
            + ("" if proxy > 0 else " (the proxy completed no request in that cell)"),
        ]
    return "\n".join(lines)


async def run_all(targets: list[Target], args: argparse.Namespace) -> dict[tuple[str, bool, int], Cell]:
    cells: dict[tuple[str, bool, int], Cell] = {}
    modes = [False, True] if not args.stream_only else [True]
    if args.nonstream_only:
        modes = [False]
    for round_index in range(args.rounds):
        for stream in modes:
            for concurrency in args.concurrency:
                requests = args.requests_c1 if concurrency == 1 else args.requests
                order = targets if round_index % 2 == 0 else list(reversed(targets))
                for target in order:
                    if stream and target.name in EXTRA_CREDENTIALS:
                        continue
                    run = await _measure(target, stream, concurrency, requests, args.seconds)
                    cell = cells.setdefault((target.name, stream, concurrency), Cell([], [], [], []))
                    cell.add(run)
                    log(
                        f"round {round_index + 1}/{args.rounds} {'stream' if stream else 'plain'} "
                        f"c={concurrency} {target.name}: {run.rps:.0f} req/s p50 "
                        f"{_fmt(run.percentile(50))} ms p99 {_fmt(run.percentile(99))} ms"
                    )
    return cells


def litellm_call_seconds(backend_url: str, calls: int) -> dict[bool, float]:
    """Wall time of one in-process ``Router.acompletion`` to the same backend (median of 3 rounds),
    non-streaming and streaming: what LiteLLM itself costs a request, without any gateway."""
    sys.path[:0] = [str(ROOT / "litellm_container"), str(ROOT / "lambdas")]
    from bench.litellm_cpu import _measure as measure_router
    from serve._litellm import Router

    async def both() -> dict[bool, float]:
        result = {}
        for stream in (False, True):
            router = Router(
                model_list=[
                    {
                        "model_name": "m",
                        "litellm_params": {
                            "model": "openai/echo",
                            "api_base": backend_url,
                            "api_key": "unused",
                        },
                    }
                ],
                num_retries=0,
                timeout=300,
                stream_timeout=300,
                ignore_invalid_deployments=True,
            )
            rounds = await measure_router(router, stream, calls, 3)
            result[stream] = median(sorted(wall for _, wall in rounds))
        return result

    try:
        import uvloop

        return uvloop.run(both())
    except ImportError:  # pragma: no cover
        return asyncio.run(both())


def _jwt_issuer(processes: Processes) -> tuple[dict[str, str], str]:
    """A real OIDC issuer on 127.0.0.1 (discovery + JWKS over HTTP): the serve app's OIDC settings
    and one admin JWT valid for an hour."""
    from tests.support.oidc_issuer import IdentityProvider, rsa_key, sign

    key = rsa_key("bench")
    issuer = IdentityProvider([key.jwk()])
    processes.callback(issuer.close)
    now = int(time.time())
    claims = {"iss": issuer.issuer, "aud": OIDC_CLIENT, "sub": "bench", "iat": now, "exp": now + 3600}
    jwt = sign(key, claims | {"groups": ["lisa-admins"]})
    return {"OIDC_ISSUER": issuer.issuer, "OIDC_CLIENT_ID": OIDC_CLIENT}, jwt


def _lisa_targets(lisa: Lisa, serve_url: str, jwt: str) -> list[Target]:
    token, _ = lisa.tokens.create(username="bench", groups=["lisa-admins"])
    path = "/v2/serve/chat/completions"
    return [
        Target(LISA, serve_url, path, MODEL, {"Authorization": f"Bearer {token}"}),
        Target(
            EXTRA_CREDENTIALS[0], serve_url, path, MODEL, {"Authorization": f"Bearer {lisa.management_key}"}
        ),
        Target(EXTRA_CREDENTIALS[1], serve_url, path, MODEL, {"Authorization": f"Bearer {jwt}"}),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serve_overhead", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000, help="per cell at concurrency 16 and 64")
    parser.add_argument("--requests-c1", type=int, default=600, help="per cell at concurrency 1")
    parser.add_argument("--seconds", type=float, default=12.0, help="time limit per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    parser.add_argument("--workers", type=int, default=1, help="worker processes of LISA and of the proxy")
    parser.add_argument("--no-proxy", action="store_true", help="skip the LiteLLM proxy")
    parser.add_argument(
        "--targets",
        nargs="+",
        default=None,
        help=f"subset of direct, {LISA}, extra (the other credentials), litellm-proxy",
    )
    parser.add_argument("--stream-only", action="store_true")
    parser.add_argument("--nonstream-only", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 round, fewer requests")
    parser.add_argument("--litellm-calls", type=int, default=300, help="in-process LiteLLM calls per round")
    parser.add_argument("--json", help="also write the raw medians here")
    parser.add_argument("--serve-env", nargs="*", default=[], help="extra NAME=VALUE for the serve app")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.requests, args.requests_c1, args.seconds = 1, 1000, 200, 6.0

    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend()
        lisa.add_model(MODEL, backend_url)
        wanted: list[str] = list(args.targets or ["direct", LISA, "extra", "litellm-proxy"])
        if args.no_proxy and "litellm-proxy" in wanted:
            wanted.remove("litellm-proxy")
        if "extra" in wanted:
            wanted += list(EXTRA_CREDENTIALS)
        targets = [Target("direct", backend_url.removesuffix("/v1"), "/v1/chat/completions", "echo", {})]
        if LISA in wanted:
            oidc, jwt = _jwt_issuer(processes)
            extra = dict(item.split("=", 1) for item in args.serve_env)
            serve_url = processes.add(
                start_serve(lisa, **oidc, **{"LISA_SERVE_WORKERS": str(args.workers), **extra})
            )
            targets += _lisa_targets(lisa, serve_url, jwt)
        if "litellm-proxy" in wanted:
            master = "sk-" + secrets.token_hex(16)
            log("starting the LiteLLM proxy")
            proxy_url = processes.add(start_proxy({MODEL: "echo"}, backend_url, master, workers=args.workers))
            targets.append(
                Target(
                    "litellm-proxy",
                    proxy_url,
                    "/v1/chat/completions",
                    MODEL,
                    {"Authorization": f"Bearer {master}"},
                )
            )
        targets = [t for t in targets if t.name in wanted or t.name == "direct"]
        log(f"targets: {', '.join(t.name + ' ' + t.url for t in targets)}; load {os.getloadavg()}")
        cells = asyncio.run(run_all(targets, args))
        log("LiteLLM's own in-process call (Router only), same backend")
        litellm_call = litellm_call_seconds(backend_url, args.litellm_calls)
        names = [t.name for t in targets]
        print(f"\nServe overhead (median of {args.rounds} round(s); {args.workers} worker(s); times in ms)\n")
        print(table(cells, names, args.workers))
        print(
            f"\nLiteLLM's in-process call: {litellm_call[False] * 1000:.2f} ms non-streaming, "
            f"{litellm_call[True] * 1000:.2f} ms streaming (wall, median of 3 x {args.litellm_calls})"
        )
        if {"direct", LISA, "litellm-proxy"} <= set(names):
            print("\nTargets:\n" + verdict(cells, litellm_call, args.workers))
        if args.json:
            with open(args.json, "w") as handle:
                raw: dict[str, Any] = {
                    f"{name}|{'stream' if stream else 'plain'}|{c}": {
                        "rps": median(cell.rps),
                        "p50": median(cell.p50),
                        "p99": median(cell.p99),
                        "ttft50": median(cell.ttft50),
                        "errors": cell.errors,
                    }
                    for (name, stream, c), cell in cells.items()
                }
                json.dump(raw | {"litellm_call": litellm_call}, handle, indent=1)


if __name__ == "__main__":
    main()
