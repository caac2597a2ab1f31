"""Deployment preflight: read-only checks of the account against the deployment config (and the
models the operator intends to create), before ``make deploy`` or ``lisa apply``.

Every check answers a ``CheckResult``; every finding names what to change (a config field, a
models-file entry, or the account) and why. Nothing here writes: the AWS calls are ``Get*``,
``Describe*`` and ``List*`` only (docs/operations.md lists them for a least-privilege role).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from lisa_domain.capacity import CapacityChecker, Finding, QuotaSource, ServiceQuotas
from lisa_domain.litellm_params import is_bedrock
from lisa_domain.schema import ModelDefinition
from lisa_stacks.config import DeploymentConfig

#: The bootstrap version the pinned aws-cdk-lib's templates require (their ``CheckBootstrapVersion``
#: rule rejects 1-5; the stack's ``BootstrapVersion`` parameter reads this SSM parameter).
MIN_BOOTSTRAP_VERSION = 6
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"


@dataclass
class CheckResult:
    name: str
    #: What was found when the check passed ("account 123456789012 in us-east-1").
    detail: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No blocking finding (a type offered in only some zones is reported, not failed)."""
        return not any(finding.blocking for finding in self.findings)


class BedrockAccess(Protocol):
    """Whether this account may invoke a Bedrock model (the seam for tests: recorded answers)."""

    def problem(self, model_id: str) -> str | None: ...


class BedrockAvailability:
    """``bedrock:GetFoundationModelAvailability``: region, entitlement, agreement, authorization."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def problem(self, model_id: str) -> str | None:
        try:
            answer = self.client.get_foundation_model_availability(modelId=model_id)
        except ClientError as error:
            info = error.response.get("Error", {})
            return f"{info.get('Code')}: {info.get('Message')}"
        problems = [
            name
            for name, key, good in (
                ("not available in this region", "regionAvailability", "AVAILABLE"),
                (
                    "access not granted (Bedrock console: Model access)",
                    "entitlementAvailability",
                    "AVAILABLE",
                ),
                ("not authorized for this account", "authorizationStatus", "AUTHORIZED"),
            )
            if answer.get(key) != good
        ]
        agreement = (answer.get("agreementAvailability") or {}).get("status")
        if agreement not in (None, "AVAILABLE"):
            problems.append(f"the model's agreement is {agreement}")
        return "; ".join(problems) or None


def _failed(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{error.operation_name} failed: {info.get('Code')}: {info.get('Message')}"
    return f"{type(error).__name__}: {error}"


def check_account(sts: Any, region: str) -> CheckResult:
    result = CheckResult("credentials")
    try:
        result.detail = f"account {sts.get_caller_identity()['Account']} in {region}"
    except (ClientError, BotoCoreError) as error:
        result.findings.append(Finding("(credentials)", f"no usable AWS credentials: {_failed(error)}"))
    return result


def check_bootstrap(ssm: Any) -> CheckResult:
    result = CheckResult("CDK bootstrap")
    try:
        version = int(ssm.get_parameter(Name=BOOTSTRAP_VERSION_PARAMETER)["Parameter"]["Value"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
            result.findings.append(Finding("(account)", _failed(error)))
            return result
        result.findings.append(
            Finding("(account)", "the account and region are not bootstrapped: run make bootstrap")
        )
        return result
    if version < MIN_BOOTSTRAP_VERSION:
        result.findings.append(
            Finding(
                "(account)",
                f"bootstrap version {version} is older than {MIN_BOOTSTRAP_VERSION}: run make bootstrap",
            )
        )
    result.detail = f"version {version}"
    return result


def model_zones(config: DeploymentConfig, ec2: Any, result: CheckResult) -> list[str]:
    """The zones of the subnets models run in (the private subnets), checking the VPC on the way."""
    imported = config.vpc.import_
    if imported is None:
        assert config.vpc.create is not None
        available = sorted(
            zone["ZoneName"]
            for zone in ec2.describe_availability_zones(
                Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
            )["AvailabilityZones"]
            if zone.get("State") == "available"
        )
        wanted = config.vpc.create.maxAzs
        if len(available) < wanted:
            result.findings.append(
                Finding("vpc.create.maxAzs", f"the region has {len(available)} available zones, not {wanted}")
            )
        result.detail = f"a new VPC in {', '.join(available[:wanted])}"
        return available[:wanted]
    try:
        vpcs = ec2.describe_vpcs(VpcIds=[imported.vpcId])["Vpcs"]
    except ClientError as error:
        result.findings.append(Finding("vpc.import.vpcId", f"{imported.vpcId} not found: {_failed(error)}"))
        return []
    if vpcs and vpcs[0].get("CidrBlock") != imported.vpcCidr:
        result.findings.append(
            Finding(
                "vpc.import.vpcCidr",
                f"{imported.vpcId} has CIDR {vpcs[0].get('CidrBlock')}, not {imported.vpcCidr}",
            )
        )
    zones: list[str] = []
    for field_name in ("privateSubnetIds", "publicSubnetIds"):
        subnet_ids: list[str] = getattr(imported, field_name)
        try:
            subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
        except ClientError as error:
            result.findings.append(Finding(f"vpc.import.{field_name}", _failed(error)))
            continue
        for subnet in subnets:
            if subnet["VpcId"] != imported.vpcId:
                result.findings.append(
                    Finding(
                        f"vpc.import.{field_name}",
                        f"{subnet['SubnetId']} is in {subnet['VpcId']}, not {imported.vpcId}",
                    )
                )
        found = sorted({subnet["AvailabilityZone"] for subnet in subnets})
        if found != sorted(imported.availabilityZones):
            result.findings.append(
                Finding(
                    f"vpc.import.{field_name}",
                    f"the subnets are in {', '.join(found)}; vpc.import.availabilityZones says "
                    f"{', '.join(imported.availabilityZones)}",
                )
            )
        if field_name == "privateSubnetIds":
            zones = found
    result.detail = f"{imported.vpcId}, model subnets in {', '.join(zones)}"
    return zones


def check_models(
    models: list[ModelDefinition],
    zones: list[str],
    capacity: CapacityChecker,
    bedrock: BedrockAccess,
    source: str,
) -> CheckResult:
    """Each self-hosted model's instance type in the model zones and its quota; Bedrock access."""
    result = CheckResult("models")
    for model in models:
        where = f"{source}[{model.modelId}]"
        try:
            if model.self_hosted and model.instanceType and model.autoScalingConfig and zones:
                result.findings += [
                    Finding(f"{where}.{finding.field}", finding.message)
                    for finding in capacity.check(
                        model.instanceType, model.autoScalingConfig.maxCapacity, zones
                    )
                ]
            elif is_bedrock(model):
                problem = bedrock.problem(model.modelName.removeprefix("bedrock/"))
                if problem:
                    result.findings.append(Finding(f"{where}.modelName", f"{model.modelName}: {problem}"))
        except (ClientError, BotoCoreError) as error:
            result.findings.append(Finding(where, _failed(error)))
    result.detail = f"{len(models)} checked"
    return result


@dataclass
class Clients:
    """What the checks call (built from a boto3 session; tests pass moto clients and recordings)."""

    sts: Any
    ssm: Any
    ec2: Any
    quotas: QuotaSource
    bedrock: BedrockAccess


def run_preflight(
    config: DeploymentConfig,
    clients: Clients,
    region: str,
    models: list[ModelDefinition],
    source: str = "models",
) -> list[CheckResult]:
    """Every check, in order; stops after the credentials check when there are none."""
    results = [check_account(clients.sts, region)]
    if not results[0].ok:
        return results
    results.append(check_bootstrap(clients.ssm))
    network = CheckResult("VPC and subnets")
    try:
        zones = model_zones(config, clients.ec2, network)
    except (ClientError, BotoCoreError) as error:
        network.findings.append(Finding("vpc", _failed(error)))
        zones = []
    results.append(network)
    if models:
        results.append(
            check_models(models, zones, CapacityChecker(clients.ec2, clients.quotas), clients.bedrock, source)
        )
    return results


def clients(session: boto3.Session) -> Clients:
    """The real clients of ``session`` (the operator's credentials and region)."""
    return Clients(
        sts=session.client("sts"),
        ssm=session.client("ssm"),
        ec2=session.client("ec2"),
        quotas=ServiceQuotas(session.client("service-quotas")),
        bedrock=BedrockAvailability(session.client("bedrock")),
    )


def report(results: list[CheckResult]) -> str:
    """One line per check, one per finding (what ``make preflight`` prints)."""
    lines = []
    for result in results:
        lines.append(
            f"{'ok  ' if result.ok else 'FAIL'} {result.name}{': ' + result.detail if result.detail else ''}"
        )
        lines += [f"     - {finding}" for finding in result.findings]
    return "\n".join(lines)
