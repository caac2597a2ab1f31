"""The per-model stack: authored once, synthesized at build time, created by the workflow per model.

Everything model-specific arrives as a CloudFormation parameter (names are a contract with the
workflow steps). The task definition is NOT part of the stack: container settings include maps
(environment, ulimits, health check) that parameters cannot carry, so the workflow registers it
(network mode ``bridge``, container ``model``, host port 0) and passes its ARN as ``TaskDefinitionArn``.
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from lisa_contracts.names import MODEL_CONTAINER_NAME
from lisa_stacks.nag import acknowledge

LISTENER_PORT = 80
GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id"
#: The ECS container agent's calls on its own cluster, and those without resource-level permissions.
#: Together they are also the permissions boundary every model stack role must carry.
INSTANCE_CLUSTER_ACTIONS = (
    "ecs:RegisterContainerInstance",
    "ecs:DeregisterContainerInstance",
    "ecs:SubmitContainerStateChange",
    "ecs:SubmitTaskStateChange",
)
INSTANCE_UNSCOPED_ACTIONS = (
    "ecs:DiscoverPollEndpoint",
    "ecs:Poll",
    "ecs:StartTelemetrySession",
    "ecs:SubmitAttachmentStateChanges",
    "ecs:UpdateContainerInstancesState",
    "ec2:DescribeTags",
)
#: Model containers download and load weights before they answer health checks.
HEALTH_CHECK_GRACE_SECONDS = 900


@jsii.implements(cdk.IAspect)
class PermissionsBoundary:
    """Sets the permissions boundary on every role of the stack (the stack role requires it)."""

    def __init__(self, policy_name: str) -> None:
        self.policy_name = policy_name

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, iam.CfnRole):
            node.permissions_boundary = cdk.Fn.sub(
                "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/" + self.policy_name
            )


class ModelHostingStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, permissions_boundary_name: str, **kwargs: object
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="LISA self-hosted model: ECS on GPU instances behind an internal ALB",
            # Created by the workflow with CreateStack, not by the CDK CLI: no bootstrap version check.
            synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
            analytics_reporting=False,
            **kwargs,  # type: ignore[arg-type]
        )
        p = self._parameters()
        cdk.Aspects.of(self).add(PermissionsBoundary(permissions_boundary_name))

        cluster = ecs.CfnCluster(
            self,
            "Cluster",
            cluster_settings=[
                ecs.CfnCluster.ClusterSettingsProperty(name="containerInsights", value="enabled")
            ],
        )

        # Security groups: the ALB admits only the serve tasks; instances only the ALB on dynamic ports.
        alb_sg = ec2.CfnSecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            group_description="LISA model load balancer: HTTP from the serve tasks only",
            vpc_id=p["VpcId"].value_as_string,
            security_group_ingress=[
                ec2.CfnSecurityGroup.IngressProperty(
                    ip_protocol="tcp",
                    from_port=LISTENER_PORT,
                    to_port=LISTENER_PORT,
                    source_security_group_id=p["ServeSecurityGroupId"].value_as_string,
                    description="HTTP from the serve tasks",
                )
            ],
        )
        instance_sg = ec2.CfnSecurityGroup(
            self,
            "InstanceSecurityGroup",
            group_description="LISA model instances: dynamic container ports from the model load balancer",
            vpc_id=p["VpcId"].value_as_string,
            security_group_ingress=[
                ec2.CfnSecurityGroup.IngressProperty(
                    ip_protocol="tcp",
                    from_port=32768,
                    to_port=65535,
                    source_security_group_id=alb_sg.attr_group_id,
                    description="Dynamic host ports (bridge network mode) from the load balancer",
                )
            ],
        )
        ec2.CfnSecurityGroupEgress(
            self,
            "LoadBalancerToInstances",
            group_id=alb_sg.attr_group_id,
            ip_protocol="tcp",
            from_port=32768,
            to_port=65535,
            destination_security_group_id=instance_sg.attr_group_id,
            description="Load balancer to the dynamic container ports",
        )

        # GPU instances joining the cluster.
        instance_role = iam.CfnRole(
            self,
            "InstanceRole",
            assume_role_policy_document={
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            policies=[
                iam.CfnRole.PolicyProperty(
                    policy_name="ecs-container-instance",
                    policy_document={
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": list(INSTANCE_CLUSTER_ACTIONS),
                                "Resource": cluster.attr_arn,
                            },
                            {
                                "Effect": "Allow",
                                "Action": list(INSTANCE_UNSCOPED_ACTIONS),
                                "Resource": "*",
                            },
                        ],
                    },
                )
            ],
        )
        instance_profile = iam.CfnInstanceProfile(self, "InstanceProfile", roles=[instance_role.ref])
        launch_template = ec2.CfnLaunchTemplate(
            self,
            "LaunchTemplate",
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                image_id=p["ImageId"].value_as_string,
                instance_type=p["InstanceType"].value_as_string,
                iam_instance_profile=ec2.CfnLaunchTemplate.IamInstanceProfileProperty(
                    arn=instance_profile.attr_arn
                ),
                security_group_ids=[instance_sg.attr_group_id],
                monitoring=ec2.CfnLaunchTemplate.MonitoringProperty(enabled=True),
                # IMDSv2 only; hop limit 1 keeps bridge-mode containers away from the instance role.
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
                ),
                block_device_mappings=[
                    ec2.CfnLaunchTemplate.BlockDeviceMappingProperty(
                        device_name="/dev/xvda",
                        ebs=ec2.CfnLaunchTemplate.EbsProperty(
                            volume_size=p["BlockDeviceVolumeSize"].value_as_number,
                            volume_type="gp3",
                            encrypted=True,
                            delete_on_termination=True,
                        ),
                    )
                ],
                user_data=cdk.Fn.base64(
                    cdk.Fn.sub(
                        "#!/bin/bash\n"
                        "echo ECS_CLUSTER=${Cluster} >> /etc/ecs/ecs.config\n"
                        "echo ECS_ENABLE_GPU_SUPPORT=true >> /etc/ecs/ecs.config\n",
                        {"Cluster": cluster.ref},
                    )
                ),
            ),
        )
        asg = autoscaling.CfnAutoScalingGroup(
            self,
            "AutoScalingGroup",
            min_size=p["MinCapacity"].value_as_string,
            max_size=p["MaxCapacity"].value_as_string,
            desired_capacity=p["DesiredCapacity"].value_as_string,
            cooldown=p["Cooldown"].value_as_string,
            default_instance_warmup=p["DefaultInstanceWarmup"].value_as_number,
            vpc_zone_identifier=p["SubnetIds"].value_as_list,
            launch_template=autoscaling.CfnAutoScalingGroup.LaunchTemplateSpecificationProperty(
                launch_template_id=launch_template.ref, version=launch_template.attr_latest_version_number
            ),
            tags=[
                autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                    key="lisa:model-id", value=p["ModelId"].value_as_string, propagate_at_launch=True
                )
            ],
        )

        # Internal load balancer in front of the model containers.
        load_balancer = elbv2.CfnLoadBalancer(
            self,
            "LoadBalancer",
            scheme="internal",
            type="application",
            subnets=p["SubnetIds"].value_as_list,
            security_groups=[alb_sg.attr_group_id],
            load_balancer_attributes=[
                elbv2.CfnLoadBalancer.LoadBalancerAttributeProperty(
                    key="routing.http.drop_invalid_header_fields.enabled", value="true"
                ),
                # Long generations stream for minutes.
                elbv2.CfnLoadBalancer.LoadBalancerAttributeProperty(
                    key="idle_timeout.timeout_seconds", value="600"
                ),
            ],
        )
        target_group = elbv2.CfnTargetGroup(
            self,
            "TargetGroup",
            vpc_id=p["VpcId"].value_as_string,
            port=p["ContainerPort"].value_as_number,
            protocol="HTTP",
            target_type="instance",
            health_check_enabled=True,
            health_check_path=p["HealthCheckPath"].value_as_string,
            health_check_interval_seconds=p["HealthCheckInterval"].value_as_number,
            health_check_timeout_seconds=p["HealthCheckTimeout"].value_as_number,
            healthy_threshold_count=p["HealthyThresholdCount"].value_as_number,
            unhealthy_threshold_count=p["UnhealthyThresholdCount"].value_as_number,
            target_group_attributes=[
                elbv2.CfnTargetGroup.TargetGroupAttributeProperty(
                    key="deregistration_delay.timeout_seconds", value="30"
                )
            ],
        )
        listener = elbv2.CfnListener(
            self,
            "Listener",
            load_balancer_arn=load_balancer.ref,
            port=LISTENER_PORT,
            protocol="HTTP",
            default_actions=[
                elbv2.CfnListener.ActionProperty(type="forward", target_group_arn=target_group.ref)
            ],
        )

        service = ecs.CfnService(
            self,
            "Service",
            cluster=cluster.ref,
            launch_type="EC2",
            task_definition=p["TaskDefinitionArn"].value_as_string,
            desired_count=p["DesiredCapacity"].value_as_number,
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS,
            deployment_configuration=ecs.CfnService.DeploymentConfigurationProperty(
                deployment_circuit_breaker=ecs.CfnService.DeploymentCircuitBreakerProperty(
                    enable=True, rollback=True
                ),
                minimum_healthy_percent=50,
                maximum_percent=200,
            ),
            placement_strategies=[
                ecs.CfnService.PlacementStrategyProperty(
                    type="spread", field="attribute:ecs.availability-zone"
                )
            ],
            load_balancers=[
                ecs.CfnService.LoadBalancerProperty(
                    container_name=MODEL_CONTAINER_NAME,
                    container_port=p["ContainerPort"].value_as_number,
                    target_group_arn=target_group.ref,
                )
            ],
        )
        service.node.add_dependency(listener, asg)

        # Scaling: the service on the ALB metric (Application Auto Scaling), the ASG on the same metric.
        is_request_count = cdk.CfnCondition(
            self,
            "ScalesOnRequestCount",
            expression=cdk.Fn.condition_equals(p["ScalingMetric"].value_as_string, "RequestCountPerTarget"),
        )
        statistic = cdk.Fn.condition_if(is_request_count.logical_id, "Sum", "Average").to_string()
        dimensions = [
            {"Name": "LoadBalancer", "Value": load_balancer.attr_load_balancer_full_name},
            {"Name": "TargetGroup", "Value": target_group.attr_target_group_full_name},
        ]
        scalable_target = appscaling.CfnScalableTarget(
            self,
            "ServiceScalableTarget",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=cdk.Fn.join("/", ["service", cluster.ref, service.attr_name]),
            min_capacity=p["MinCapacity"].value_as_number,
            max_capacity=p["MaxCapacity"].value_as_number,
        )
        appscaling.CfnScalingPolicy(
            self,
            "ServiceScalingPolicy",
            policy_name=cdk.Fn.join("-", [cdk.Aws.STACK_NAME, "service"]),
            policy_type="TargetTrackingScaling",
            scaling_target_id=scalable_target.ref,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=p["ScalingTargetValue"].value_as_number,
                scale_in_cooldown=p["Cooldown"].value_as_number,
                scale_out_cooldown=p["Cooldown"].value_as_number,
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    namespace="AWS/ApplicationELB",
                    metric_name=p["ScalingMetric"].value_as_string,
                    statistic=statistic,
                    dimensions=[
                        appscaling.CfnScalingPolicy.MetricDimensionProperty(name=d["Name"], value=d["Value"])
                        for d in dimensions
                    ],
                ),
            ),
        )
        autoscaling.CfnScalingPolicy(
            self,
            "InstanceScalingPolicy",
            auto_scaling_group_name=asg.ref,
            policy_type="TargetTrackingScaling",
            estimated_instance_warmup=p["EstimatedInstanceWarmup"].value_as_number,
            target_tracking_configuration=autoscaling.CfnScalingPolicy.TargetTrackingConfigurationProperty(
                target_value=p["ScalingTargetValue"].value_as_number,
                customized_metric_specification=autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    namespace="AWS/ApplicationELB",
                    metric_name=p["ScalingMetric"].value_as_string,
                    statistic=statistic,
                    dimensions=[
                        autoscaling.CfnScalingPolicy.MetricDimensionProperty(name=d["Name"], value=d["Value"])
                        for d in dimensions
                    ],
                ),
            ),
        )

        outputs = {
            "EndpointUrl": cdk.Fn.join("", ["http://", load_balancer.attr_dns_name]),
            "ClusterName": cluster.ref,
            "ServiceName": service.attr_name,
            "AutoScalingGroupName": asg.ref,
            "TargetGroupArn": target_group.ref,
            "LoadBalancerArn": load_balancer.ref,
        }
        for name, value in outputs.items():
            cdk.CfnOutput(self, name, value=value).override_logical_id(name)

        self._acknowledge(instance_role, load_balancer, asg)

    def _parameters(self) -> dict[str, cdk.CfnParameter]:
        def param(name: str, type_: str = "String", **kwargs: object) -> cdk.CfnParameter:
            parameter = cdk.CfnParameter(self, name, type=type_, **kwargs)  # type: ignore[arg-type]
            parameter.override_logical_id(name)
            return parameter

        def number(
            name: str, default: int | None, minimum: int, maximum: int, description: str
        ) -> cdk.CfnParameter:
            extra: dict[str, object] = {
                "min_value": minimum,
                "max_value": maximum,
                "description": description,
            }
            if default is not None:
                extra["default"] = default
            return param(name, "Number", **extra)

        params = {
            "ModelId": param(
                "ModelId",
                allowed_pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",  # lisa_domain.schema.MODEL_ID_PATTERN
                max_length=128,  # lisa_domain.schema.MODEL_ID_MAX_LENGTH
                description="The model's id (for tags and names)",
            ),
            "InstanceType": param("InstanceType", description="EC2 instance type, e.g. g5.xlarge"),
            "TaskDefinitionArn": param(
                "TaskDefinitionArn",
                allowed_pattern=r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/.+$",
                description="Task definition registered by the workflow (bridge mode, container 'model', host port 0)",
            ),
            "ContainerPort": number("ContainerPort", 8080, 1, 65535, "Port the model container listens on"),
            "HealthCheckPath": param(
                "HealthCheckPath",
                default="/health",
                allowed_pattern=r"^/.*$",
                description="Target group health check path",
            ),
            "HealthCheckInterval": number("HealthCheckInterval", 30, 5, 300, "Seconds between health checks"),
            "HealthCheckTimeout": number(
                "HealthCheckTimeout", 10, 2, 120, "Seconds before a health check fails"
            ),
            "HealthyThresholdCount": number("HealthyThresholdCount", 3, 2, 10, "Checks to become healthy"),
            "UnhealthyThresholdCount": number(
                "UnhealthyThresholdCount", 3, 2, 10, "Checks to become unhealthy"
            ),
            "MinCapacity": number("MinCapacity", 1, 0, 100, "Minimum tasks and instances"),
            "MaxCapacity": number("MaxCapacity", 1, 1, 100, "Maximum tasks and instances"),
            "DesiredCapacity": number(
                "DesiredCapacity", 1, 0, 100, "Desired tasks and instances (0 = stopped)"
            ),
            "Cooldown": number("Cooldown", 300, 0, 3600, "Scaling cooldown (seconds)"),
            "DefaultInstanceWarmup": number(
                "DefaultInstanceWarmup", 300, 0, 3600, "ASG default instance warmup (s)"
            ),
            "BlockDeviceVolumeSize": number("BlockDeviceVolumeSize", 50, 30, 16384, "Root volume size (GiB)"),
            "ScalingMetric": param(
                "ScalingMetric",
                default="RequestCountPerTarget",
                allowed_values=["RequestCountPerTarget", "TargetResponseTime"],
                description="ALB metric both scaling policies track",
            ),
            "ScalingTargetValue": param(
                "ScalingTargetValue", "Number", default=30, description="Target value of ScalingMetric"
            ),
            "EstimatedInstanceWarmup": number(
                "EstimatedInstanceWarmup", 300, 0, 3600, "Scaling policy warmup (s)"
            ),
            "VpcId": param("VpcId", "AWS::EC2::VPC::Id", description="VPC of the model"),
            "SubnetIds": param(
                "SubnetIds",
                "List<AWS::EC2::Subnet::Id>",
                description="Private subnets for instances and the ALB",
            ),
            "ServeSecurityGroupId": param(
                "ServeSecurityGroupId",
                "AWS::EC2::SecurityGroup::Id",
                description="Security group of the serve tasks: the only source the load balancer admits",
            ),
            "ImageId": param(
                "ImageId",
                "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                default=GPU_AMI_PARAMETER,
                description="ECS GPU-optimized AMI (SSM public parameter)",
            ),
        }
        return params

    def _acknowledge(
        self,
        instance_role: iam.CfnRole,
        load_balancer: elbv2.CfnLoadBalancer,
        asg: autoscaling.CfnAutoScalingGroup,
    ) -> None:
        acknowledge(
            load_balancer,
            "AwsSolutions-ELB2",
            "Internal load balancer reached only by the serve tasks, which log every request with the "
            "caller and model; per-model access log buckets would add cost without new information.",
        )
        acknowledge(
            asg,
            "AwsSolutions-AS3",
            "Scaling activity of model instances is recorded in the ASG activity history and CloudWatch; "
            "no per-model SNS topic is created so model stacks stay self-contained.",
        )
        acknowledge(
            asg,
            "AwsSolutions-AS1",
            "The cooldown is set, from the Cooldown parameter; cdk-nag cannot evaluate a parameter "
            "reference and reports a rule error instead.",
        )
        acknowledge(
            instance_role,
            "AwsSolutions-IAM5[Resource::*]",
            "ECS agent calls (DiscoverPollEndpoint, Poll, StartTelemetrySession, "
            "SubmitAttachmentStateChanges, UpdateContainerInstancesState) and ec2:DescribeTags "
            "do not support resource-level permissions; cluster-scoped calls are scoped to the cluster.",
        )
