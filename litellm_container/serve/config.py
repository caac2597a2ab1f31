"""The serve app's settings, read from the environment (names documented in docs/serve-api.md)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"environment variable {name} is not set")
    return value


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


@dataclass(frozen=True)
class RequestLimits:
    """Caps on request parameters that multiply a shared backend's work (400 above them)."""

    #: Most choices per request (``n``).
    max_n: int = 8
    #: Most candidates per completion (``best_of``).
    max_best_of: int = 8
    #: Most tokens per choice (``max_tokens``, ``max_completion_tokens``, ``min_tokens``).
    max_tokens: int = 32768
    #: Largest guided-decoding field (``guided_*``, ``response_format``) in bytes of compact JSON.
    max_guided_bytes: int = 65536

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RequestLimits:
        return cls(
            max_n=int(_number(env, "LISA_SERVE_MAX_N", cls.max_n, 1)),
            max_best_of=int(_number(env, "LISA_SERVE_MAX_BEST_OF", cls.max_best_of, 1)),
            max_tokens=int(_number(env, "LISA_SERVE_MAX_TOKENS", cls.max_tokens, 1)),
            max_guided_bytes=int(_number(env, "LISA_SERVE_MAX_GUIDED_BYTES", cls.max_guided_bytes, 1)),
        )


@dataclass(frozen=True)
class ServeConfig:
    models_table: str
    tokens_table: str | None = None
    management_key_secret_arn: str | None = None
    admin_group: str = "lisa-admins"
    host: str = "127.0.0.1"
    port: int = 8080
    #: How often the registry version is read (seconds); a change is served within this plus a rebuild.
    registry_poll_seconds: float = 0.25
    #: Readiness reports ``stale`` (still 200) when the registry (or the tokens table) could not be
    #: read for this long (seconds).
    registry_stale_seconds: float = 10.0
    #: How often the tokens table's version is read (seconds): API-token creation and revocation
    #: reach the replica within this plus one read.
    tokens_poll_seconds: float = 0.25
    #: Every this many seconds the replica reloads every token (picks up deletions made outside LISA).
    tokens_resync_seconds: float = 300.0
    #: How long to wait for a model backend (connect, and between any two bytes it sends).
    backend_timeout_seconds: float = 300.0
    #: LiteLLM retries per request (0 = a failing backend fails the request at once).
    backend_retries: int = 0
    #: Request bodies larger than this are refused with 413 before being parsed.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Caps on ``n``, ``best_of``, token counts and guided-decoding fields.
    request_limits: RequestLimits = RequestLimits()
    #: How long a successful management-key authentication is reused (0 = never). API tokens are
    #: always answered from the replica's followed tokens; JWT results are never reused.
    auth_cache_seconds: float = 0.0
    #: Whether the management key is accepted on the serve API (off: API tokens and JWTs only).
    allow_management_key: bool = False
    access_log: bool = True
    log_level: str = "info"
    keep_alive_seconds: float = 75.0
    graceful_shutdown_seconds: float = 25.0
    #: uvicorn worker processes sharing the socket (0, the default = one per available CPU, see
    #: ``worker_count``; the deployment sets the task's vCPUs). Each follows the registry and the
    #: tokens on its own, so two requests to one task may see different versions for up to the
    #: propagation bound (one second) after a change.
    workers: int = 0

    def worker_count(self) -> int:
        """``workers``, or when 0 the CPUs this process may use (affinity and cgroup quota)."""
        return self.workers if self.workers > 0 else available_cpus()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServeConfig:
        env = os.environ if env is None else env
        return cls(
            models_table=_required(env, "MODELS_TABLE_NAME"),
            tokens_table=env.get("TOKENS_TABLE_NAME", "").strip() or None,
            management_key_secret_arn=env.get("MANAGEMENT_KEY_SECRET_ARN", "").strip() or None,
            admin_group=env.get("ADMIN_GROUP", "").strip() or "lisa-admins",
            host=env.get("LISA_SERVE_HOST", "").strip() or "127.0.0.1",
            port=int(_number(env, "LISA_SERVE_PORT", 8080, 0)),
            registry_poll_seconds=_number(env, "LISA_SERVE_REGISTRY_POLL_SECONDS", 0.25, 0.01),
            registry_stale_seconds=_number(env, "LISA_SERVE_REGISTRY_STALE_SECONDS", 10.0, 0.1),
            tokens_poll_seconds=_number(env, "LISA_SERVE_TOKENS_POLL_SECONDS", 0.25, 0.01),
            tokens_resync_seconds=_number(env, "LISA_SERVE_TOKENS_RESYNC_SECONDS", 300.0, 1),
            backend_timeout_seconds=_number(env, "LISA_SERVE_BACKEND_TIMEOUT_SECONDS", 300.0, 0.1),
            backend_retries=int(_number(env, "LISA_SERVE_BACKEND_RETRIES", 0, 0)),
            max_body_bytes=int(_number(env, "LISA_SERVE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, 1)),
            auth_cache_seconds=_number(env, "LISA_SERVE_AUTH_CACHE_SECONDS", 0.0, 0),
            allow_management_key=_flag(env, "LISA_SERVE_ALLOW_MANAGEMENT_KEY", False),
            request_limits=RequestLimits.from_env(env),
            access_log=_flag(env, "LISA_SERVE_ACCESS_LOG", True),
            log_level=(env.get("LISA_SERVE_LOG_LEVEL", "").strip() or "info").lower(),
            keep_alive_seconds=_number(env, "LISA_SERVE_KEEP_ALIVE_SECONDS", 75.0, 1),
            graceful_shutdown_seconds=_number(env, "LISA_SERVE_GRACEFUL_SHUTDOWN_SECONDS", 25.0, 0),
            workers=int(_number(env, "LISA_SERVE_WORKERS", 0, 0)),
        )
