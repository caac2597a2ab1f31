"""Propagation: time from a change in the registry or the tokens table to its effect on two replicas.

    .venv/bin/python -m bench.propagation [--changes 50] [--load-tokens 100000]

Starts moto, the stand-in backend and two ``python -m serve`` replicas (default poll intervals, one
worker each), then makes ``--changes`` changes to one model, alternately stopping it
(``litellmParams`` removed: 404) and starting it again (registered: 200), each through
``lisa_domain.registry`` exactly as the workflows do; then ``--changes`` API-token changes,
alternately creating a token and revoking it, through ``lisa_domain.tokens`` as the admin API does
(200 / 401). After each change both replicas are polled every 5 ms until they show it; the time
from the write's return to the first answer showing it is recorded per replica. Target: p99 <= 1 s.

``--models N`` seeds N more served models (``bench.seed``) before the replicas start (the scale case of issue
20: their start-up time to ready is reported), and ``--burst N`` then makes N changes to those
models spread over 5 s (re-registrations with new parameters, as an admin script would) while 16
concurrent chat requests run against replica 1: reported are the time from the last write until
both replicas report the final registry version on ``/health/ready``, and the chat p99 during the
burst next to its p99 over the 5 s before it. DynamoDB reads per change are counted on an
in-process follower of the same table (botocore's ``provide-client-params`` event).

``--load-tokens N`` also measures a replica's full load of N tokens in-process: the follower's
Scan pages (as DynamoDB returns them, 1 MB each) come from memory, so the figure is LISA's own
parsing and building, and the memory its map of N tokens takes (tracemalloc); DynamoDB's time to
return ~N x 250 bytes of pages comes on top.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench._http import median, percentile
from bench._procs import Lisa, Processes, log, start_serve
from bench.seed import seed_models

MODEL = "prop-model"
LIMIT = 5.0


async def _until(
    client: httpx.AsyncClient, url: str, expected: int, started: float, headers: dict[str, str] | None = None
) -> float:
    while True:
        # With a token of its own (token changes): the model list, whatever the model's state.
        path = "/v2/serve/models" if headers else f"/v2/serve/models/{MODEL}"
        response = await client.get(url + path, headers=headers)
        if response.status_code == expected:
            return time.monotonic() - started
        if time.monotonic() - started > LIMIT:
            return float("inf")
        await asyncio.sleep(0.005)


async def measure(
    changes: int,
    urls: list[str],
    change: Callable[[int], Awaitable[tuple[int, dict[str, str] | None]]],
    key: str,
) -> list[list[float]]:
    """Per replica, the seconds from each ``change(index)`` (which answers the status to wait for,
    and the headers to send) to its effect."""
    times: list[list[float]] = [[] for _ in urls]
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=5) as client:
        for index in range(changes):
            expected, headers = await change(index)
            started = time.monotonic()
            results = await asyncio.gather(*(_until(client, url, expected, started, headers) for url in urls))
            for replica, seconds in enumerate(results):
                times[replica].append(seconds)
            # Spread the changes over the poll cycle so they do not all land at the same phase.
            await asyncio.sleep(0.05 + (index * 0.037) % 0.25)
    return times


def registry_change(lisa: Lisa, backend_url: str) -> Callable[[int], Awaitable[tuple[int, None]]]:
    from lisa_domain.schema import ModelStatus

    registry = lisa.registry

    async def change(index: int) -> tuple[int, None]:
        if index % 2 == 0:
            registry.deregister(MODEL, allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
            return 404, None
        registry.transition(MODEL, allowed_from=[ModelStatus.STOPPED], to=ModelStatus.STARTING)
        registry.register(
            MODEL,
            {"model": "openai/echo", "api_base": backend_url, "api_key": "unused"},
            allowed_from=[ModelStatus.STARTING],
        )
        return 200, None

    return change


def token_change(lisa: Lisa) -> Callable[[int], Awaitable[tuple[int, dict[str, str]]]]:
    """Alternately a new token (200 once followed) and its revocation (401)."""
    current: list[Any] = []

    async def change(index: int) -> tuple[int, dict[str, str]]:
        if index % 2 == 0:
            current[:] = lisa.tokens.create(username=f"prop-{index}", groups=["lisa-admins"])
            return 200, {"Authorization": f"Bearer {current[0]}"}
        lisa.tokens.delete(current[1])
        return 401, {"Authorization": f"Bearer {current[0]}"}

    return change


def report(title: str, times: list[list[float]]) -> None:
    print(f"\n{title}, ms\n")
    print("| replica | p50 | p99 | max | misses (> 5 s) |")
    print("| --- | --- | --- | --- | --- |")
    both = [max(pair) for pair in zip(*times, strict=True)]
    for name, values in [*((f"replica {i + 1}", t) for i, t in enumerate(times)), ("both (slower)", both)]:
        ordered = sorted(values)
        misses = sum(1 for v in values if v == float("inf"))
        print(
            f"| {name} | {median(ordered) * 1000:.0f} | {percentile(ordered, 99) * 1000:.0f} "
            f"| {ordered[-1] * 1000:.0f} | {misses} |"
        )
    p99 = percentile(sorted(both), 99)
    print(
        f"\nTarget p99 <= 1000 ms on both replicas: {'met' if p99 <= 1.0 else 'NOT met'} ({p99 * 1000:.0f} ms)"
    )


class _Pages:
    """A DynamoDB client stand-in holding ``count`` token items, answering the follower's two calls."""

    PAGE_ITEMS = 4000  # ~1 MB of these items: DynamoDB's page size

    def __init__(self, count: int) -> None:
        expiry = int(time.time()) + 86_400
        self.items: list[dict[str, Any]] = [
            {
                "tokenHash": {"S": hashlib.sha256(f"token-{index}".encode()).hexdigest()},
                "tokenId": {"S": f"{index:032x}"},
                "username": {"S": f"user-{index % 5000}@example.com"},
                "groups": {"L": [{"S": "team-a"}, {"S": f"project-{index % 50}"}]},
                "createdAt": {"N": str(expiry - 86_400)},
                "tokenExpiration": {"N": str(expiry)},
            }
            for index in range(count)
        ]

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": {"tokenHash": {"S": "#version"}, "version": {"N": "1"}, "changes": {"L": []}}}

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        start = int(kwargs.get("ExclusiveStartKey", {}).get("at", {}).get("N", "0"))
        page = self.items[start : start + self.PAGE_ITEMS]
        following = start + len(page)
        more = {"LastEvaluatedKey": {"at": {"N": str(following)}}} if following < len(self.items) else {}
        return {"Items": page, **more}


def token_load(count: int) -> None:
    from lisa_domain.tokens import TokenStore
    from serve.token_follower import TokenFollower

    pages = _Pages(count)
    store = TokenStore("tokens", pages)
    timings = []
    for _ in range(3):
        follower = TokenFollower(store, "lisa-admins", poll_seconds=1)
        cpu, wall = time.process_time(), time.perf_counter()
        follower.refresh()
        timings.append((time.process_time() - cpu, time.perf_counter() - wall))
    follower = TokenFollower(store, "lisa-admins", poll_seconds=1)
    tracemalloc.start()  # slows allocation down: a separate load, for memory only
    follower.refresh()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lookup_started = time.perf_counter()
    for item in pages.items[:10_000]:
        assert follower.lookup(item["tokenHash"]["S"]) is not None
    lookup = (time.perf_counter() - lookup_started) / 10_000
    cpu, wall = min(timings)
    print(
        f"\nFull load of {len(follower):,} tokens in-process (best of 3): {cpu:.2f} s CPU, {wall:.2f} s wall; "
        f"the map holds {held / 2**20:.1f} MiB (peak during the load {peak / 2**20:.1f} MiB); "
        f"lookup {lookup * 1e6:.2f} us"
    )


def add_models(lisa: Lisa, backend_url: str, count: int) -> None:
    """``count`` more served models, seeded (``bench.seed``: seconds instead of ~17 min for 1,000)."""
    started = time.monotonic()
    seed_models(lisa, [f"scale-{index}" for index in range(count)], backend_url)
    log(f"{count} more served models seeded in {time.monotonic() - started:.0f} s")


async def _chat_load(url: str, key: str, seconds: float, concurrency: int = 16) -> list[float]:
    """Latencies of chat requests to ``MODEL`` over ``seconds``, ``concurrency`` at a time."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:

        async def one() -> None:
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = await client.post(url + "/v2/serve/chat/completions", json=body)
                if response.status_code == 200:
                    latencies.append(time.monotonic() - started)

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return sorted(latencies)


async def _registry_version(client: httpx.AsyncClient, url: str) -> int:
    return int((await client.get(url + "/health/ready")).json().get("registryVersion", -1))


async def burst(lisa: Lisa, backend_url: str, urls: list[str], count: int, models: int) -> None:
    """``count`` changes to the scale models over 5 s while chat load runs; see the module docstring."""
    from lisa_domain.schema import ModelStatus

    key = lisa.management_key
    steady = await _chat_load(urls[0], key, 5.0)

    async def changes() -> float:
        for index in range(count):
            model_id = f"scale-{(index * 7919) % models}"
            params = {"model": "openai/echo", "api_base": backend_url, "api_key": f"rev-{index}"}
            await asyncio.to_thread(
                lisa.registry.register, model_id, params, allowed_from=[ModelStatus.IN_SERVICE]
            )
            await asyncio.sleep(max(0.0, 5.0 / count - 0.01))
        return time.monotonic()

    load = asyncio.create_task(_chat_load(urls[0], key, 7.0))
    last_write = await changes()
    final = lisa.registry.version()
    async with httpx.AsyncClient(timeout=5) as client:
        applied = []
        for url in urls:
            while await _registry_version(client, url) < final:
                await asyncio.sleep(0.005)
            applied.append(time.monotonic() - last_write)
    during = await load
    print(f"\nBurst of {count} changes in 5 s over {models} served models (2 replicas), ms\n")
    print("| | replica 1 | replica 2 |")
    print("| --- | --- | --- |")
    print(
        f"| last write -> final version on /health/ready | {applied[0] * 1000:.0f} | {applied[1] * 1000:.0f} |"
    )
    print("\n| chat, concurrency 16, replica 1 | requests | p50 | p99 |")
    print("| --- | --- | --- | --- |")
    for name, values in (("steady (5 s before)", steady), ("during the burst", during)):
        print(
            f"| {name} | {len(values)} | {median(values) * 1000:.0f} | {percentile(values, 99) * 1000:.0f} |"
        )
    ratio = percentile(during, 99) / percentile(steady, 99)
    print(
        f"\nTargets: applied within 1000 ms of the last write: {'met' if max(applied) <= 1.0 else 'NOT met'}; "
        f"p99 during / steady = {ratio:.2f} (target <= 1.5)"
    )


def reads_per_change(lisa: Lisa, backend_url: str, models: int, changes: int = 20) -> None:
    """DynamoDB calls and keys an in-process follower reads per change (after its full load)."""
    import boto3

    from lisa_domain.registry import ModelRegistry
    from lisa_domain.schema import ModelStatus
    from serve.app import router_factory
    from serve.config import ServeConfig
    from serve.follower import RegistryFollower

    calls: dict[str, int] = {}
    keys = [0]

    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1
        if model.name == "BatchGetItem":
            keys[0] += sum(len(request["Keys"]) for request in params["RequestItems"].values())

    client = boto3.client("dynamodb", endpoint_url=lisa.registry._client.meta.endpoint_url)
    client.meta.events.register("provide-client-params.dynamodb", count)
    table = lisa.registry.table_name
    follower = RegistryFollower(
        ModelRegistry(table, client),
        router_factory(ServeConfig(models_table=table)),
        secrets=None,
        poll_seconds=1,
    )
    follower.refresh()
    full = dict(calls)
    calls.clear()
    for index in range(changes):
        params = {"model": "openai/echo", "api_base": backend_url, "api_key": f"reads-{index}"}
        lisa.registry.register(f"scale-{index % models}", params, allowed_from=[ModelStatus.IN_SERVICE])
        follower.refresh()
    print(
        f"\nDynamoDB reads of one replica: the first load of {models + 1} models {full}; then per change "
        f"(average of {changes}): "
        + ", ".join(f"{name} {number / changes:.1f}" for name, number in sorted(calls.items()))
        + f", keys read {keys[0] / changes:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.propagation", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument(
        "--load-tokens", type=int, default=0, help="also measure a full load of this many tokens"
    )
    parser.add_argument("--models", type=int, default=0, help="this many more served models (issue 20)")
    parser.add_argument("--burst", type=int, default=0, help="then a burst of this many changes in 5 s")
    args = parser.parse_args()
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-prop")
        lisa.add_model(MODEL, backend_url)
        add_models(lisa, backend_url, args.models)
        urls = []
        for index in range(2):
            started = time.monotonic()
            urls.append(processes.add(start_serve(lisa, name=f"serve-{index}", LISA_SERVE_WORKERS="1")))
            log(
                f"replica {index + 1} ready in {time.monotonic() - started:.1f} s with {args.models + 1} models"
            )
        log(f"replicas {urls}; {args.changes} changes of each kind")
        key = lisa.management_key
        registry = asyncio.run(measure(args.changes, urls, registry_change(lisa, backend_url), key))
        report(f"Registry propagation over {args.changes} changes (stop/start alternating)", registry)
        tokens = asyncio.run(measure(args.changes, urls, token_change(lisa), key))
        report(f"API-token propagation over {args.changes} changes (create/revoke alternating)", tokens)
        if args.models and args.burst:
            asyncio.run(burst(lisa, backend_url, urls, args.burst, args.models))
        if args.models:
            reads_per_change(lisa, backend_url, args.models)
    if args.load_tokens:
        token_load(args.load_tokens)


if __name__ == "__main__":
    main()
