"""Hosting backends for self-hosted models, chosen by ``HOSTING_BACKEND`` (``ecs`` by default).

Local mode registers its own backend with ``register_backend("local", factory)`` before the
workflows run; nothing in ``lambdas/`` imports local mode.
"""

from __future__ import annotations

from collections.abc import Callable

from workflow_steps.hosting.base import HostingBackend, HostingFailed, Progress

__all__ = ["HostingBackend", "HostingFailed", "Progress", "get_backend", "register_backend"]

BackendFactory = Callable[[], HostingBackend]


def _ecs() -> HostingBackend:
    from workflow_steps.hosting.ecs import EcsHostingBackend

    return EcsHostingBackend.from_env()


_factories: dict[str, BackendFactory] = {"ecs": _ecs}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``HOSTING_BACKEND=name`` build its backend with ``factory`` (replaces an earlier one)."""
    _factories[name] = factory


def get_backend(chosen: str) -> HostingBackend:
    """A new backend of the registered name (``WorkflowStepsSettings.hosting_backend``)."""
    try:
        factory = _factories[chosen]
    except KeyError:
        hint = " (local mode registers 'local'; the Lambda has only 'ecs')" if chosen == "local" else ""
        raise RuntimeError(
            f"HOSTING_BACKEND={chosen!r} is not a registered hosting backend "
            f"(registered: {', '.join(sorted(_factories))}){hint}"
        ) from None
    return factory()
