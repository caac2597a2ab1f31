"""The deployment's stacks: core (network, data, admin API, workflows) and serve."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from lisa_contracts.settings import AdminApiSettings, AuthorizerSettings
from lisa_stacks.admin_api import AdminApi
from lisa_stacks.common import identity_settings, model_secrets_arn, model_settings, workflow_poll_settings
from lisa_stacks.config import DeploymentConfig
from lisa_stacks.console import ConsoleConfigFile, ConsoleStack
from lisa_stacks.data import Data
from lisa_stacks.lambda_code import LisaFunction, lambda_code
from lisa_stacks.nag import acknowledge_wildcards, nag_arn
from lisa_stacks.network import Network
from lisa_stacks.scheduler import CostControl
from lisa_stacks.serve import Serve
from lisa_stacks.usage import UsageDashboard, UsageTable, usage_limits_env
from lisa_stacks.workflows import Workflows


class CoreStack(cdk.Stack):
    """Network, tables and management key, the model workflows and the admin API."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        model_template_path: Path,
        console_origin: str,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"LISA {config.prefix}: network, data, admin API, workflows",
        )
        code = lambda_code()
        self.network = Network(self, "Network", config=config)
        self.data = Data(self, "Data", config=config, code=code)
        self.usage = UsageTable(self, "Usage", config=config, data=self.data)
        model_template = s3_assets.Asset(self, "ModelStackTemplate", path=str(model_template_path))
        self.workflows = Workflows(
            self,
            "Workflows",
            config=config,
            code=code,
            data=self.data,
            network=self.network,
            model_template=model_template,
        )
        self.authorizer_function = LisaFunction(
            self,
            "Authorizer",
            config=config,
            code=code,
            handler="authorizer.handler.lambda_handler",
            description=f"LISA {config.prefix}: admin API authorizer",
            timeout_seconds=10,
            settings=AuthorizerSettings,
            environment=identity_settings(config, self.data),
        )
        self.data.grant_tokens(self.authorizer_function.role, write=False)
        self.data.grant_management_key_read(self.authorizer_function.role)

        machines = self.workflows.state_machines
        self.admin_function = LisaFunction(
            self,
            "AdminApiHandler",
            config=config,
            code=code,
            handler="admin_api.handler.lambda_handler",
            description=f"LISA {config.prefix}: admin API",
            settings=AdminApiSettings,
            wildcard_reason="EC2 Describe* and Service Quotas reads (the capacity checks of model "
            "creates, starts and dry runs) do not support resource-level permissions.",
            environment={
                **model_settings(config, self.data),
                **workflow_poll_settings(config),
                "tokens_table": self.data.tokens_table.table_name,
                "admin_group": config.adminGroup,
                "api_group": config.apiGroup,
                "create_state_machine_arn": machines["create_model"].state_machine_arn,
                "update_state_machine_arn": machines["update_model"].state_machine_arn,
                "delete_state_machine_arn": machines["delete_model"].state_machine_arn,
                "token_max_lifetime_days": config.tokens.maxLifetimeDays,
                "model_url_allow_http": config.modelUrlPolicy.allowHttp,
                "model_url_allowed_cidrs": ",".join(config.modelUrlPolicy.allowedCidrs),
                "cors_origins": console_origin,
                "model_subnet_ids": cdk.Fn.join(",", self.network.private_subnets.subnet_ids),
                "usage_table": self.usage.table.table_name,
                **usage_limits_env(config),
            },
        )
        self.usage.grant_read(self.admin_function.role)
        self.data.grant_models(self.admin_function.role, write=True)
        self.data.grant_tokens(self.admin_function.role, write=True)
        for machine in machines.values():
            machine.grant_start_execution(self.admin_function.role)
        self.admin_function.role.add_to_policy(
            cdk.aws_iam.PolicyStatement(
                # The capacity checks of creates, starts and dry runs (lisa_domain/capacity.py).
                actions=[
                    "ec2:DescribeSubnets",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeInstances",
                    "servicequotas:GetServiceQuota",
                    "servicequotas:GetAWSDefaultServiceQuota",
                ],
                resources=["*"],
            )
        )
        self.admin_function.role.add_to_policy(
            cdk.aws_iam.PolicyStatement(
                # TagResource: CreateSecret with Tags needs it too.
                actions=[
                    "secretsmanager:CreateSecret",
                    "secretsmanager:DeleteSecret",
                    "secretsmanager:TagResource",
                ],
                resources=[model_secrets_arn(self, config)],
            )
        )
        acknowledge_wildcards(
            self.admin_function.role,
            {
                f"Resource::{nag_arn('secretsmanager', f'secret:{config.model_secret_prefix}*')}": (
                    "Provider API keys given at model creation are stored as one secret per model, "
                    "created at run time; scoped to this deployment's model secret name prefix."
                ),
            },
        )
        self.cost_control = CostControl(
            self,
            "CostControl",
            config=config,
            code=code,
            data=self.data,
            update_workflow=machines["update_model"],
        )
        self.admin_api = AdminApi(
            self,
            "AdminApi",
            config=config,
            admin_function=self.admin_function,
            authorizer_function=self.authorizer_function,
            cors_origin=console_origin,
        )
        cdk.CfnOutput(self, "AdminApiUrl", value=self.admin_api.api.url)
        cdk.CfnOutput(self, "ModelsTableName", value=self.data.models_table.table_name)
        cdk.CfnOutput(self, "TokensTableName", value=self.data.tokens_table.table_name)
        cdk.CfnOutput(self, "UsageTableName", value=self.usage.table.table_name)
        cdk.CfnOutput(self, "ManagementKeySecretArn", value=self.data.management_key.secret_arn)


class ServeStack(cdk.Stack):
    """The user-facing OpenAI-compatible API (ALB + ECS Fargate)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        core: CoreStack,
        console: ConsoleStack,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=f"LISA {config.prefix}: serve API")
        self.serve = Serve(
            self,
            "Serve",
            config=config,
            network=core.network,
            data=core.data,
            usage=core.usage,
            cors_origin=console.origin,
        )
        ConsoleConfigFile(
            self,
            "ConsoleConfig",
            config=config,
            console=console,
            admin_api_url=core.admin_api.api.url,
            serve_url=self.serve.url,
        )
        UsageDashboard(self, "UsageDashboard", config=config, service=self.serve.service)
        cdk.CfnOutput(self, "ServeUrl", value=self.serve.url)
