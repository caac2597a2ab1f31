"""The admin API's settings, read from the environment once per process (``lisa_contracts.settings``)."""

from __future__ import annotations

from functools import cache

from lisa_contracts.settings import AdminApiSettings


@cache
def settings() -> AdminApiSettings:
    """The process's settings (cached: Lambda environments do not change while warm)."""
    return AdminApiSettings.from_env()
