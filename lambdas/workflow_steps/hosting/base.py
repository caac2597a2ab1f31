"""The hosting seam: what the workflows need from whatever runs a self-hosted model.

The workflows (``workflow_steps.create``, ``update``, ``delete``) only talk to this protocol; the
ECS/CloudFormation implementation is ``hosting.ecs`` and local mode adds a ``local`` one (local
processes) chosen by ``HOSTING_BACKEND``. Every ``start_*`` call returns at once; every ``poll_*``
call answers one ``Progress`` and never waits, so the waiting (and its bound) stays in the state
machine. A terminal failure raises ``HostingFailed`` with a message a person can act on.

Every method is idempotent and safe to call for a model whose infrastructure is partly or entirely
missing: cleanup calls them after a failure at any point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lisa_domain.schema import ModelRecord


class HostingFailed(Exception):
    """The infrastructure reached a state it will not recover from; the message says why."""


@dataclass(frozen=True)
class Progress:
    done: bool
    detail: str


class HostingBackend(Protocol):
    """Runs self-hosted models. ``model`` is always the model as it should be after the step
    (container settings, capacity, and ``enabled``: a disabled model runs zero tasks)."""

    def start_create(self, model: ModelRecord) -> None:
        """Begin creating the model's infrastructure (task definition, stack)."""
        ...

    def poll_create(self, model: ModelRecord) -> Progress:
        """Has the infrastructure been created? Raises HostingFailed when creation failed."""
        ...

    def poll_service(self, model: ModelRecord) -> Progress:
        """Does the model run its desired number of healthy tasks (zero when disabled)?"""
        ...

    def endpoint_url(self, model: ModelRecord) -> str:
        """Base URL of the model's OpenAI-compatible server (no ``/v1``)."""
        ...

    def start_update(self, model: ModelRecord, *, container_changed: bool) -> dict[str, str] | None:
        """Begin making the infrastructure match ``model``. Returns what ``revert_update`` and
        ``finish_update`` need (small, JSON, kept in the execution state), or None when nothing
        had to change."""
        ...

    def poll_update(self, model: ModelRecord) -> Progress:
        """Has the update been applied? Raises HostingFailed when it failed (and was rolled back)."""
        ...

    def revert_update(self, before: ModelRecord, undo: dict[str, str]) -> list[str]:
        """After a failed update: remove what it created (a new task definition revision) and
        point the infrastructure back at ``before``. Returns notes on what could not be done."""
        ...

    def finish_update(self, model: ModelRecord, undo: dict[str, str]) -> None:
        """After a successful update: release what the previous configuration used."""
        ...

    def start_delete(self, model: ModelRecord) -> bool:
        """Begin removing the infrastructure; False when there is none."""
        ...

    def poll_delete(self, model: ModelRecord) -> Progress:
        """Is the infrastructure gone? Raises HostingFailed when removal failed."""
        ...

    def release(self, model: ModelRecord) -> None:
        """After the infrastructure is gone: remove what outlives it (task definitions)."""
        ...
