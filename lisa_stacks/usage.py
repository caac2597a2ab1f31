"""Usage: the usage table (core stack) and the usage dashboard (serve stack).

The table holds the serve replicas' metered aggregates, flush markers, rate-limit windows and
budget counters (``lisa_domain.usage``): encrypted like the other tables, point-in-time recovery,
retained, ``expiresAt`` as TTL (flush markers and rate-limit windows only; usage aggregates and
budget counters have none). The dashboard reads the serve app's EMF metrics (namespace ``LISA``,
dimension ``model``) and the serve service's CPU.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from lisa_contracts.names import (
    METRICS_NAMESPACE,
    USAGE_TABLE_EXPIRY_ATTRIBUTE,
    USAGE_TABLE_PARTITION_KEY,
    USAGE_TABLE_SORT_KEY,
)
from lisa_stacks.common import removal_policy
from lisa_stacks.config import DeploymentConfig
from lisa_stacks.data import Data

#: What lisa_domain.usage calls: the serve task flushes (TransactWriteItems of UpdateItems, which IAM
#: authorizes per item), leases (UpdateItem, GetItem) and reads budgets (BatchGetItem); the admin API
#: reads (Query). tests/infra/test_lambda_permissions.py checks the admin API's part.
SERVE_ACTIONS = ("dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:BatchGetItem")
ADMIN_READ_ACTIONS = ("dynamodb:Query",)
#: The metrics the serve app prints at each flush (serve.metering).
TRAFFIC_METRICS = ("Requests", "Errors")
TOKEN_METRICS = ("PromptTokens", "CompletionTokens")


def usage_limits_env(config: DeploymentConfig) -> dict[str, str]:
    """``usage_limits`` for the serve app's and the admin API's settings (nothing when none)."""
    limits = config.usageLimits
    return {"usage_limits": limits.model_dump_json(exclude_none=True)} if limits.configured else {}


class UsageTable(Construct):
    table: dynamodb.Table

    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig, data: Data) -> None:
        super().__init__(scope, construct_id)
        self._data = data
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=USAGE_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=USAGE_TABLE_SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=(
                dynamodb.TableEncryption.CUSTOMER_MANAGED
                if data.key is not None
                else dynamodb.TableEncryption.AWS_MANAGED
            ),
            encryption_key=data.key,
            removal_policy=removal_policy(config),
            deletion_protection=config.removalPolicy == "retain",
            time_to_live_attribute=USAGE_TABLE_EXPIRY_ATTRIBUTE,
        )

    def grant_serve(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(SERVE_ACTIONS), resources=[self.table.table_arn])
        )
        self._data.grant_key(role, write=True)

    def grant_read(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(ADMIN_READ_ACTIONS), resources=[self.table.table_arn])
        )
        self._data.grant_key(role, write=False)


def _per_model(metric: str, statistic: str, label: str) -> cloudwatch.MathExpression:
    """One line per model (a metric-insights search over the ``model`` dimension)."""
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{METRICS_NAMESPACE},model}} MetricName=\"{metric}\"', '{statistic}', 60)",
        label=label,
        period=cdk.Duration.minutes(1),
    )


class UsageDashboard(Construct):
    """Per-model traffic, tokens, errors, p50/p99 latency, and the serve service's CPU."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, service: ecs.FargateService
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{config.prefix}-usage", default_interval=cdk.Duration.hours(3)
        )
        width = 12
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Requests per model (per minute)",
                left=[_per_model("Requests", "Sum", "requests")],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="Errors per model (status >= 400, per minute)",
                left=[_per_model("Errors", "Sum", "errors")],
                width=width,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Tokens per model (per minute)",
                left=[_per_model(name, "Sum", name) for name in TOKEN_METRICS],
                width=width,
            ),
            cloudwatch.GraphWidget(
                title="Latency per model (ms): p50 and p99",
                left=[_per_model("Latency", "p50", "p50"), _per_model("Latency", "p99", "p99")],
                width=width,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Serve CPU (%)",
                left=[
                    service.metric_cpu_utilization(statistic="Average"),
                    service.metric_cpu_utilization(statistic="Maximum"),
                ],
                width=width,
            )
        )
