"""Registry propagation: time from a change in the registry to its effect on two serve replicas.

    .venv/bin/python -m bench.propagation [--changes 50]

Starts moto, the stand-in backend and two ``python -m serve`` replicas (default poll interval),
then makes ``--changes`` changes to one model, alternately stopping it (``litellmParams`` removed:
404) and starting it again (registered: 200), each through ``lisa_domain.registry`` exactly as the
workflows do. After each change both replicas are polled every 5 ms until they show it; the time
from the write's return to the first answer showing it is recorded per replica. Target: p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from bench._http import median, percentile
from bench._procs import Lisa, Processes, log, start_serve

MODEL = "prop-model"
LIMIT = 5.0


async def _until(client: httpx.AsyncClient, url: str, expected: int, started: float) -> float:
    while True:
        response = await client.get(f"{url}/v2/serve/models/{MODEL}")
        if response.status_code == expected:
            return time.monotonic() - started
        if time.monotonic() - started > LIMIT:
            return float("inf")
        await asyncio.sleep(0.005)


async def measure(changes: int, lisa: Lisa, backend_url: str, urls: list[str]) -> list[list[float]]:
    from lisa_domain.schema import ModelStatus

    registry = lisa.registry
    key = lisa.management_key
    times: list[list[float]] = [[] for _ in urls]
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=5) as client:
        for index in range(changes):
            stopping = index % 2 == 0
            if stopping:
                registry.deregister(MODEL, allowed_from=[ModelStatus.IN_SERVICE], to=ModelStatus.STOPPED)
            else:
                registry.transition(MODEL, allowed_from=[ModelStatus.STOPPED], to=ModelStatus.STARTING)
                registry.register(
                    MODEL,
                    {"model": "openai/echo", "api_base": backend_url, "api_key": "unused"},
                    allowed_from=[ModelStatus.STARTING],
                )
            started = time.monotonic()
            results = await asyncio.gather(
                *(_until(client, url, 404 if stopping else 200, started) for url in urls)
            )
            for replica, seconds in enumerate(results):
                times[replica].append(seconds)
            # Spread the changes over the poll cycle so they do not all land at the same phase.
            await asyncio.sleep(0.05 + (index * 0.037) % 0.25)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.propagation", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    with Processes() as processes:
        lisa, backend_url = processes.registry_with_backend("lisa-prop")
        lisa.add_model(MODEL, backend_url)
        urls = []
        for index in range(2):
            urls.append(processes.add(start_serve(lisa, name=f"serve-{index}")))
        log(f"replicas {urls}; {args.changes} changes")
        times = asyncio.run(measure(args.changes, lisa, backend_url, urls))
        print(f"\nRegistry propagation over {args.changes} changes (stop/start alternating), ms\n")
        print("| replica | p50 | p99 | max | misses (> 5 s) |")
        print("| --- | --- | --- | --- | --- |")
        both = [max(pair) for pair in zip(*times, strict=True)]
        for name, values in [
            *((f"replica {i + 1}", t) for i, t in enumerate(times)),
            ("both (slower)", both),
        ]:
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


if __name__ == "__main__":
    main()
