"""What the steps work with: registry, model secrets, hosting backend (built from the environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

from lisa_domain.registry import ModelRegistry
from lisa_domain.secrets import ModelSecrets
from workflow_steps.hosting import HostingBackend, get_backend


@dataclass
class Services:
    registry: ModelRegistry
    secrets: ModelSecrets
    _hosting: HostingBackend | None = field(default=None, repr=False)

    @cached_property
    def hosting(self) -> HostingBackend:
        """Built on first use: Bedrock and external models never need it (nor its settings)."""
        return self._hosting or get_backend()

    @classmethod
    def from_env(cls) -> Services:
        table = os.environ.get("MODELS_TABLE_NAME")
        if not table:
            raise RuntimeError("environment variable MODELS_TABLE_NAME is not set")
        return cls(
            registry=ModelRegistry(table),
            secrets=ModelSecrets(os.environ.get("MODEL_SECRET_PREFIX", "lisa/models/")),
        )
