"""What the steps work with: registry, model secrets, hosting backend (built from the environment)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from lisa_contracts.settings import WorkflowStepsSettings
from lisa_domain.registry import ModelRegistry
from lisa_domain.secrets import ModelSecrets
from workflow_steps.hosting import HostingBackend, get_backend


@dataclass
class Services:
    registry: ModelRegistry
    secrets: ModelSecrets
    #: ``HOSTING_BACKEND``: which registered backend ``hosting`` builds.
    hosting_backend: str = WorkflowStepsSettings.model_fields["hosting_backend"].default
    _hosting: HostingBackend | None = field(default=None, repr=False)

    @cached_property
    def hosting(self) -> HostingBackend:
        """Built on first use: Bedrock and external models never need it (nor its settings)."""
        return self._hosting or get_backend(self.hosting_backend)

    @classmethod
    def from_settings(cls, settings: WorkflowStepsSettings) -> Services:
        return cls(
            registry=ModelRegistry(settings.models_table),
            secrets=ModelSecrets(settings.model_secret_prefix),
            hosting_backend=settings.hosting_backend,
        )

    @classmethod
    def from_env(cls) -> Services:
        return cls.from_settings(WorkflowStepsSettings.from_env())
