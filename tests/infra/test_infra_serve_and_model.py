"""Serve stack and the per-model stack."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template

from lisa_contracts.names import MODEL_STACK_OUTPUTS, MODEL_STACK_PARAMETERS


def test_serve_runs_at_least_two_fargate_tasks(serve: Template) -> None:
    services = serve.find_resources("AWS::ECS::Service")
    assert len(services) == 1
    (service,) = services.values()
    props = service["Properties"]
    assert props["LaunchType"] == "FARGATE"
    assert props["DesiredCount"] >= 2
    assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    serve.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": Match.any_value()}
    )
    (target,) = serve.find_resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MinCapacity"] >= 2


def test_serve_container(serve: Template) -> None:
    (task,) = serve.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    assert container["PortMappings"][0]["ContainerPort"] == 8080
    names = {e["Name"] for e in container["Environment"]}
    assert {
        "MODELS_TABLE_NAME",
        "TOKENS_TABLE_NAME",
        "MANAGEMENT_KEY_SECRET_ARN",
        "ADMIN_GROUP",
        "OIDC_ISSUER",
        "OIDC_CLIENT_ID",
        "LITELLM_LOCAL_MODEL_COST_MAP",
    } <= names
    serve.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup", {"HealthCheckPath": "/health", "Port": 8080}
    )


def test_serve_load_balancer_logs_access(serve: Template) -> None:
    serve.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internet-facing",
            "LoadBalancerAttributes": Match.array_with([{"Key": "access_logs.s3.enabled", "Value": "true"}]),
        },
    )


def test_serve_task_role_is_narrow(serve: Template) -> None:
    actions: set[str] = set()
    for policy in serve.find_resources("AWS::IAM::Policy").values():
        if "TaskRole" not in str(policy["Properties"]["Roles"]):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            value = statement["Action"]
            if value == "dynamodb:UpdateItem" and "dynamodb:Attributes" in str(statement.get("Condition")):
                continue  # cost control's two attributes only: tests/infra/test_cost_control_stack.py
            if "UsageTable" in str(statement["Resource"]):
                continue  # metering, leases, budgets: tests/infra/test_usage_stack.py
            actions.update([value] if isinstance(value, str) else value)
    assert actions
    assert {a.split(":")[0] for a in actions} <= {"dynamodb", "secretsmanager", "bedrock", "kms"}
    assert not any(
        a.startswith("dynamodb:") and a.endswith(("PutItem", "UpdateItem", "DeleteItem")) for a in actions
    )


def test_model_stack_parameters_and_outputs(model: Template) -> None:
    template = model.to_json()
    params = template["Parameters"]
    assert set(MODEL_STACK_PARAMETERS) <= set(params)
    assert set(params) - set(MODEL_STACK_PARAMETERS) == {"ImageId"}
    assert params["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert params["ContainerPort"] == Match.object_like({"Type": "Number", "Default": 8080}) or (
        params["ContainerPort"]["Type"] == "Number" and params["ContainerPort"]["Default"] == 8080
    )
    assert params["ScalingMetric"]["AllowedValues"] == ["RequestCountPerTarget", "TargetResponseTime"]
    assert params["ImageId"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert (
        params["ImageId"]["Default"]
        == "/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id"
    )
    assert set(template["Outputs"]) == set(MODEL_STACK_OUTPUTS)
    assert "Rules" not in template  # no CDK bootstrap check: the workflow creates it with CreateStack


def test_model_stack_launch_template_requires_imdsv2_and_encrypts(model: Template) -> None:
    (lt,) = model.find_resources("AWS::EC2::LaunchTemplate").values()
    data = lt["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"] == {
        "VolumeSize": {"Ref": "BlockDeviceVolumeSize"},
        "VolumeType": "gp3",
        "Encrypted": True,
        "DeleteOnTermination": True,
    }


def test_model_stack_service_and_load_balancer(model: Template) -> None:
    model.has_resource_properties(
        "AWS::ECS::Service",
        {
            "LaunchType": "EC2",
            "TaskDefinition": {"Ref": "TaskDefinitionArn"},
            "DesiredCount": {"Ref": "DesiredCapacity"},
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            ),
            "LoadBalancers": [
                Match.object_like({"ContainerName": "model", "ContainerPort": {"Ref": "ContainerPort"}})
            ],
        },
    )
    model.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"})
    model.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )
    model.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like({"SourceSecurityGroupId": {"Ref": "ServeSecurityGroupId"}, "FromPort": 80})
            ]
        },
    )
    model.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 1)
    model.resource_count_is("AWS::AutoScaling::ScalingPolicy", 1)
