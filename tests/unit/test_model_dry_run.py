"""Model preflight: ``?dryRun=true`` on POST and PUT /models, and the capacity checks that refuse a
self-hosted create or start at once (EC2 from moto, the vCPU quota from a recorded answer)."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest

import lisa_domain.capacity
from lisa_contracts.settings import AdminApiSettings
from lisa_domain.schema import ModelStatus
from local_mode.resources import LocalResources
from tests.support.lambda_state import configure, fresh_admin_api
from tests.support.lisa_payloads import EXTERNAL_MODEL, VLLM_MODEL
from tests.unit.conftest import Workflows
from tests.unit.test_admin_api import assert_nothing_written, call, seed, table_items

G_QUOTA = "L-DB2E81BA"
MODEL_ID = VLLM_MODEL["modelId"]


class RecordedQuotas:
    def __init__(self, values: dict[str, float]) -> None:
        self.values = values

    def value(self, quota_code: str) -> float:
        return self.values[quota_code]


@pytest.fixture
def model_subnets(
    resources: LocalResources, monkeypatch: pytest.MonkeyPatch, workflows: Workflows
) -> dict[str, float]:
    """Model subnets in us-east-1e and us-east-1f (g6.2xlarge: offered in f only, p4d.24xlarge in
    neither); the G/VT quota answers what the returned dict holds (64 vCPUs unless a test changes it)."""
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(("us-east-1e", "us-east-1f"))
    ]
    quotas: dict[str, float] = {G_QUOTA: 64}
    configure(
        monkeypatch,
        AdminApiSettings.build(models_table=resources.models_table, model_subnet_ids=",".join(subnets)),
    )
    monkeypatch.setattr(lisa_domain.capacity, "ServiceQuotas", lambda client: RecordedQuotas(quotas))
    fresh_admin_api()
    return quotas


def vllm(**changes: Any) -> dict[str, Any]:
    return copy.deepcopy(VLLM_MODEL) | changes


def test_dry_run_create_answers_the_plan_and_writes_nothing(
    resources: LocalResources, workflows: Workflows, model_subnets: dict[str, float]
) -> None:
    status, body = call("POST", "/models", body=vllm(), query={"dryRun": "true"})

    assert status == 200, body
    assert body["dryRun"] is True
    assert body["model"]["modelId"] == MODEL_ID and body["model"]["status"] == "Creating"
    assert body["wouldCreate"] == {
        "record": f"model '{MODEL_ID}' in Creating",
        "secret": False,
        "workflow": "create",
        "infrastructure": True,
    }
    assert_nothing_written(resources, workflows)


def test_dry_run_of_an_external_model_with_a_key_stores_no_secret(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, body = call("POST", "/models", body=EXTERNAL_MODEL, query={"dryRun": "true"})
    assert status == 200 and body["wouldCreate"]["secret"] is True
    assert "apiKey" not in str(body) and "sk-" not in str(body)
    assert_nothing_written(resources, workflows)


def test_dry_run_answers_what_the_create_would_answer(
    resources: LocalResources, workflows: Workflows
) -> None:
    seed(resources, MODEL_ID, body=VLLM_MODEL)
    status, body = call("POST", "/models", body=vllm(), query={"dryRun": "true"})
    assert status == 409 and "already exists" in str(body)
    status, _ = call("POST", "/models", body=vllm(instanceType="no.such"), query={"dryRun": "true"})
    assert status in (400, 422)
    assert workflows.count() == 0


def test_an_instance_type_not_offered_in_the_model_zones_is_refused_at_once(
    resources: LocalResources, workflows: Workflows, model_subnets: dict[str, float]
) -> None:
    for query in ({"dryRun": "true"}, None):
        status, body = call("POST", "/models", body=vllm(instanceType="p4d.24xlarge"), query=query)
        assert status == 400, body
        assert "instanceType: p4d.24xlarge is not offered in the model subnets' zones" in str(body)
    assert_nothing_written(resources, workflows)


def test_a_quota_below_the_autoscaling_maximum_is_refused_with_the_numbers(
    resources: LocalResources, workflows: Workflows, model_subnets: dict[str, float]
) -> None:
    model_subnets[G_QUOTA] = 16  # g6.2xlarge: 8 vCPUs; maxCapacity 3 needs 24
    status, body = call("POST", "/models", body=vllm())
    assert status == 400, body
    assert "autoScalingConfig.maxCapacity: 3 x g6.2xlarge need 24 vCPUs" in str(body)
    assert_nothing_written(resources, workflows)
    model_subnets[G_QUOTA] = 24
    status, body = call("POST", "/models", body=vllm())
    assert status == 201, body  # offered in us-east-1f only: allowed (instances launch there)


def test_put_dry_run_checks_the_transition_and_a_start_checks_the_quota(
    resources: LocalResources, workflows: Workflows, model_subnets: dict[str, float]
) -> None:
    seed(resources, MODEL_ID, ModelStatus.STOPPED, body={**VLLM_MODEL, "enabled": False})
    before = table_items(resources)

    status, body = call(
        "PUT", f"/models/{MODEL_ID}", body={"modelDescription": "x"}, query={"dryRun": "true"}
    )
    assert status == 200, body
    assert body["wouldUpdate"] == {
        "action": "update",
        "status": "Updating",
        "changes": {"modelDescription": "x"},
        "workflow": "update",
    }
    model_subnets[G_QUOTA] = 8
    status, body = call("PUT", f"/models/{MODEL_ID}", body={"enabled": True}, query={"dryRun": "true"})
    assert status == 400 and "need 24 vCPUs" in str(body)
    status, body = call("PUT", f"/models/{MODEL_ID}", body={"enabled": False}, query={"dryRun": "true"})
    assert status == 409, body  # a stop is allowed only from InService
    assert table_items(resources) == before and workflows.count() == 0
