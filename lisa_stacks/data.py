"""State: the models and tokens tables and the management key (with rotation)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from lisa_contracts.names import (
    MODELS_TABLE_KEY,
    TOKEN_INDEXES,
    TOKENS_TABLE_EXPIRY_ATTRIBUTE,
    TOKENS_TABLE_KEY,
)
from lisa_contracts.settings import KeyRotationSettings
from lisa_stacks.common import removal_policy
from lisa_stacks.config import DeploymentConfig
from lisa_stacks.lambda_code import LisaFunction

#: What lisa_domain.registry and lisa_domain.tokens call (registry writes are TransactWriteItems of
#: Put/Update/Delete, which IAM authorizes per item); tests/infra/test_lambda_permissions.py checks it.
MODELS_READ = ("dynamodb:GetItem", "dynamodb:Scan")
MODELS_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
TOKENS_READ = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan")
TOKENS_WRITE = ("dynamodb:PutItem", "dynamodb:DeleteItem")


class Data(Construct):
    key: kms.IKey | None
    models_table: dynamodb.Table
    tokens_table: dynamodb.Table
    management_key: secretsmanager.Secret

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, code: cdk.aws_lambda.Code
    ) -> None:
        super().__init__(scope, construct_id)
        removal = removal_policy(config)
        self.key = None
        if config.encryption == "customer-managed":
            self.key = kms.Key(
                self,
                "Key",
                description=f"LISA {config.prefix}: tables and management key",
                enable_key_rotation=True,
                removal_policy=removal,
            )
        table_encryption = (
            dynamodb.TableEncryption.CUSTOMER_MANAGED
            if self.key is not None
            else dynamodb.TableEncryption.AWS_MANAGED
        )
        self.models_table = self._table("ModelsTable", MODELS_TABLE_KEY, table_encryption, removal, config)
        self.tokens_table = self._table(
            "TokensTable",
            TOKENS_TABLE_KEY,
            table_encryption,
            removal,
            config,
            expiry_attribute=TOKENS_TABLE_EXPIRY_ATTRIBUTE,
        )
        for index_name, key in TOKEN_INDEXES.items():
            self.tokens_table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        self.management_key = secretsmanager.Secret(
            self,
            "ManagementKey",
            secret_name=config.management_key_secret_name,
            description=f"LISA {config.prefix} management key (admin credential for the APIs)",
            encryption_key=self.key,
            removal_policy=removal,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True, include_space=False
            ),
        )
        self.rotation = LisaFunction(
            self,
            "KeyRotation",
            config=config,
            code=code,
            handler="key_rotation.handler.lambda_handler",
            description=f"LISA {config.prefix}: rotates the management key",
            settings=KeyRotationSettings,
            environment={},
        )
        self.management_key.add_rotation_schedule(
            "Rotation",
            rotation_lambda=self.rotation.function,
            automatically_after=cdk.Duration.days(config.managementKeyRotationDays),
        )

    def _table(
        self,
        construct_id: str,
        partition_key: str,
        encryption: dynamodb.TableEncryption,
        removal: cdk.RemovalPolicy,
        config: DeploymentConfig,
        expiry_attribute: str | None = None,
    ) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            construct_id,
            partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=encryption,
            encryption_key=self.key,
            removal_policy=removal,
            deletion_protection=config.removalPolicy == "retain",
            # Expired items are purged by DynamoDB (within days; the authorizer checks expiry itself).
            time_to_live_attribute=expiry_attribute,
        )

    def grant_tokens(self, role: iam.IRole, *, write: bool) -> None:
        """Tokens table access naming both indexes (no ``index/*`` wildcard)."""
        table = self.tokens_table
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[*TOKENS_READ, *(TOKENS_WRITE if write else ())],
                resources=[
                    table.table_arn,
                    *(f"{table.table_arn}/index/{name}" for name in TOKEN_INDEXES),
                ],
            )
        )
        self.grant_key(role, write=write)

    def grant_models(self, role: iam.IRole, *, write: bool) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[*MODELS_READ, *(MODELS_WRITE if write else ())],
                resources=[self.models_table.table_arn],
            )
        )
        self.grant_key(role, write=write)

    def grant_management_key_read(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[self.management_key.secret_arn],
            )
        )
        self.grant_key(role, write=False)

    def grant_key(self, role: iam.IRole, *, write: bool) -> None:
        """KMS use through the role's own policy only (the key policy trusts the account's IAM).

        Never edits the key policy, so roles in other stacks (serve) create no dependency cycle.
        """
        if self.key is None:
            return
        actions = ["kms:Decrypt", "kms:DescribeKey"]
        if write:
            actions += ["kms:Encrypt", "kms:GenerateDataKey"]
        role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=[self.key.key_arn]))
