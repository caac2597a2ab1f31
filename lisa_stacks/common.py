"""Small helpers every construct shares: removal policy and log retention from the config, the
settings fields several runtimes get (identity, models, workflow polling)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from lisa_stacks.config import LOG_RETENTION_DAYS, DeploymentConfig

if TYPE_CHECKING:
    from lisa_stacks.data import Data

#: CloudWatch Logs retention in days -> the CDK enum member.
RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
assert set(RETENTION) == set(LOG_RETENTION_DAYS)


def removal_policy(config: DeploymentConfig) -> cdk.RemovalPolicy:
    return cdk.RemovalPolicy.DESTROY if config.removalPolicy == "destroy" else cdk.RemovalPolicy.RETAIN


def log_group(scope: Construct, construct_id: str, config: DeploymentConfig) -> logs.LogGroup:
    """A log group with the configured retention (encrypted at rest by CloudWatch Logs)."""
    return logs.LogGroup(
        scope,
        construct_id,
        retention=RETENTION[config.logRetentionDays],
        removal_policy=removal_policy(config),
    )


def identity_settings(config: DeploymentConfig, data: Data) -> dict[str, Any]:
    """``IdentitySettings`` fields the authorizer and the serve app both get (credential checks)."""
    return {
        "tokens_table": data.tokens_table.table_name,
        "management_key_secret_arn": data.management_key.secret_arn,
        "admin_group": config.adminGroup,
        "management_key_previous_ttl_seconds": config.managementKey.previousVersionValidHours * 3600,
        "oidc_issuer": config.oidc.issuer,
        "oidc_client_id": config.oidc.clientId,
        "oidc_username_claim": config.oidc.usernameClaim,
        "oidc_groups_claim": config.oidc.groupsClaim,
        "oidc_groups_string": config.oidc.groupsClaimString,
    }


def model_settings(config: DeploymentConfig, data: Data) -> dict[str, Any]:
    """``ModelsTableSettings`` and ``ModelSecretSettings`` fields: the admin API, the workflow steps
    and the cost-control evaluator read models and their secrets."""
    return {"models_table": data.models_table.table_name, "model_secret_prefix": config.model_secret_prefix}


def workflow_poll_settings(config: DeploymentConfig) -> dict[str, int]:
    """``WorkflowPollSettings`` fields of the functions that start workflows (the admin API and the
    cost-control evaluator)."""
    return {
        "workflow_poll_seconds": config.workflow.pollSeconds,
        "workflow_max_polls": config.workflow.maxPolls,
    }


def model_secrets_arn(stack: cdk.Stack, config: DeploymentConfig) -> str:
    """Every secret named under the deployment's model secret prefix."""
    return stack.format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=f"{config.model_secret_prefix}*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
