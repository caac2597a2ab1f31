"""The one Lambda code asset: ``lambdas/`` plus its pinned dependencies, bundled locally without Docker."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from lisa_contracts.settings import LambdaSettings
from lisa_stacks.common import log_group
from lisa_stacks.config import REPO_ROOT, DeploymentConfig
from lisa_stacks.nag import LAMBDA_RUNTIME_REASON, XRAY_REASON, acknowledge

LAMBDAS_DIR = REPO_ROOT / "lambdas"
REQUIREMENTS = LAMBDAS_DIR / "requirements.txt"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64  # matches the manylinux x86_64 wheels below
PIP_PLATFORM = "manylinux2014_x86_64"
PIP_PYTHON_VERSION = "3.12"
#: Never part of the asset. requirements.txt stays in the source hash (so a pin change re-bundles)
#: but is not copied into the bundle.
EXCLUDED = ("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")
NOT_COPIED = (*EXCLUDED, "requirements*.txt")


@jsii.implements(cdk.ILocalBundling)
class PipLocalBundling:
    """Bundles on the host: ``pip install --platform`` the pinned deps, then copy the sources."""

    def __init__(self, source: Path = LAMBDAS_DIR, requirements: Path = REQUIREMENTS) -> None:
        self.source = source
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            output_dir,
            "--platform",
            PIP_PLATFORM,
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--python-version",
            PIP_PYTHON_VERSION,
            "-r",
            str(self.requirements),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise RuntimeError(f"bundling the Lambda dependencies failed:\n{result.stderr[-4000:]}")
        shutil.copytree(
            self.source, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_COPIED)
        )
        return True


def lambda_code() -> lambda_.Code:
    """A fresh Code object (an asset binds to one stack); identical sources share one staged asset."""
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        exclude=list(EXCLUDED),
        # Hash the sources (and requirements), not the output: an unchanged asset already in cdk.out
        # is not bundled again.
        asset_hash_type=cdk.AssetHashType.SOURCE,
        bundling=cdk.BundlingOptions(
            # Never pulled: local bundling always succeeds or raises. Docker is not needed to synthesize.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            local=PipLocalBundling(),
        ),
    )


class LisaFunction(Construct):
    """A Lambda on the shared asset with its own role, log group (retention from config) and tracing.

    The role gets only log-writing on its own log group; callers add what the function needs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        code: lambda_.Code,
        handler: str,
        description: str,
        settings: type[LambdaSettings],
        environment: Mapping[str, Any],
        timeout_seconds: int = 30,
        memory_size: int = 512,
        wildcard_reason: str = "",
        network: tuple[ec2.IVpc, ec2.SubnetSelection, ec2.ISecurityGroup] | None = None,
    ) -> None:
        """``network``: run in the VPC (subnets, one security group), for a function that must reach
        private endpoints."""
        super().__init__(scope, construct_id)
        self.log_group = log_group(self, "Logs", config)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (Lambda execution role)",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=handler,
            description=description,
            role=self.role,
            log_group=self.log_group,
            timeout=cdk.Duration.seconds(timeout_seconds),
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            environment=settings.build(powertools_service_name=construct_id, **environment).to_env(),
            vpc=network[0] if network else None,
            vpc_subnets=network[1] if network else None,
            security_groups=[network[2]] if network else None,
        )
        if network:
            acknowledge(
                self.role,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaVPCAccessExecutionRole]",
                "A Lambda in a VPC needs the AWS managed policy that lets it create and delete its "
                "network interfaces; CDK attaches it.",
            )
        acknowledge(self.function, "AwsSolutions-L1", LAMBDA_RUNTIME_REASON)
        acknowledge(self.role, "AwsSolutions-IAM5[Resource::*]", f"{XRAY_REASON} {wildcard_reason}".strip())
