"""A minimal HTTP/1.1 keep-alive load generator on asyncio (no client library in the measurement).

One connection per concurrent worker, requests sent back to back. Each result records the status,
the time to the first body byte (for server-sent events: the first event, i.e. time to first
token) and the time to the last byte. The client costs a few tens of microseconds per request, the
same for every target, so differences between targets are the servers'.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Result:
    status: int  # 0: the connection failed or closed without an answer
    first_byte: float  # seconds from send to the first body bytes
    total: float  # seconds from send to the end of the body
    body: bytes


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> list[Result]:
        return [r for r in self.results if r.status == 200]

    @property
    def rps(self) -> float:
        return len(self.ok) / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float, *, first_byte: bool = False) -> float:
        values = sorted(r.first_byte if first_byte else r.total for r in self.ok)
        return percentile(values, q)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (``q`` in 0..100); NaN when empty."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q / 100 * len(values) + 0.5)))
    return values[rank - 1]


def median(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.median(clean) if clean else float("nan")


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        return self._reader, self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, raw: bytes) -> Result:
        started = time.perf_counter()
        try:
            reader, writer = await self._open()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            first: float | None = None
            if headers.get("transfer-encoding", "").lower() == "chunked":
                parts: list[bytes] = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        break
                    parts.append((await reader.readexactly(size + 2))[:-2])
                    if first is None:
                        first = time.perf_counter() - started
                body = b"".join(parts)
            else:
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
            total = time.perf_counter() - started
            if headers.get("connection", "").lower() == "close":
                self.close()
            return Result(status, total if first is None else first, total, body)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
            self.close()
            elapsed = time.perf_counter() - started
            return Result(0, elapsed, elapsed, b"")


def post(path: str, host: str, port: int, payload: Any, headers: dict[str, str] | None = None) -> bytes:
    body = json.dumps(payload).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get(path: str, host: str, port: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def load(
    host: str,
    port: int,
    make_request: Callable[[int], bytes],
    *,
    concurrency: int,
    requests: int,
    max_seconds: float,
    on_result: Callable[[int, Result], None] | None = None,
) -> Run:
    """Send ``requests`` requests (``make_request(i)``) over ``concurrency`` connections, stopping
    early after ``max_seconds``. Every request is bounded by ``max_seconds`` too."""
    run = Run()
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        connection = Connection(host, port)
        try:
            for index in counter:
                if time.perf_counter() > deadline:
                    return
                try:
                    result = await asyncio.wait_for(connection.request(make_request(index)), max_seconds)
                except TimeoutError:
                    connection.close()
                    result = Result(0, max_seconds, max_seconds, b"")
                run.results.append(result)
                if on_result is not None:
                    on_result(index, result)
        finally:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - started
    return run
