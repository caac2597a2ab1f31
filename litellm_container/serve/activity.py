"""Cost control on the serve side: usage reports for idle stop, and start on request.

The serve task never starts a workflow (decision 11 in docs/architecture.md); it records intent on the model's item
and the cost-control evaluator (``lambdas/scheduler``) acts on it within a minute:

* ``UsageReporter``: each request notes its model's last use in memory; every
  ``LISA_SERVE_USAGE_FLUSH_SECONDS`` (60) one conditional write per used model moves ``lastUsedAt``
  forward. No write per request, at most one per model per replica per minute.
* ``StartRequester``: a request for a stopped ``startOnRequest`` model sets the model's
  ``startRequested`` flag (only if absent), at most once per model per ``REQUEST_INTERVAL_SECONDS``
  per replica; the request answers 503 ``model_starting`` with ``Retry-After``.
* ``startable_groups``: whether a model is stopped (or stopping, or starting) with
  ``startOnRequest``; the registry follower asks it of every model it reads, so a replica knows
  them without serving them.

The serve task's role may ``UpdateItem`` the models table only on these two attributes (an IAM
condition on ``dynamodb:Attributes``, ``lisa_stacks/serve.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from starlette.responses import Response

from lisa_domain.cost_control import CostControlStore
from lisa_domain.schema import ModelRecord, ModelStatus
from serve.errors import ServeError

logger = logging.getLogger("lisa.serve")

#: What a client is told to wait before retrying a model that is starting (a GPU model takes minutes).
RETRY_AFTER_SECONDS = 30
#: A replica asks for the same model's start at most this often (the flag write is conditional anyway).
REQUEST_INTERVAL_SECONDS = 10.0
#: Statuses in which a ``startOnRequest`` model answers ``model_starting`` instead of 404.
STARTABLE_STATES = frozenset({ModelStatus.STOPPING, ModelStatus.STOPPED, ModelStatus.STARTING})


class ModelStarting(ServeError):
    """503 in OpenAI's error shape with ``Retry-After``: the model was asked to start."""

    def __init__(self, model_id: str) -> None:
        super().__init__(
            503,
            f"The model '{model_id}' is starting; retry in about {RETRY_AFTER_SECONDS} seconds.",
            type="server_error",
            code="model_starting",
            param="model",
        )

    def response(self) -> Response:
        response = super().response()
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def startable_groups(record: ModelRecord) -> tuple[str, ...] | None:
    """The allowed groups of a model that starts on request and is not running; ``None`` for any
    other model (the registry follower asks it of every model it reads)."""
    if record.startOnRequest and record.status in STARTABLE_STATES:
        return tuple(record.allowedGroups)
    return None


class StartRequester:
    """Sets a model's ``startRequested`` flag, once per model per interval on this replica."""

    def __init__(
        self,
        store: CostControlStore,
        *,
        interval: float = REQUEST_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._interval = interval
        self._clock = clock
        self._asked: dict[str, float] = {}

    async def request(self, model_id: str) -> None:
        """Ask for the start (no await between the check and the mark: concurrent requests ask once)."""
        now = self._clock()
        if now - self._asked.get(model_id, float("-inf")) < self._interval:
            return
        self._asked[model_id] = now
        try:
            flagged = await asyncio.to_thread(self._store.request_start, model_id, int(time.time()))
        except Exception as error:  # the next request asks again
            self._asked.pop(model_id, None)
            logger.warning("model %s: could not request its start: %s", model_id, type(error).__name__)
            return
        if flagged:
            logger.info("model %s: start on request asked for", model_id)


class UsageReporter:
    """Last use per model in memory; ``flush`` writes each used model's ``lastUsedAt`` once."""

    def __init__(
        self, store: CostControlStore, *, flush_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._pending: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def used(self, model_id: str) -> None:
        self._pending[model_id] = int(self._clock())

    def flush(self) -> int:
        """Write what was used since the last flush; returns the number of writes. A model whose
        write failed is kept for the next flush (unless a later use replaced it)."""
        pending, self._pending = self._pending, {}
        for model_id, at in pending.items():
            try:
                self._store.record_use(model_id, at)
            except Exception as error:
                self._pending[model_id] = max(at, self._pending.get(model_id, at))
                logger.warning("model %s: could not report its use: %s", model_id, type(error).__name__)
        return len(pending)

    # ---- lifecycle (the app's lifespan) --------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-reporter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.flush)  # what this replica saw last is not lost on shutdown

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await asyncio.to_thread(self.flush)
