"""The create/update/delete model workflows, their task Lambda and the roles model stacks use."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lisa_contracts.names import WORKFLOWS
from lisa_contracts.settings import WorkflowStepsSettings
from lisa_stacks.common import log_group, model_secrets_arn, model_settings
from lisa_stacks.config import REPO_ROOT, DeploymentConfig
from lisa_stacks.data import Data
from lisa_stacks.lambda_code import LisaFunction
from lisa_stacks.model_hosting_stack import INSTANCE_CLUSTER_ACTIONS, INSTANCE_UNSCOPED_ACTIONS
from lisa_stacks.nag import acknowledge_wildcards, nag_arn
from lisa_stacks.network import Network

DEFINITIONS_DIR = REPO_ROOT / "lambdas" / "workflow_steps" / "definitions"


def load_definition(name: str, timeout_seconds: int) -> sfn.DefinitionBody:
    """The checked-in ASL with the deployment's execution timeout (``workflow.timeoutMinutes``).

    ``DefinitionBody.from_file`` uploads the file as an S3 asset and silently ignores the state
    machine's ``timeout``; inlining the JSON keeps the timeout and validates the file at synth time.
    The configured timeout replaces any ``TimeoutSeconds`` in the file (tests and local mode use the file's).
    """
    path = DEFINITIONS_DIR / f"{name}.asl.json"
    definition = json.loads(path.read_text(encoding="utf-8"))
    definition["TimeoutSeconds"] = timeout_seconds
    return sfn.DefinitionBody.from_string(json.dumps(definition, indent=1))


class Workflows(Construct):
    state_machines: dict[str, sfn.StateMachine]

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        code: lambda_.Code,
        data: Data,
        network: Network,
        model_template: s3_assets.Asset,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        prefix = config.model_stack_prefix

        # Shared by every model's task definition (registered by the workflow).
        self.model_log_group = log_group(self, "ModelLogs", config)
        self.task_execution_role = iam.Role(
            self,
            "ModelTaskExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="LISA model containers: pull images, write logs, resolve container secrets",
        )
        self.task_execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.model_log_group.log_group_arn],
            )
        )
        self.task_execution_role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.task_execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchGetImage",
                ],
                resources=[stack.format_arn(service="ecr", resource="repository", resource_name="*")],
            )
        )
        # containerConfig.secrets {NAME: secretArn} become task-definition secrets, which ECS resolves
        # with this role; the admin API accepts only secrets under the model secret prefix.
        self.task_execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[model_secrets_arn(stack, config)],
            )
        )
        acknowledge_wildcards(
            self.task_execution_role,
            {
                "Resource::*": "ecr:GetAuthorizationToken does not support resource-level permissions.",
                f"Resource::{nag_arn('secretsmanager', f'secret:{config.model_secret_prefix}*')}": (
                    "Container secrets are chosen per model at run time; ECS may resolve only secrets "
                    "named under this deployment's model secret prefix (read only)."
                ),
                f"Resource::{nag_arn('ecr', 'repository/*')}": "Administrators choose each model's image "
                "at run time; it may come from any ECR repository of this account (pull actions only).",
            },
        )
        self.task_role = iam.Role(
            self,
            "ModelTaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="LISA model containers: no AWS access (inference servers need none)",
        )

        # The most any role a model stack creates may do: model stacks must attach it (iam:CreateRole and
        # the policy actions below require it), so a model template cannot mint a broader role.
        self.model_role_boundary = iam.ManagedPolicy(
            self,
            "ModelRoleBoundary",
            managed_policy_name=config.model_boundary_policy_name,
            description="Permissions boundary of roles created by LISA model stacks (ECS container instances)",
            statements=[
                iam.PolicyStatement(
                    actions=[*INSTANCE_CLUSTER_ACTIONS, *INSTANCE_UNSCOPED_ACTIONS], resources=["*"]
                ),
            ],
        )
        acknowledge_wildcards(
            self.model_role_boundary,
            {
                "Resource::*": "A permissions boundary caps actions only; the model stack's instance role "
                "scopes each action to its own cluster where the action supports resource scoping.",
            },
        )

        # CloudFormation creates model stacks with this role, so the step Lambda itself cannot.
        self.model_stack_role = iam.Role(
            self,
            "ModelStackRole",
            assumed_by=iam.ServicePrincipal("cloudformation.amazonaws.com"),
            description=f"CloudFormation service role for the {prefix}* model stacks",
        )
        self._grant_model_stack_resources(self.model_stack_role, stack, prefix, self.model_role_boundary)
        owned = "created by model stacks at run time; scoped to this deployment's model stack name prefix."
        acknowledge_wildcards(
            self.model_stack_role,
            {
                "Resource::*": "EC2 security group/launch template, ELB, Auto Scaling and Application Auto "
                "Scaling create and describe calls cannot be scoped to resources that do not exist yet and "
                "whose ids are generated; this role is only assumable by CloudFormation.",
                f"Resource::{nag_arn('ecs', f'cluster/{prefix}*')}": f"ECS clusters {owned}",
                f"Resource::{nag_arn('ecs', f'service/{prefix}*/*')}": f"ECS services {owned}",
                f"Resource::{nag_arn('iam', f'role/{prefix}*', region=False)}": f"Instance roles {owned}",
                f"Resource::{nag_arn('iam', f'instance-profile/{prefix}*', region=False)}": (
                    f"Instance profiles {owned}"
                ),
                f"Resource::{nag_arn('iam', 'role/aws-service-role/*', region=False)}": "Creating the ECS, "
                "Auto Scaling, ELB and Application Auto Scaling service-linked roles on first use; limited "
                "by an iam:AWSServiceName condition to exactly those services.",
                f"Resource::{nag_arn('cloudwatch', 'alarm:TargetTracking-*')}": "Target-tracking policies "
                "create alarms with generated names that always start with TargetTracking-.",
                f"Resource::{nag_arn('ssm', 'parameter/aws/service/ecs/optimized-ami/*', account=False)}": (
                    "Resolving the AWS public ECS GPU-optimized AMI parameter (read-only, AWS-owned)."
                ),
            },
        )

        self.step_function = LisaFunction(
            self,
            "WorkflowSteps",
            config=config,
            code=code,
            handler="workflow_steps.handler.lambda_handler",
            description=f"LISA {config.prefix}: model workflow steps",
            timeout_seconds=120,
            settings=WorkflowStepsSettings,
            environment={
                **model_settings(config, data),
                "model_stack_template_url": model_template.http_url,
                "model_stack_prefix": prefix,
                "model_stack_role_arn": self.model_stack_role.role_arn,
                "model_vpc_id": network.vpc.vpc_id,
                "model_subnet_ids": cdk.Fn.join(",", network.private_subnets.subnet_ids),
                "serve_security_group_id": network.serve_security_group.security_group_id,
                "model_task_execution_role_arn": self.task_execution_role.role_arn,
                "model_task_role_arn": self.task_role.role_arn,
                "model_log_group_name": self.model_log_group.log_group_name,
                "hosting_backend": "ecs",
            },
            wildcard_reason="ECS task definition registration, deregistration and listing do not support "
            "resource-level permissions.",
            # The canary step calls the models' internal load balancers, which admit only the serve
            # tasks' security group: the function joins that group (it opens no port itself).
            network=(
                network.vpc,
                ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                network.serve_security_group,
            ),
        )
        self._grant_steps(config, stack, prefix, data, model_template)

        self.log_group = log_group(self, "StateMachineLogs", config)
        self.state_machines = {}
        for name in WORKFLOWS:
            machine = sfn.StateMachine(
                self,
                "".join(part.title() for part in name.split("_")),
                definition_body=load_definition(name, config.workflow.timeoutMinutes * 60),
                definition_substitutions={"StepFunctionArn": self.step_function.function.function_arn},
                tracing_enabled=True,
                logs=sfn.LogOptions(
                    destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
                ),
            )
            self.step_function.function.grant_invoke(machine)
            acknowledge_wildcards(
                machine.role,
                {
                    "Resource::*": "CloudWatch Logs delivery (logs:CreateLogDelivery and friends) and X-Ray "
                    "actions that Step Functions logging and tracing need do not support resource scoping.",
                    f"Resource::<{self._logical_id(self.step_function.function)}.Arn>:*": "Invoking the "
                    "workflow step Lambda by any version or alias of that one function (CDK's grantInvoke).",
                },
            )
            self.state_machines[name] = machine

        # Backstop: an execution that times out or is aborted never runs its own failure path; the
        # step Lambda then cleans up and marks the model Failed (workflow_steps.handler).
        events.Rule(
            self,
            "ExecutionEnded",
            description="Model workflow executions that ended without their own failure handling.",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [m.state_machine_arn for m in self.state_machines.values()],
                },
            ),
            targets=[events_targets.LambdaFunction(self.step_function.function, retry_attempts=3)],
        )

    @staticmethod
    def _logical_id(construct: Construct) -> str:
        child = construct.node.default_child
        assert isinstance(child, cdk.CfnElement)
        return cdk.Stack.of(construct).get_logical_id(child)

    def _grant_steps(
        self,
        config: DeploymentConfig,
        stack: cdk.Stack,
        prefix: str,
        data: Data,
        model_template: s3_assets.Asset,
    ) -> None:
        """Exactly the calls ``workflow_steps`` makes (tests/infra/test_lambda_permissions.py checks it)."""
        role = self.step_function.role
        data.grant_models(role, write=True)
        stacks_arn = stack.format_arn(
            service="cloudformation", resource="stack", resource_name=f"{prefix}*/*"
        )
        # Stacks are created and updated only from the synthesized model template, only with the
        # model stack role (which can create nothing but what that template needs).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:CreateStack", "cloudformation:UpdateStack"],
                resources=[stacks_arn],
                conditions={
                    "StringEquals": {
                        "cloudformation:TemplateUrl": model_template.http_url,
                        "cloudformation:RoleArn": self.model_stack_role.role_arn,
                    }
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DeleteStack"],
                resources=[stacks_arn],
                # Without RoleARN, CloudFormation deletes with the role the stack was created with (ours).
                conditions={
                    "StringEqualsIfExists": {"cloudformation:RoleArn": self.model_stack_role.role_arn}
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents"],
                resources=[stacks_arn],
            )
        )
        # CloudFormation reads TemplateURL with the caller's credentials.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[model_template.bucket.arn_for_objects(model_template.s3_object_key)],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.task_execution_role.role_arn, self.task_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.model_stack_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecs:RegisterTaskDefinition",
                    "ecs:DeregisterTaskDefinition",
                    "ecs:ListTaskDefinitions",
                ],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeServices"],
                resources=[stack.format_arn(service="ecs", resource="service", resource_name=f"{prefix}*/*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret"],
                resources=[model_secrets_arn(stack, config)],
            )
        )
        acknowledge_wildcards(
            role,
            {
                f"Resource::{nag_arn('cloudformation', f'stack/{prefix}*/*')}": "Model stacks are created at "
                "run time, one per model; scoped to stacks named with this deployment's model stack prefix.",
                f"Resource::{nag_arn('ecs', f'service/{prefix}*/*')}": "Model services are created at run "
                "time, one stack per model; scoped to names starting with this deployment's model stack "
                "prefix.",
                f"Resource::{nag_arn('secretsmanager', f'secret:{config.model_secret_prefix}*')}": (
                    "Per-model provider-key secrets are created at run time; the workflow reads and deletes "
                    "only secrets under this deployment's model secret name prefix."
                ),
            },
        )

    def _grant_model_stack_resources(
        self, role: iam.Role, stack: cdk.Stack, prefix: str, boundary: iam.ManagedPolicy
    ) -> None:
        """What CloudFormation needs to create, update and delete one ModelHostingStack."""
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecs:CreateCluster",
                    "ecs:DeleteCluster",
                    "ecs:DescribeClusters",
                    "ecs:PutClusterCapacityProviders",
                    "ecs:CreateService",
                    "ecs:UpdateService",
                    "ecs:DeleteService",
                    "ecs:DescribeServices",
                    "ecs:TagResource",
                ],
                resources=[
                    stack.format_arn(service="ecs", resource="cluster", resource_name=f"{prefix}*"),
                    stack.format_arn(service="ecs", resource="service", resource_name=f"{prefix}*/*"),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateSecurityGroup",
                    "ec2:DeleteSecurityGroup",
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:AuthorizeSecurityGroupEgress",
                    "ec2:RevokeSecurityGroupIngress",
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:CreateLaunchTemplate",
                    "ec2:CreateLaunchTemplateVersion",
                    "ec2:DeleteLaunchTemplate",
                    "ec2:RunInstances",
                    "ec2:CreateTags",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeAccountAttributes",
                    "ec2:DescribeAvailabilityZones",
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:DeleteLoadBalancer",
                    "elasticloadbalancing:ModifyLoadBalancerAttributes",
                    "elasticloadbalancing:CreateTargetGroup",
                    "elasticloadbalancing:DeleteTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroupAttributes",
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:ModifyListener",
                    "elasticloadbalancing:AddTags",
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeLoadBalancerAttributes",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetGroupAttributes",
                    "elasticloadbalancing:DescribeListeners",
                    "autoscaling:CreateAutoScalingGroup",
                    "autoscaling:UpdateAutoScalingGroup",
                    "autoscaling:DeleteAutoScalingGroup",
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:PutScalingPolicy",
                    "autoscaling:DeletePolicy",
                    "autoscaling:DescribePolicies",
                    "autoscaling:CreateOrUpdateTags",
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DeleteScalingPolicy",
                    "application-autoscaling:DescribeScalingPolicies",
                ],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
                resources=[
                    stack.format_arn(
                        service="cloudwatch",
                        resource="alarm",
                        resource_name="TargetTracking-*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        roles_arn = stack.format_arn(service="iam", region="", resource="role", resource_name=f"{prefix}*")
        # Only roles that carry the boundary: creating one, adding to its inline policies, or setting
        # the boundary (model stacks created before the boundary existed get it on their next update).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"],
                resources=[roles_arn],
                conditions={"StringEquals": {"iam:PermissionsBoundary": boundary.managed_policy_arn}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                # Deleting only takes permissions away, so it works on roles without the boundary too.
                actions=[
                    "iam:DeleteRolePolicy",
                    "iam:DeleteRole",
                    "iam:GetRole",
                    "iam:TagRole",
                    "iam:GetRolePolicy",
                    "iam:CreateInstanceProfile",
                    "iam:DeleteInstanceProfile",
                    "iam:GetInstanceProfile",
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                ],
                resources=[
                    roles_arn,
                    stack.format_arn(
                        service="iam", region="", resource="instance-profile", resource_name=f"{prefix}*"
                    ),
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    stack.format_arn(service="iam", region="", resource="role", resource_name=f"{prefix}*")
                ],
                conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    stack.format_arn(
                        service="iam", region="", resource="role", resource_name="aws-service-role/*"
                    )
                ],
                conditions={
                    "StringEquals": {
                        "iam:AWSServiceName": [
                            "ecs.amazonaws.com",
                            "autoscaling.amazonaws.com",
                            "elasticloadbalancing.amazonaws.com",
                            "ecs.application-autoscaling.amazonaws.com",
                        ]
                    }
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameters"],
                resources=[
                    stack.format_arn(
                        service="ssm",
                        account="",
                        resource="parameter",
                        resource_name="aws/service/ecs/optimized-ami/*",
                    )
                ],
            )
        )
