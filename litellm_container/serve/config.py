"""The serve app's settings: ``ServeSettings`` (``lisa_contracts``) plus what the app derives from them."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from lisa_contracts.settings import DEFAULT_MAX_BODY_BYTES, ServeSettings

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RequestLimits", "ServeConfig", "available_cpus"]


def _cgroup_cpu_limit() -> int | None:
    """The cgroup CPU quota in whole CPUs (rounded up), v2 or v1; None when there is none."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as handle:
            quota, period = handle.read().split()[:2]
        return None if quota == "max" else math.ceil(int(quota) / int(period))
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as handle:
            quota_us = int(handle.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as handle:
            period_us = int(handle.read())
        return None if quota_us <= 0 else math.ceil(quota_us / period_us)
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (ECS task CPU)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        count = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(count, limit) if limit else count)


def _default(field: str) -> int:
    return int(ServeSettings.model_fields[field].default)


@dataclass(frozen=True)
class RequestLimits:
    """Caps on request parameters that multiply a shared backend's work (400 above them)."""

    #: Most choices per request (``n``).
    max_n: int = _default("max_n")
    #: Most candidates per completion (``best_of``).
    max_best_of: int = _default("max_best_of")
    #: Most tokens per choice (``max_tokens``, ``max_completion_tokens``, ``min_tokens``).
    max_tokens: int = _default("max_tokens")
    #: Largest guided-decoding field (``guided_*``, ``response_format``) in bytes of compact JSON.
    max_guided_bytes: int = _default("max_guided_bytes")


class ServeConfig(ServeSettings):
    """The serve app's settings (every field, variable and default: ``lisa_contracts.settings.ServeSettings``)."""

    @property
    def request_limits(self) -> RequestLimits:
        """Caps on ``n``, ``best_of``, token counts and guided-decoding fields."""
        return RequestLimits(self.max_n, self.max_best_of, self.max_tokens, self.max_guided_bytes)

    def worker_count(self) -> int:
        """``workers``, or when 0 the CPUs this process may use (affinity and cgroup quota). Each
        worker follows the registry and the tokens on its own, so two requests to one task may see
        different versions for up to the propagation bound (one second) after a change."""
        return self.workers if self.workers > 0 else available_cpus()
