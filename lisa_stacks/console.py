"""The web console: static files in a private S3 bucket behind CloudFront, and its ``config.json``.

``ConsoleStack`` comes first (the core and serve stacks depend on it): both APIs answer CORS for
``ConsoleStack.origin`` only, so they need the distribution's domain. The bucket is private
(CloudFront reads it through origin access control), CloudFront answers over HTTPS only and adds
the security headers of ``console_policy``. The ``connect-src`` of the Content-Security-Policy
names the admin API and serve API endpoints of the region (their exact hosts are created later, by
the stacks that depend on this one) and the OIDC issuer (the browser's PKCE code exchange).

``ConsoleConfigFile`` (in the serve stack, which knows both API URLs) writes ``config.json`` next
to the static files: ``{"mode": "aws", "adminApiUrl", "serveUrl", "oidc": {"issuer", "clientId"}}``.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from constructs import Construct

from lisa_stacks.common import log_group, removal_policy
from lisa_stacks.config import DeploymentConfig
from lisa_stacks.console_policy import SECURITY_HEADERS, content_security_policy
from lisa_stacks.nag import acknowledge

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONFIG_FILE = "config.json"
HSTS_SECONDS = 63_072_000  # two years
#: The serve app's route prefix (``serve.app.PREFIX``): the console calls ``<serve URL>/v2/serve/...``.
SERVE_PREFIX = "/v2/serve"


def api_sources(config: DeploymentConfig, region: str) -> list[str]:
    """What the console may connect to besides itself: the region's API Gateway and load balancer
    endpoints (the APIs' hosts) and the OIDC issuer."""
    serve_scheme = "https" if config.serve.certificateArn else "http"
    return [
        f"https://*.execute-api.{region}.amazonaws.com",
        f"{serve_scheme}://*.{region}.elb.amazonaws.com",
        config.oidc.issuer,
    ]


class ConsoleStack(cdk.Stack):
    """The console's bucket, files and CloudFront distribution."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=f"LISA {config.prefix}: web console")
        # Only build output lives here (deployed again by every deploy), but it follows the
        # deployment's removalPolicy like every bucket (tests/infra/test_upgrade_safety.py).
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=console_bucket_name(config, self),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal_policy(config),
        )
        sources = api_sources(config, self.region)
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment=f"LISA {config.prefix} console security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(sources[:2], oidc_origin=sources[2]),
                    override=True,
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.seconds(HSTS_SECONDS),
                    include_subdomains=True,
                    override=True,
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(header=name, value=value, override=True)
                    for name, value in SECURITY_HEADERS.items()
                    if name in ("Cross-Origin-Opener-Policy", "Permissions-Policy")
                ]
            ),
        )
        bucket_origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"LISA {config.prefix} console",
            default_root_object="index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            default_behavior=cloudfront.BehaviorOptions(
                origin=bucket_origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
            ),
            additional_behaviors={
                # Always fresh: a deploy changes the API URLs it names.
                CONFIG_FILE: cloudfront.BehaviorOptions(
                    origin=bucket_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    response_headers_policy=headers,
                )
            },
        )
        #: The only origin both APIs answer CORS for.
        self.origin = f"https://{self.distribution.distribution_domain_name}"
        s3_deployment.BucketDeployment(
            self,
            "Files",
            sources=[s3_deployment.Source.asset(str(CONSOLE_DIR))],
            destination_bucket=self.bucket,
            exclude=[CONFIG_FILE],  # written by ConsoleConfigFile; pruning must leave it alone
            retain_on_delete=False,
            log_group=log_group(self, "DeploymentLogs", config),
            distribution=self.distribution,
            distribution_paths=["/*"],
        )
        cdk.CfnOutput(self, "ConsoleUrl", value=self.origin)
        self._acknowledge()

    def _acknowledge(self) -> None:
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "The bucket holds only the console's public build output, deployed by CDK; CloudFront is "
            "its only reader (origin access control), so S3 server access logs would record nothing "
            "but CloudFront's fetches.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "No geo restriction: who may use the console is decided by sign-in, not by country.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "No WAF web ACL by default: the console is static files; every action is an authorized "
            "API call. Attach a web ACL where the organization mandates one.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "No CloudFront access logs by default: the console serves static files; the APIs log "
            "every call it makes.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The default *.cloudfront.net certificate: CloudFront then allows TLSv1 for legacy "
            "viewers; set a custom domain and certificate to enforce TLSv1.2_2021.",
        )
        bucket = self.bucket.node.default_child
        assert isinstance(bucket, cdk.CfnElement)
        acknowledge_deployment_handler(
            self,
            [f"<{self.get_logical_id(bucket)}.Arn>/*", "*"],  # "*": CloudFront invalidations
        )


def console_bucket_name(config: DeploymentConfig, stack: cdk.Stack) -> str:
    """A fixed name, so the serve stack can write ``config.json`` without a cross-stack export."""
    return f"{config.prefix}-console-{stack.account}-{stack.region}"


def acknowledge_deployment_handler(stack: cdk.Stack, bucket_resources: list[str]) -> None:
    """Acknowledge the findings on BucketDeployment's CDK-provided handler (a singleton Lambda at the
    stack's top level), and on nothing else of the stack."""
    assets = "arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*"
    findings = {
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]": "BucketDeployment's CDK-provided handler uses the AWS managed "
        "basic Lambda execution policy for its logs.",
        "AwsSolutions-L1": "BucketDeployment's handler runtime is chosen and upgraded by CDK itself.",
    }
    wildcard = (
        "BucketDeployment's handler reads the CDK asset objects and writes, lists and prunes the "
        "console bucket's objects (CDK's own grant, object-level wildcards)."
    )
    for action in ("s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*", "s3:List*"):
        findings[f"AwsSolutions-IAM5[Action::{action}]"] = wildcard
    for resource in (assets, *bucket_resources):
        findings[f"AwsSolutions-IAM5[Resource::{resource}]"] = wildcard
    for child in stack.node.children:
        if child.node.id.startswith("Custom::CDKBucketDeployment"):
            for rule, reason in findings.items():
                acknowledge(child, rule, reason)


class ConsoleConfigFile(Construct):
    """``config.json`` in the console's bucket: the two API URLs and the OIDC client."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        console: ConsoleStack,
        admin_api_url: str,
        serve_url: str,
    ) -> None:
        """``serve_url``: the serve load balancer's URL (without the route prefix)."""
        super().__init__(scope, construct_id)
        document = {
            "mode": "aws",
            "adminApiUrl": admin_api_url,
            "serveUrl": serve_url + SERVE_PREFIX,
            "oidc": {"issuer": config.oidc.issuer, "clientId": config.oidc.clientId},
        }
        stack = cdk.Stack.of(self)
        stack.add_stack_dependency(console)
        s3_deployment.BucketDeployment(
            self,
            "File",
            sources=[s3_deployment.Source.json_data(CONFIG_FILE, document)],
            destination_bucket=s3.Bucket.from_bucket_name(
                self, "ConsoleBucket", console_bucket_name(config, stack)
            ),
            prune=False,
            retain_on_delete=False,
            log_group=log_group(self, "Logs", config),
        )
        account = config.account or "<AWS::AccountId>"
        region = config.region or "<AWS::Region>"
        acknowledge_deployment_handler(
            stack, [f"arn:<AWS::Partition>:s3:::{config.prefix}-console-{account}-{region}/*"]
        )
