"""Can a self-hosted model run where it would be created? Read-only EC2 and Service Quotas checks.

What most often breaks a model's stack late (after CloudFormation has run for minutes): its
instance type is not offered in the model subnets' Availability Zones, or the account's On-Demand
vCPU quota for the type's family cannot hold the autoscaling maximum. ``CapacityChecker`` answers
both before anything is created; the admin API's dry run and the deployment preflight use it.

The quota headroom is the quota minus the vCPUs of the running (or pending) On-Demand instances
of the same quota class; spot instances have their own quotas and are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class VcpuQuota:
    code: str
    name: str


_G_AND_VT = VcpuQuota("L-DB2E81BA", "Running On-Demand G and VT instances")
#: On-Demand vCPU quotas of EC2 (Service Quotas, service ``ec2``) by the letters that start the
#: instance family (``g5`` -> ``g``, ``p4d`` -> ``p``, ``inf2`` -> ``inf``). Families not listed
#: count against the Standard quota.
QUOTAS_BY_FAMILY_LETTERS: dict[str, VcpuQuota] = {
    "g": _G_AND_VT,
    "gr": _G_AND_VT,
    "vt": _G_AND_VT,
    "p": VcpuQuota("L-417A185B", "Running On-Demand P instances"),
    "inf": VcpuQuota("L-1945791B", "Running On-Demand Inf instances"),
    "trn": VcpuQuota("L-2C3B7624", "Running On-Demand Trn instances"),
    "dl": VcpuQuota("L-6E869C2A", "Running On-Demand DL instances"),
    "f": VcpuQuota("L-74FC7D96", "Running On-Demand F instances"),
    "x": VcpuQuota("L-7295265B", "Running On-Demand X instances"),
}
STANDARD_QUOTA = VcpuQuota("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")


def vcpu_quota(instance_type: str) -> VcpuQuota:
    letters = re.sub(r"[^a-z].*$", "", instance_type.split(".", 1)[0])
    return QUOTAS_BY_FAMILY_LETTERS.get(letters, STANDARD_QUOTA)


class QuotaSource(Protocol):
    """The applied value of an EC2 Service Quota (the seam for tests: recorded answers)."""

    def value(self, quota_code: str) -> float: ...


class ServiceQuotas:
    """``service-quotas``: the account's applied value, else the AWS default (never changed)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def value(self, quota_code: str) -> float:
        try:
            answer = self.client.get_service_quota(ServiceCode="ec2", QuotaCode=quota_code)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchResourceException":
                raise
            answer = self.client.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=quota_code)
        return float(answer["Quota"]["Value"])


@dataclass(frozen=True)
class Finding:
    """One problem: ``field`` is what to change (a config or request field), ``message`` says why."""

    field: str
    message: str
    #: False for a finding that does not stop a create (the type is offered in some of the zones).
    blocking: bool = True

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class CapacityChecker:
    """Instance type offerings in the subnets' zones and On-Demand vCPU quota headroom."""

    def __init__(self, ec2: Any, quotas: QuotaSource) -> None:
        self.ec2 = ec2
        self.quotas = quotas
        self._vcpus: dict[str, int] = {}

    def subnet_zones(self, subnet_ids: list[str]) -> dict[str, str]:
        """``{subnet id: Availability Zone}``; a ClientError (``InvalidSubnetID.NotFound``) when one is missing."""
        answer = self.ec2.describe_subnets(SubnetIds=subnet_ids)
        return {subnet["SubnetId"]: subnet["AvailabilityZone"] for subnet in answer["Subnets"]}

    def zones_offering(self, instance_type: str, zones: list[str]) -> set[str]:
        paginator = self.ec2.get_paginator("describe_instance_type_offerings")
        offered: set[str] = set()
        for page in paginator.paginate(
            LocationType="availability-zone",
            Filters=[
                {"Name": "instance-type", "Values": [instance_type]},
                {"Name": "location", "Values": zones},
            ],
        ):
            offered |= {offering["Location"] for offering in page["InstanceTypeOfferings"]}
        return offered

    def vcpus(self, instance_type: str) -> int:
        """The type's vCPUs (what the vCPU quotas count), asked once per type."""
        if instance_type not in self._vcpus:
            answer = self.ec2.describe_instance_types(InstanceTypes=[instance_type])
            self._vcpus[instance_type] = int(answer["InstanceTypes"][0]["VCpuInfo"]["DefaultVCpus"])
        return self._vcpus[instance_type]

    def running_vcpus(self, quota: VcpuQuota) -> int:
        """vCPUs of the running and pending On-Demand instances counted against ``quota``."""
        paginator = self.ec2.get_paginator("describe_instances")
        total = 0
        for page in paginator.paginate(
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}]
        ):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    if instance.get("InstanceLifecycle") == "spot":
                        continue
                    if vcpu_quota(instance["InstanceType"]) != quota:
                        continue
                    total += self.vcpus(instance["InstanceType"])
        return total

    def check(
        self,
        instance_type: str,
        max_capacity: int,
        zones: list[str],
        *,
        type_field: str = "instanceType",
        capacity_field: str = "autoScalingConfig.maxCapacity",
    ) -> list[Finding]:
        """Findings for running up to ``max_capacity`` instances of ``instance_type`` in ``zones``."""
        findings = []
        offered = self.zones_offering(instance_type, zones)
        if not offered:
            findings.append(
                Finding(
                    type_field,
                    f"{instance_type} is not offered in the model subnets' zones ({', '.join(sorted(zones))}); "
                    "choose an instance type offered there or use subnets in zones that offer it",
                )
            )
            return findings
        missing = sorted(set(zones) - offered)
        if missing:
            findings.append(
                Finding(
                    type_field,
                    f"{instance_type} is not offered in {', '.join(missing)} (only in "
                    f"{', '.join(sorted(offered))}): instances launch only there",
                    blocking=False,
                )
            )
        quota = vcpu_quota(instance_type)
        per_instance = self.vcpus(instance_type)
        needed = per_instance * max_capacity
        limit = int(self.quotas.value(quota.code))
        used = self.running_vcpus(quota)
        if needed > limit - used:
            findings.append(
                Finding(
                    capacity_field,
                    f"{max_capacity} x {instance_type} need {needed} vCPUs, but the quota "
                    f"'{quota.name}' ({quota.code}) is {limit} vCPUs with {used} in use; request an "
                    "increase in Service Quotas or lower the maximum",
                )
            )
        return findings


class SubnetCapacity:
    """``CapacityChecker`` bound to the subnets self-hosted models run in (zones looked up once)."""

    def __init__(self, checker: CapacityChecker, subnet_ids: list[str]) -> None:
        self.checker = checker
        self.subnet_ids = subnet_ids
        self._zones: list[str] | None = None

    def check(self, instance_type: str, max_capacity: int, capacity_field: str) -> list[Finding]:
        if self._zones is None:
            self._zones = sorted(set(self.checker.subnet_zones(self.subnet_ids).values()))
        return self.checker.check(instance_type, max_capacity, self._zones, capacity_field=capacity_field)
