"""Deployment preflight and the capacity checks: EC2, SSM and STS from the emulator (moto), Service
Quotas and Bedrock model access (which moto does not emulate) from recorded answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws

from lisa_domain.capacity import STANDARD_QUOTA, CapacityChecker, ServiceQuotas, vcpu_quota
from lisa_domain.schema import CreateModelRequest, ModelDefinition
from lisa_preflight.__main__ import main
from lisa_preflight.checks import (
    BOOTSTRAP_VERSION_PARAMETER,
    BedrockAvailability,
    Clients,
    run_preflight,
)
from lisa_stacks.config import EXAMPLE_CONFIG_PATH, DeploymentConfig, load_config
from tests.support import lisa_payloads as payloads

G_QUOTA = "L-DB2E81BA"


class RecordedQuotas:
    """Service Quotas answers as recorded from an account (moto does not emulate the service)."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def value(self, quota_code: str) -> float:
        return self.values[quota_code]


class RecordedBedrock:
    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        self.asked: list[str] = []

    def problem(self, model_id: str) -> str | None:
        self.asked.append(model_id)
        return self.problems.get(model_id)


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def clients(quotas: dict[str, float] | None = None, bedrock: RecordedBedrock | None = None) -> Clients:
    return Clients(
        sts=boto3.client("sts"),
        ssm=boto3.client("ssm"),
        ec2=boto3.client("ec2"),
        quotas=RecordedQuotas(quotas or {G_QUOTA: 192, STANDARD_QUOTA.code: 64}),
        bedrock=bedrock or RecordedBedrock({}),
    )


def bootstrapped(version: int = 27) -> None:
    boto3.client("ssm").put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value=str(version), Type="String")


def imported_config(
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b"), **changes: Any
) -> DeploymentConfig:
    """The example config with a VPC imported from the emulator (two private, two public subnets);
    ``changes`` override fields of ``vpc.import``."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{index}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for index, zone in enumerate(zones * 2)
    ]
    raw = yaml.safe_load(Path(EXAMPLE_CONFIG_PATH).read_text())
    raw["vpc"] = {
        "import": {
            "vpcId": vpc,
            "vpcCidr": "10.1.0.0/16",
            "availabilityZones": list(zones),
            "privateSubnetIds": subnets[: len(zones)],
            "publicSubnetIds": subnets[len(zones) :],
            **changes,
        }
    }
    return DeploymentConfig.model_validate(raw)


def model(**changes: Any) -> ModelDefinition:
    return CreateModelRequest.model_validate({**payloads.VLLM_MODEL, **changes}).definition()


def findings(results: list[Any]) -> list[str]:
    return [str(finding) for result in results for finding in result.findings]


def test_a_ready_account_passes(aws: None) -> None:
    bootstrapped()
    config = imported_config()
    results = run_preflight(config, clients(), "us-east-1", [model(instanceType="g5.2xlarge")])
    assert findings(results) == []
    assert [r.name for r in results] == ["credentials", "CDK bootstrap", "VPC and subnets", "models"]
    assert results[0].detail == "account 123456789012 in us-east-1"


def test_an_account_that_is_not_bootstrapped_or_too_old_is_told_to_run_make_bootstrap(aws: None) -> None:
    config = load_config(Path(EXAMPLE_CONFIG_PATH))
    assert findings(run_preflight(config, clients(), "us-east-1", [])) == [
        "(account): the account and region are not bootstrapped: run make bootstrap"
    ]
    bootstrapped(5)
    assert findings(run_preflight(config, clients(), "us-east-1", [])) == [
        "(account): bootstrap version 5 is older than 6: run make bootstrap"
    ]


def test_a_missing_vpc_and_subnets_in_other_zones_are_named_by_field(aws: None) -> None:
    bootstrapped()
    wrong_zones = imported_config(availabilityZones=["us-east-1c", "us-east-1d"])
    problems = findings(run_preflight(wrong_zones, clients(), "us-east-1", []))
    assert problems[0].startswith("vpc.import.privateSubnetIds: the subnets are in us-east-1a, us-east-1b;")
    missing = imported_config(vpcId="vpc-0000000000000000f")
    (problem,) = findings(run_preflight(missing, clients(), "us-east-1", []))
    assert problem.startswith("vpc.import.vpcId: vpc-0000000000000000f not found")


def test_an_instance_type_not_offered_in_the_model_zones_fails(aws: None) -> None:
    """The emulator's offerings (as AWS's): p4d.24xlarge is offered in us-east-1a-d, g5.12xlarge in
    us-east-1a-d and f, neither in us-east-1e."""
    bootstrapped()
    config = imported_config(zones=("us-east-1e", "us-east-1f"))
    where = f"models[{payloads.VLLM_MODEL['modelId']}].instanceType"
    (problem,) = findings(run_preflight(config, clients(), "us-east-1", [model(instanceType="p4d.24xlarge")]))
    assert problem == (
        f"{where}: p4d.24xlarge is not offered in the model subnets' zones (us-east-1e, us-east-1f); "
        "choose an instance type offered there or use subnets in zones that offer it"
    )
    (partly,) = findings(run_preflight(config, clients(), "us-east-1", [model(instanceType="g5.12xlarge")]))
    assert partly == (
        f"{where}: g5.12xlarge is not offered in us-east-1e (only in us-east-1f): instances launch only there"
    )


def test_a_quota_below_the_autoscaling_maximum_fails_with_the_numbers(aws: None) -> None:
    bootstrapped()
    config = imported_config()
    # The example's maxCapacity is 3; g5.12xlarge has 48 vCPUs: 144 needed.
    (problem,) = findings(
        run_preflight(config, clients({G_QUOTA: 128}), "us-east-1", [model(instanceType="g5.12xlarge")])
    )
    assert problem == (
        f"models[{payloads.VLLM_MODEL['modelId']}].autoScalingConfig.maxCapacity: 3 x g5.12xlarge need "
        "144 vCPUs, but the quota 'Running On-Demand G and VT instances' (L-DB2E81BA) is 128 vCPUs with "
        "0 in use; request an increase in Service Quotas or lower the maximum"
    )


def test_running_on_demand_instances_of_the_same_class_use_up_the_headroom(aws: None) -> None:
    ec2 = boto3.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, InstanceType="g5.12xlarge", MinCount=1, MaxCount=1)
    ec2.run_instances(ImageId=image, InstanceType="m5.large", MinCount=1, MaxCount=1)  # Standard: not counted
    assert CapacityChecker(ec2, RecordedQuotas({G_QUOTA: 192})).check("g5.12xlarge", 3, ["us-east-1a"]) == []
    checker = CapacityChecker(ec2, RecordedQuotas({G_QUOTA: 160}))  # 160 - 48 < 3 x 48
    assert checker.running_vcpus(vcpu_quota("g5.2xlarge")) == 48
    (finding,) = checker.check("g5.12xlarge", 3, ["us-east-1a"])
    assert "160 vCPUs with 48 in use" in finding.message


def test_bedrock_models_without_access_are_reported(aws: None) -> None:
    bootstrapped()
    bedrock = RecordedBedrock({"anthropic.claude-3-haiku-20240307-v1:0": "access not granted"})
    models = [CreateModelRequest.model_validate(payloads.BEDROCK_MODEL).definition()]
    (problem,) = findings(run_preflight(imported_config(), clients(bedrock=bedrock), "us-east-1", models))
    assert problem.endswith(".modelName: bedrock/anthropic.claude-3-haiku-20240307-v1:0: access not granted")
    assert bedrock.asked == ["anthropic.claude-3-haiku-20240307-v1:0"]


def test_bedrock_availability_reads_every_condition() -> None:
    class Client:
        def get_foundation_model_availability(self, modelId: str) -> dict[str, Any]:
            return {
                "modelId": modelId,
                "agreementAvailability": {"status": "NOT_AVAILABLE"},
                "authorizationStatus": "AUTHORIZED",
                "entitlementAvailability": "NOT_AVAILABLE",
                "regionAvailability": "AVAILABLE",
            }

    assert BedrockAvailability(Client()).problem("m") == (
        "access not granted (Bedrock console: Model access); the model's agreement is NOT_AVAILABLE"
    )


def test_service_quotas_falls_back_to_the_default_value() -> None:
    class Client:
        def get_service_quota(self, **_: str) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "NoSuchResourceException", "Message": "none"}}, "GetServiceQuota"
            )

        def get_aws_default_service_quota(self, **_: str) -> dict[str, Any]:
            return {"Quota": {"Value": 64.0}}

    assert ServiceQuotas(Client()).value(G_QUOTA) == 64.0


@pytest.mark.parametrize(
    ("instance_type", "code"),
    [
        ("g5.12xlarge", G_QUOTA),
        ("g6e.xlarge", G_QUOTA),
        ("p4d.24xlarge", "L-417A185B"),
        ("inf2.xlarge", "L-1945791B"),
    ],
)
def test_quota_classes(instance_type: str, code: str) -> None:
    assert vcpu_quota(instance_type).code == code
    assert vcpu_quota("c7i.large") == STANDARD_QUOTA


def test_the_command_exits_non_zero_with_findings_and_two_on_a_bad_config(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(EXAMPLE_CONFIG_PATH)]) == 1  # not bootstrapped
    assert "FAIL CDK bootstrap" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("vpc: {}\n")
    assert main(["--config", str(bad)]) == 2


def test_without_a_region_the_command_says_how_to_set_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert main(["--config", str(EXAMPLE_CONFIG_PATH)]) == 1
    assert "no AWS region: set AWS_REGION" in capsys.readouterr().out
