"""The synthesized per-model template, created in moto's CloudFormation with realistic parameters."""

from __future__ import annotations

from typing import Any

import boto3

from lisa_domain.schema import CreateModelRequest, ModelRecord, ModelStatus
from tests.integration.conftest import VLLM_MODEL, create_network, upload_template
from workflow_steps.hosting.ecs import EcsSettings, stack_parameters
from workflow_steps.hosting.task_definition import task_definition_request


def _resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def test_template_has_what_a_gpu_model_needs(model_template: dict[str, Any]) -> None:
    (launch_template,) = _resources(model_template, "AWS::EC2::LaunchTemplate")
    data = launch_template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert all(mapping["Ebs"]["Encrypted"] for mapping in data["BlockDeviceMappings"])
    assert "gpu" in model_template["Parameters"]["ImageId"]["Default"]
    (service,) = _resources(model_template, "AWS::ECS::Service")
    breaker = service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
    assert breaker == {"Enable": True, "Rollback": True}
    (balancer,) = _resources(model_template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Properties"]["Scheme"] == "internal"
    assert set(model_template["Outputs"]) >= {
        "EndpointUrl",
        "ClusterName",
        "ServiceName",
        "AutoScalingGroupName",
        "TargetGroupArn",
        "LoadBalancerArn",
    }


def test_template_creates_in_moto_with_the_workflows_parameters(
    aws: None, model_template: dict[str, Any]
) -> None:
    vpc_id, subnets = create_network()
    serve_group = boto3.client("ec2").create_security_group(
        GroupName="serve", Description="serve tasks", VpcId=vpc_id
    )["GroupId"]
    settings = EcsSettings(
        template_url=upload_template(model_template),
        stack_prefix="lisa-prod-model-",
        vpc_id=vpc_id,
        subnet_ids=",".join(subnets),
        serve_security_group_id=serve_group,
        execution_role_arn="arn:aws:iam::123456789012:role/exec",
        task_role_arn="arn:aws:iam::123456789012:role/task",
    )
    model = ModelRecord.model_validate(
        CreateModelRequest.model_validate(VLLM_MODEL).definition().model_dump()
        | {"status": ModelStatus.CREATING, "createdAt": 0, "updatedAt": 0}
    )
    ecs = boto3.client("ecs")
    arn = ecs.register_task_definition(
        **task_definition_request(
            model,
            family="lisa-prod-model-mistral-7b",
            execution_role_arn="arn:aws:iam::123456789012:role/exec",
            task_role_arn="arn:aws:iam::123456789012:role/task",
        )
    )["taskDefinition"]["taskDefinitionArn"]
    cfn = boto3.client("cloudformation")
    cfn.create_stack(
        StackName="lisa-prod-model-mistral-7b",
        TemplateURL=settings.template_url,
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in stack_parameters(model, settings, arn).items()
        ],
        Capabilities=["CAPABILITY_IAM"],
    )

    (stack,) = cfn.describe_stacks(StackName="lisa-prod-model-mistral-7b")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["EndpointUrl"].startswith("http://") and outputs["EndpointUrl"].endswith(
        ".elb.amazonaws.com"
    )

    (service,) = ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])[
        "services"
    ]
    assert service["taskDefinition"] == arn and service["desiredCount"] == 1
    (group,) = boto3.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[outputs["AutoScalingGroupName"]]
    )["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 3, 1)
    elbv2 = boto3.client("elbv2")
    (balancer,) = elbv2.describe_load_balancers(LoadBalancerArns=[outputs["LoadBalancerArn"]])[
        "LoadBalancers"
    ]
    assert balancer["Scheme"] == "internal" and balancer["VpcId"] == vpc_id
    groups = boto3.client("ec2").describe_security_groups(GroupIds=balancer["SecurityGroups"])[
        "SecurityGroups"
    ]
    sources = {
        pair["GroupId"]
        for group in groups
        for rule in group["IpPermissions"]
        for pair in rule["UserIdGroupPairs"]
    }
    ranges = [r for group in groups for rule in group["IpPermissions"] for r in rule["IpRanges"]]
    assert sources == {serve_group} and not ranges  # only the serve tasks reach a model
    (target_group,) = elbv2.describe_target_groups(TargetGroupArns=[outputs["TargetGroupArn"]])[
        "TargetGroups"
    ]
    assert target_group["HealthCheckPath"] == "/health" and target_group["UnhealthyThresholdCount"] == 5
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=outputs["LoadBalancerArn"])["Listeners"]
    assert listener["DefaultActions"][0]["TargetGroupArn"] == outputs["TargetGroupArn"]
