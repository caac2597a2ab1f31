"""The serve service: a public ALB in front of an ECS Fargate service running the LiteLLM-based app."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import region_info
from constructs import Construct

from lisa_contracts.settings import ServeSettings
from lisa_stacks.common import identity_settings, log_group, model_secrets_arn, removal_policy
from lisa_stacks.config import REPO_ROOT, DeploymentConfig
from lisa_stacks.data import Data
from lisa_stacks.nag import acknowledge, acknowledge_wildcards, nag_arn
from lisa_stacks.network import Network
from lisa_stacks.scheduler import grant_serve_cost_control
from lisa_stacks.usage import UsageTable, usage_limits_env

CONTAINER_PORT = 8080
ALB_IDLE_TIMEOUT_SECONDS = 600
HEALTH_CHECK_PATH = "/health"
ACCESS_LOG_PREFIX = "serve"
DOCKERFILE = "litellm_container/Dockerfile"
#: The image's build context is the repository root, narrowed to what the Dockerfile can use.
DOCKER_CONTEXT_EXCLUDE = ["*", "!lambdas", "!litellm_container", "**/__pycache__", "**/*.pyc"]


class Serve(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        network: Network,
        data: Data,
        usage: UsageTable,
        cors_origin: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        serve = config.serve

        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption ALB access logs support
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal_policy(config),
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(config.logRetentionDays))],
        )
        acknowledge(
            access_logs,
            "AwsSolutions-S1",
            "This bucket is itself the access-log destination of the serve load balancer; logging "
            "access to the log bucket would need another bucket and recurse.",
        )

        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=network.vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            drop_invalid_header_fields=True,
            idle_timeout=cdk.Duration.seconds(ALB_IDLE_TIMEOUT_SECONDS),  # long streamed generations
        )
        self._log_access(access_logs, stack)
        acknowledge(
            self.load_balancer,
            "AwsSolutions-EC23",
            "The serve API is the public, OpenAI-compatible entry point for users: its listener must "
            "accept any source address; every request is authenticated by the serve app.",
        )

        cluster = ecs.Cluster(
            self, "Cluster", vpc=network.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=serve.cpu,
            memory_limit_mib=serve.memory,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        limits = serve.requestLimits
        task_definition.add_container(
            "serve",
            image=ecs.ContainerImage.from_asset(
                str(REPO_ROOT),
                file=DOCKERFILE,
                exclude=DOCKER_CONTEXT_EXCLUDE,
                ignore_mode=cdk.IgnoreMode.DOCKER,
                platform=cdk.aws_ecr_assets.Platform.LINUX_AMD64,
            ),
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT)],
            logging=ecs.LogDrivers.aws_logs(stream_prefix="serve", log_group=log_group(self, "Logs", config)),
            readonly_root_filesystem=False,
            environment=ServeSettings.build(
                models_table=data.models_table.table_name,
                litellm_local_model_cost_map=True,
                aws_default_region=stack.region,
                # Outlive the ALB's idle connections, or the ALB may reuse one uvicorn has closed (502).
                keep_alive_seconds=ALB_IDLE_TIMEOUT_SECONDS + 20,
                max_n=limits.maxN,
                max_best_of=limits.maxBestOf,
                max_tokens=limits.maxTokens,
                max_guided_bytes=limits.maxGuidedDecodingBytes,
                max_audio_bytes=limits.maxAudioUploadBytes,
                allow_management_key=serve.allowManagementKey,
                cors_origins=cors_origin,  # the console's (lisa_stacks.console)
                # One worker per task vCPU (each follows the registry and the tokens on its own).
                workers=max(1, serve.cpu // 1024),
                usage_table=usage.table.table_name,
                metrics=True,
                **usage_limits_env(config),
                **identity_settings(config, data),
            ).to_env(),
            # Longer than the app's graceful shutdown (LISA_SERVE_GRACEFUL_SHUTDOWN_SECONDS, 25 s).
            stop_timeout=cdk.Duration.seconds(35),
        )
        self._grant_task_role(task_definition.task_role, stack, config, data)
        usage.grant_serve(task_definition.task_role)

        # The tasks' group is created in the core stack, so model stacks can admit exactly it. Imported
        # immutable here: CDK would otherwise put the load-balancer rule into the core stack (a cycle);
        # the rule is added below, in this stack.
        service_group = ec2.SecurityGroup.from_security_group_id(
            self, "ServiceSecurityGroup", network.serve_security_group.security_group_id, mutable=False
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=task_definition,
            desired_count=serve.desiredCount,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            security_groups=[service_group],
            health_check_grace_period=cdk.Duration.seconds(120),
        )
        scaling = self.service.auto_scale_task_count(min_capacity=serve.minTasks, max_capacity=serve.maxTasks)
        scaling.scale_on_cpu_utilization(
            "Cpu",
            target_utilization_percent=serve.targetCpuUtilization,
            scale_in_cooldown=cdk.Duration.seconds(300),
            scale_out_cooldown=cdk.Duration.seconds(60),
        )

        if serve.certificateArn:
            listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(serve.certificateArn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=True,
            )
            self.load_balancer.add_redirect(source_port=80, target_port=443)
        else:
            listener = self.load_balancer.add_listener(
                "Http", port=80, protocol=elbv2.ApplicationProtocol.HTTP, open=True
            )
            cdk.Annotations.of(listener).add_info(
                "serve.certificateArn is not set: the serve API listens on plain HTTP (port 80). "
                "Set it for production; tokens travel in the Authorization header."
            )
        listener.add_targets(
            "Serve",
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.service],
            deregistration_delay=cdk.Duration.seconds(30),
            health_check=elbv2.HealthCheck(
                # Liveness only: a registry outage must not make the ALB drain every replica at once
                # (readiness and staleness are reported by /health/ready, not used for routing).
                path=HEALTH_CHECK_PATH,
                healthy_http_codes="200",
                interval=cdk.Duration.seconds(15),
            ),
        )
        ec2.CfnSecurityGroupIngress(
            self,
            "ServiceFromLoadBalancer",
            group_id=service_group.security_group_id,
            source_security_group_id=self.load_balancer.connections.security_groups[0].security_group_id,
            ip_protocol="tcp",
            from_port=CONTAINER_PORT,
            to_port=CONTAINER_PORT,
            description="Serve container port from the serve load balancer",
        )
        self.url = cdk.Fn.join(
            "",
            ["https://" if serve.certificateArn else "http://", self.load_balancer.load_balancer_dns_name],
        )

        acknowledge_wildcards(
            task_definition.task_role,
            {
                f"Resource::{nag_arn('secretsmanager', f'secret:{config.model_secret_prefix}*')}": (
                    "Serve reads the provider key of any registered model; model secrets are created at "
                    "run time, one per model, under this deployment's model secret name prefix."
                ),
                "Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/*": (
                    "Administrators register any Bedrock model at run time; invoking is limited to "
                    "InvokeModel and its streaming variant."
                ),
                "Resource::arn:<AWS::Partition>:bedrock:*:<AWS::AccountId>:inference-profile/*": (
                    "Cross-region inference profiles of this account, registered at run time as Bedrock "
                    "models; only InvokeModel and its streaming variant."
                ),
            },
        )
        assert task_definition.execution_role is not None
        acknowledge_wildcards(
            task_definition.execution_role,
            {
                "Resource::*": "ecr:GetAuthorizationToken, needed to pull the serve image from the CDK "
                "asset repository, does not support resource-level permissions.",
            },
        )
        acknowledge(
            task_definition,
            "AwsSolutions-ECS2",
            "The environment holds only table names, secret ARNs, group names and OIDC settings; no "
            "secret value is in it (the app reads secrets from Secrets Manager at run time).",
        )

    def _log_access(self, bucket: s3.Bucket, stack: cdk.Stack) -> None:
        """ALB access logs to ``bucket`` without knowing the region at synth time.

        ``log_access_logs`` needs a concrete region (the regional ELB account). The stacks are
        environment-agnostic, so the account comes from a region mapping at deploy time; regions
        without one (opened since 2022) use the log-delivery service principal, which is always allowed.
        """
        mapping = cdk.CfnMapping(
            stack,
            "ElbLogDeliveryAccounts",
            mapping={
                info.name: {"account": info.elbv2_account or "none"}
                for info in region_info.RegionInfo.regions
            },
        )
        has_account = cdk.CfnCondition(
            stack,
            "RegionHasElbLogDeliveryAccount",
            expression=cdk.Fn.condition_not(
                cdk.Fn.condition_equals(mapping.find_in_map(cdk.Aws.REGION, "account"), "none")
            ),
        )
        elb_account = cdk.Fn.condition_if(
            has_account.logical_id,
            cdk.Fn.join(
                "",
                [
                    "arn:",
                    cdk.Aws.PARTITION,
                    ":iam::",
                    mapping.find_in_map(cdk.Aws.REGION, "account"),
                    ":root",
                ],
            ),
            cdk.Fn.join("", ["arn:", cdk.Aws.PARTITION, ":iam::", cdk.Aws.ACCOUNT_ID, ":root"]),
        ).to_string()
        objects = bucket.arn_for_objects(f"{ACCESS_LOG_PREFIX}/AWSLogs/{cdk.Aws.ACCOUNT_ID}/*")
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ArnPrincipal(elb_account)], actions=["s3:PutObject"], resources=[objects]
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[objects],
            )
        )
        self.load_balancer.set_attribute("access_logs.s3.enabled", "true")
        self.load_balancer.set_attribute("access_logs.s3.bucket", bucket.bucket_name)
        self.load_balancer.set_attribute("access_logs.s3.prefix", ACCESS_LOG_PREFIX)
        assert bucket.policy is not None
        self.load_balancer.node.add_dependency(bucket.policy)

    @staticmethod
    def _grant_task_role(role: iam.IRole, stack: cdk.Stack, config: DeploymentConfig, data: Data) -> None:
        data.grant_models(role, write=False)
        data.grant_tokens(role, write=False)
        data.grant_management_key_read(role)
        grant_serve_cost_control(role, data)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[model_secrets_arn(stack, config)],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                resources=[
                    stack.format_arn(
                        service="bedrock",
                        region="*",
                        account="",
                        resource="foundation-model",
                        resource_name="*",
                    ),
                    stack.format_arn(
                        service="bedrock", region="*", resource="inference-profile", resource_name="*"
                    ),
                ],
            )
        )
