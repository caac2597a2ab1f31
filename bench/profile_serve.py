"""Profile the serve app under load with py-spy (a profiling aid, not a benchmark).

    .venv/bin/pip install py-spy   # not a project dependency
    .venv/bin/python -m bench.profile_serve [--stream] [--concurrency 16] [--seconds 10] [--out FILE]

Starts moto, the stand-in backend and ``python -m serve``, attaches ``py-spy record`` to the serve
process, sends chat completions for ``--seconds`` and writes py-spy's output (``--format`` raw:
collapsed stacks, one per line with a count, which ``--top`` sums per function).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from bench._http import load, post
from bench._procs import Processes, log, start_serve

MODEL = "bench-echo"


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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_serve")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default="/tmp/lisa-serve-profile.txt")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--serve-env", nargs="*", default=[])
    args = parser.parse_args()
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
