"""The loop both followers share (registry and API tokens): ``refresh`` in a worker thread every
``poll_seconds``, failures logged (the first, then every hundredth) and retried on the next poll
while the replica answers from what it has; ``age()`` says how long ago the table was last read."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger("lisa.serve")


class PollingFollower(ABC):
    def __init__(self, name: str, what: str, *, poll_seconds: float) -> None:
        self._name = name  # the task's and the worker thread's name
        self._what = what  # what is read, for the log: "registry", "tokens table"
        self._poll_seconds = poll_seconds
        #: monotonic time of the last successful read of the table
        self.last_success = float("-inf")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._task: asyncio.Task[None] | None = None
        self._stopped = threading.Event()

    @abstractmethod
    def refresh(self) -> bool:
        """Read the table's version and apply what changed (a worker thread); True when it did."""

    def age(self) -> float:
        """Seconds since the table was last read successfully (infinite before the first read)."""
        return time.monotonic() - self.last_success

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        self._stopped.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopped.is_set():
            try:
                await loop.run_in_executor(self._executor, self.refresh)
                if failures:
                    logger.warning("%s read again after %d failure(s)", self._what, failures)
                failures = 0
            except Exception as error:
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    logger.warning(
                        "%s read failed (%d in a row, last success %.1f s ago; answering from what was "
                        "read before): %s",
                        self._what,
                        failures,
                        self.age(),
                        type(error).__name__,
                    )
            await asyncio.sleep(self._poll_seconds)
