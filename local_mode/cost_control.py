"""Local mode's cost-control evaluator: the Lambda's own handler (``scheduler.handler``), in a thread,
every ``LISA_LOCAL_SCHEDULER_SECONDS`` (default 15) instead of every minute.

``LISA_LOCAL_IDLE_MINUTE_SECONDS`` (default 60, at most 60) scales ``idleStopMinutes`` down so an
idle stop can be watched on one machine: with 6, a model with ``idleStopMinutes: 5`` stops after
30 idle seconds. The serve app then reports use that often too (``LISA_SERVE_USAGE_FLUSH_SECONDS``).
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger("local_mode")

SCHEDULER_SECONDS_ENV = "LISA_LOCAL_SCHEDULER_SECONDS"
IDLE_MINUTE_SECONDS_ENV = "LISA_LOCAL_IDLE_MINUTE_SECONDS"
DEFAULT_SCHEDULER_SECONDS = 15.0


def scheduler_seconds() -> float:
    raw = os.environ.get(SCHEDULER_SECONDS_ENV, "").strip()
    value = float(raw) if raw else DEFAULT_SCHEDULER_SECONDS
    if value <= 0:
        raise ValueError(f"{SCHEDULER_SECONDS_ENV} must be a positive number of seconds")
    return value


def serve_settings() -> dict[str, float]:
    """``ServeSettings`` fields the serve app needs so its use reports keep up with a scaled-down
    idle minute (none when it is not scaled)."""
    raw = os.environ.get(IDLE_MINUTE_SECONDS_ENV, "").strip()
    return {"usage_flush_seconds": min(60.0, float(raw))} if raw else {}


class EvaluatorLoop:
    """Runs ``scheduler.handler.lambda_handler`` every ``interval`` seconds until ``stop()``."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cost-control", daemon=True)

    def start(self) -> None:
        from scheduler import handler

        handler.evaluator.cache_clear()  # built from this process's (local) environment
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from scheduler.handler import lambda_handler

        while not self._stopped.wait(self.interval):
            try:
                result = lambda_handler({}, None)
            except Exception:
                logger.exception("local mode: the cost-control evaluator failed; trying again")
                continue
            for change in result["changes"]:
                logger.warning(
                    "cost control: %s %s (%s)%s",
                    change["action"],
                    change["modelId"],
                    change["cause"],
                    f": {change['error']}" if change["error"] else "",
                )
