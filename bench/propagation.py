"""Propagation: time from a change in the registry or the tokens table to its effect on two replicas.

    .venv/bin/python -m bench.propagation [--changes 50] [--load-tokens 100000]

Starts moto, the stand-in backend and two ``python -m serve`` replicas (default poll intervals, one
worker each), then makes ``--changes`` changes to one model, alternately stopping it
(``litellmParams`` removed: 404) and starting it again (registered: 200), each through
``lisa_domain.registry`` exactly as the workflows do; then ``--changes`` API-token changes,
alternately creating a token and revoking it, through ``lisa_domain.tokens`` as the admin API does
(200 / 401). After each change both replicas are polled every 5 ms until they show it; the time
from the write's return to the first answer showing it is recorded per replica. Target: p99 <= 1 s.

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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.propagation", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument(
        "--load-tokens", type=int, default=0, help="also measure a full load of this many tokens"
    )
    args = parser.parse_args()
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-prop")
        lisa.add_model(MODEL, backend_url)
        urls = []
        for index in range(2):
            urls.append(processes.add(start_serve(lisa, name=f"serve-{index}", LISA_SERVE_WORKERS="1")))
        log(f"replicas {urls}; {args.changes} changes of each kind")
        key = lisa.management_key
        registry = asyncio.run(measure(args.changes, urls, registry_change(lisa, backend_url), key))
        report(f"Registry propagation over {args.changes} changes (stop/start alternating)", registry)
        tokens = asyncio.run(measure(args.changes, urls, token_change(lisa), key))
        report(f"API-token propagation over {args.changes} changes (create/revoke alternating)", tokens)
    if args.load_tokens:
        token_load(args.load_tokens)


if __name__ == "__main__":
    main()
