"""Usage metering: every inference request is counted in memory and flushed in batches.

``Meter.record`` adds a request (caller, model, route, status, tokens, latency; never a body) to
this replica's aggregates per day x user x model. Every ``LISA_SERVE_METERING_FLUSH_SECONDS``
(default 10) and on shutdown ``flush`` writes them with atomic ``ADD``s, at most
``lisa_domain.usage.FLUSH_BATCH`` aggregates per ``TransactWriteItems``, so a replica writes at
most one transaction per flush for up to 99 active (user, model) pairs, however many requests.

Each batch gets the replica's next sequence number when it is cut, and keeps it until written;
batches are written strictly in order and a failed one (and everything after it) is retried at the
next flush with the same number. The usage table refuses a number the replica's marker already
reached, so a retry of a batch that had committed (a timeout after the commit) does not count
twice. A crash loses only what was not yet flushed: at most one interval of this replica's usage.

With ``LISA_SERVE_METRICS`` the flush also prints CloudWatch embedded-metric-format documents
(namespace ``LISA``, dimensions ``model`` and ``model`` x ``route``): ``Requests``, ``Errors``, ``PromptTokens``,
``CompletionTokens`` and every request's ``Latency`` (milliseconds), no API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from starlette.responses import Response

from lisa_contracts.names import METRICS_NAMESPACE
from lisa_domain.auth import Principal
from lisa_domain.usage import FLUSH_BATCH, Counts, FlushBatch, Flushed, UsageKey, UsageStore, day_of, month_of
from serve.limits import Admission, BudgetGuard, UsageGate

logger = logging.getLogger("lisa.serve")

#: Values per metric in one EMF document (CloudWatch's limit).
EMF_MAX_VALUES = 100
#: Latencies kept per model between two flushes (beyond them the percentiles use the first ones).
MAX_LATENCIES = 10_000


@dataclass
class _ModelMetrics:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class MetricsPrinter:
    """Per-model metrics as CloudWatch EMF documents on ``stream`` (stdout: the task's log)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def emit(self, per_model: dict[tuple[str, str], _ModelMetrics], at: float) -> None:
        stream = self._stream or sys.stdout
        for (model, route), metrics in per_model.items():
            latencies = metrics.latencies_ms or [0.0]
            for start in range(0, len(latencies), EMF_MAX_VALUES):
                values: dict[str, object] = {"Latency": latencies[start : start + EMF_MAX_VALUES]}
                if start == 0:
                    values |= {
                        "Requests": metrics.requests,
                        "Errors": metrics.errors,
                        "PromptTokens": metrics.prompt_tokens,
                        "CompletionTokens": metrics.completion_tokens,
                    }
                    if not metrics.latencies_ms:
                        del values["Latency"]
                units = {"Latency": "Milliseconds"}
                document = {
                    "_aws": {
                        "Timestamp": int(at * 1000),
                        "CloudWatchMetrics": [
                            {
                                "Namespace": METRICS_NAMESPACE,
                                "Dimensions": [["model"], ["model", "route"]],
                                "Metrics": [
                                    {"Name": name, "Unit": units.get(name, "Count")} for name in values
                                ],
                            }
                        ],
                    },
                    "model": model,
                    "route": route,
                    **values,
                }
                stream.write(json.dumps(document) + "\n")
        stream.flush()


class Meter:
    def __init__(
        self,
        store: UsageStore,
        *,
        flush_seconds: float,
        budgets: BudgetGuard | None = None,
        metrics: MetricsPrinter | None = None,
        replica_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._flush_seconds = flush_seconds
        self._budgets = budgets
        self._metrics = metrics
        self.replica_id = replica_id or uuid.uuid4().hex
        self._clock = clock
        self._lock = threading.Lock()  # record (event loop) against the swap in flush (a thread)
        self._flush_lock = threading.Lock()  # one flush at a time (the timer and shutdown)
        self._usage: dict[UsageKey, Counts] = {}
        self._spent: dict[tuple[str, str], int] = {}
        self._per_model: dict[tuple[str, str], _ModelMetrics] = {}
        self._outbox: list[FlushBatch] = []
        self._seq = 0
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        *,
        username: str,
        groups: Iterable[str],
        model: str,
        status: int,
        prompt_tokens: int,
        completion_tokens: int,
        latency_seconds: float,
        budget_keys: Iterable[str] = (),
        route: str = "",
    ) -> None:
        """One answered request; ``route`` (``chat/completions``, ...) is a metrics dimension only."""
        now = self._clock()
        tokens = prompt_tokens + completion_tokens
        error = 1 if status >= 400 else 0
        keys = list(budget_keys) if tokens else []
        with self._lock:
            counts = self._usage.get(key := UsageKey(day_of(now), username, model))
            if counts is None:
                counts = self._usage[key] = Counts(groups=set(groups))
            counts.requests += 1
            counts.errors += error
            counts.promptTokens += prompt_tokens
            counts.completionTokens += completion_tokens
            if keys:
                month = month_of(now)
                for budget in keys:
                    self._spent[(budget, month)] = self._spent.get((budget, month), 0) + tokens
            if self._metrics is not None:
                metrics = self._per_model.setdefault((model, route), _ModelMetrics())
                metrics.requests += 1
                metrics.errors += error
                metrics.prompt_tokens += prompt_tokens
                metrics.completion_tokens += completion_tokens
                if len(metrics.latencies_ms) < MAX_LATENCIES:
                    metrics.latencies_ms.append(round(latency_seconds * 1000, 3))
        if keys and self._budgets is not None:
            self._budgets.spend(keys, tokens)

    def flush(self) -> int:
        """Cut what was recorded into batches and write every pending batch in order; returns the
        number of batches written (blocking: call it in a thread)."""
        with self._flush_lock:
            with self._lock:
                usage, self._usage = self._usage, {}
                spent, self._spent = self._spent, {}
                per_model, self._per_model = self._per_model, {}
            self._outbox.extend(self._cut(usage, spent))
            if per_model and self._metrics is not None:
                self._metrics.emit(per_model, self._clock())
            written = 0
            while self._outbox:
                batch = self._outbox[0]
                try:
                    outcome = self.store.flush(self.replica_id, batch)
                except Exception as error:  # kept, with its number, for the next flush
                    logger.warning("usage flush failed (kept for the next flush): %s", type(error).__name__)
                    break
                if outcome is Flushed.DUPLICATE:
                    logger.info("usage batch %d was already written", batch.seq)
                self._outbox.pop(0)
                written += 1
                if self._budgets is not None:
                    self._budgets.flushed({key: tokens for (key, _), tokens in batch.budgets.items()})
            return written

    def _cut(self, usage: dict[UsageKey, Counts], spent: dict[tuple[str, str], int]) -> list[FlushBatch]:
        """Batches of at most ``FLUSH_BATCH`` updates, each with the next sequence number."""
        usage_items, spent_items = list(usage.items()), list(spent.items())
        batches = []
        while usage_items or spent_items:
            aggregates, usage_items = usage_items[:FLUSH_BATCH], usage_items[FLUSH_BATCH:]
            room = FLUSH_BATCH - len(aggregates)
            budgets, spent_items = spent_items[:room], spent_items[room:]
            self._seq += 1
            batches.append(FlushBatch(self._seq, dict(aggregates), dict(budgets)))
        return batches

    @property
    def pending_batches(self) -> int:
        return len(self._outbox)

    # ---- lifecycle (the app's lifespan) --------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-meter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.flush)  # the last interval is not lost on shutdown

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await asyncio.to_thread(self.flush)


def _tokens(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    return value if isinstance(value, int) and value > 0 else 0


class Metered:
    """One inference request: its admission (limits), its token usage, and one record at its end."""

    def __init__(
        self,
        meter: Meter,
        gate: UsageGate | None,
        principal: Principal,
        model: str,
        started: float,
        route: str = "",
    ) -> None:
        self._meter = meter
        self._gate = gate
        self._principal = principal
        self._model = model
        self._route = route
        self._started = started
        self._admission: Admission | None = None
        self._prompt = self._completion = 0
        self._finished = False
        self._client_wants_usage = False

    async def admit(self) -> None:
        """Apply the limits (``LimitExceeded``: 429, recorded by ``finish`` like any error)."""
        if self._gate is not None:
            self._admission = await self._gate.admit(self._principal)

    def headers(self) -> dict[str, str]:
        return dict(self._admission.headers) if self._admission is not None else {}

    def answered_by(self, model: str) -> None:
        """A fallback answered (``serve.fallback``): the request is recorded for that model."""
        self._model = model

    def usage(self, usage: Any) -> None:
        """The backend's ``usage`` (set, not added: a stream's usage is counted once)."""
        if usage is not None:
            self._prompt = _tokens(usage, "prompt_tokens")
            self._completion = _tokens(usage, "completion_tokens")

    def stream_options(self, requested: Any) -> dict[str, Any]:
        """The client's ``stream_options`` with ``include_usage`` on (the client still gets usage
        only if it asked for it: ``observe_chunk``)."""
        options = dict(requested) if isinstance(requested, dict) else {}
        self._client_wants_usage = bool(options.get("include_usage"))
        return options | {"include_usage": True}

    def observe_chunk(self, chunk: Any) -> bool:
        """Take a stream chunk's usage; whether to send the chunk (a usage-only chunk the client did
        not ask for is dropped, and usage is stripped from the others)."""
        usage = getattr(chunk, "usage", None)
        if usage is None:
            return True
        self.usage(usage)
        if self._client_wants_usage:
            return True
        if not getattr(chunk, "choices", None):
            return False
        with contextlib.suppress(AttributeError, ValueError):
            chunk.usage = None
        return True

    def finish(self, status: int, response: Response | None = None) -> None:
        """Record the request once (later calls do nothing); add the limit headers to ``response``."""
        if response is not None:
            response.headers.update(self.headers())
        if self._finished:
            return
        self._finished = True
        tokens = self._prompt + self._completion
        if self._gate is not None and self._admission is not None:
            self._gate.spent(self._admission, tokens)
        self._meter.record(
            username=self._principal.username,
            groups=self._principal.groups,
            model=self._model,
            route=self._route,
            status=status,
            prompt_tokens=self._prompt,
            completion_tokens=self._completion,
            latency_seconds=time.perf_counter() - self._started,
            budget_keys=self._admission.budgets if self._admission is not None else (),
        )
