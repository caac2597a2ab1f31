"""The admin API's services, built lazily once per container from the settings.

The imports are inside the functions: the domain (boto3 clients, pydantic models) loads with the
first request, not with the handler module (cold start). Each is built once per container (tests
start a fresh one with ``tests/support/lambda_state.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from admin_api.models import ModelService
    from admin_api.tokens import TokenService, TokenSettings
    from lisa_domain.capacity import SubnetCapacity
    from lisa_domain.usage import UsageStore

_service: ModelService | None = None
_token_service: TokenService | None = None
_token_settings: TokenSettings | None = None
_usage_store: UsageStore | None = None


def service() -> ModelService:
    global _service
    if _service is None:
        from admin_api.model_url import ModelUrlPolicy
        from admin_api.models import ModelService
        from lisa_domain.registry import ModelRegistry
        from lisa_domain.secrets import ModelSecrets
        from lisa_domain.settings import settings
        from lisa_domain.workflows import Workflow, WorkflowStarter

        config = settings()
        _service = ModelService(
            registry=ModelRegistry(config.models_table),
            secrets=ModelSecrets(config.model_secret_prefix),
            workflows=WorkflowStarter(
                {
                    Workflow.CREATE: config.create_state_machine_arn,
                    Workflow.UPDATE: config.update_state_machine_arn,
                    Workflow.DELETE: config.delete_state_machine_arn,
                },
                poll_seconds=config.workflow_poll_seconds,
                max_polls=config.workflow_max_polls,
            ),
            url_policy=ModelUrlPolicy.from_config(
                config.model_url_allow_http, config.model_url_allowed_cidrs
            ),
            capacity=model_capacity(config.model_subnet_ids),
        )
    return _service


def model_capacity(subnet_ids: str) -> SubnetCapacity | None:
    """The capacity checks of self-hosted creates and starts (None without model subnets)."""
    subnets = [subnet.strip() for subnet in subnet_ids.split(",") if subnet.strip()]
    if not subnets:
        return None
    import boto3

    from lisa_domain.capacity import CapacityChecker, ServiceQuotas, SubnetCapacity

    checker = CapacityChecker(boto3.client("ec2"), ServiceQuotas(boto3.client("service-quotas")))
    return SubnetCapacity(checker, subnets)


def token_settings() -> TokenSettings:
    global _token_settings
    if _token_settings is None:
        from admin_api.tokens import TokenSettings
        from lisa_domain.settings import settings

        _token_settings = TokenSettings.from_settings(settings())
    return _token_settings


def token_service() -> TokenService:
    global _token_service
    if _token_service is None:
        from admin_api.tokens import TokenService
        from lisa_domain.settings import settings
        from lisa_domain.tokens import TokenStore

        _token_service = TokenService(TokenStore(settings().tokens_table), token_settings())
    return _token_service


def usage_store() -> UsageStore:
    """The usage table (``GET /usage``); ``ValidationFailed`` when the deployment has none."""
    global _usage_store
    if _usage_store is None:
        from lisa_domain.errors import ValidationFailed
        from lisa_domain.settings import settings
        from lisa_domain.usage import UsageStore

        if not settings().usage_table:
            raise ValidationFailed("usage is not metered in this deployment (no usage table)")
        _usage_store = UsageStore(settings().usage_table)
    return _usage_store
