"""The admin REST API: every method behind one REQUEST Lambda authorizer, proxied to one admin Lambda."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from lisa_contracts.names import ADMIN_ROUTES
from lisa_domain.cors import ALLOWED_HEADERS, ALLOWED_METHODS, PREFLIGHT_MAX_AGE
from lisa_stacks.common import log_group
from lisa_stacks.config import DeploymentConfig
from lisa_stacks.lambda_code import LisaFunction
from lisa_stacks.nag import acknowledge

ERROR_TEMPLATE = '{"message": $context.error.messageString}'


class AdminApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        admin_function: LisaFunction,
        authorizer_function: LisaFunction,
        cors_origin: str,
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = log_group(self, "AccessLogs", config)
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            handler=authorizer_function.function,
            # A cached REQUEST authorizer must name its identity sources: the cache key is this header,
            # and a request without it is rejected with 401 before the authorizer runs.
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=cdk.Duration.seconds(config.api.authorizerCacheSeconds),
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{config.prefix}-admin",
            description=f"LISA {config.prefix} admin API (models, API tokens)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                throttling_rate_limit=config.api.throttling.rateLimit,
                throttling_burst_limit=config.api.throttling.burstLimit,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
            ),
            default_method_options=apigw.MethodOptions(
                authorizer=self.authorizer, authorization_type=apigw.AuthorizationType.CUSTOM
            ),
            # The console's origin only (lisa_domain.cors): API Gateway answers the preflight, the
            # Lambda adds the header to its responses (admin_api.cors), the gateway to its own.
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=[cors_origin],
                allow_methods=ALLOWED_METHODS.split(","),
                allow_headers=ALLOWED_HEADERS.split(","),
                max_age=cdk.Duration.seconds(int(PREFLIGHT_MAX_AGE)),
            ),
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(admin_function.function, proxy=True)
        # Every route the handler serves (names.ADMIN_ROUTES), each method behind the authorizer.
        for path, methods in ADMIN_ROUTES.items():
            resource = self.api.root.resource_for_path(path.lstrip("/"))
            parameters = {
                f"method.request.path.{part[1:-1]}": True for part in path.split("/") if part.startswith("{")
            }
            for method in methods:
                resource.add_method(
                    method,
                    integration,
                    authorizer=self.authorizer,
                    authorization_type=apigw.AuthorizationType.CUSTOM,
                    request_validator=validator,
                    request_parameters=parameters or None,
                )
        for name, response_type in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.api.add_gateway_response(
                name,
                type=response_type,
                templates={"application/json": ERROR_TEMPLATE},
                response_headers={"Access-Control-Allow-Origin": f"'{cors_origin}'", "Vary": "'Origin'"},
            )

        acknowledge(
            self.api,
            "AwsSolutions-APIG3",
            "No WAF web ACL by default: the API is admin-only behind a Lambda authorizer and stage "
            "throttling; attach a regional web ACL to the stage where the organization mandates one.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "Authorization is a REQUEST Lambda authorizer that accepts OIDC JWTs from any configured "
            "issuer, API tokens and the management key; a Cognito user pool authorizer cannot do that.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level CloudWatch Logs role needs the AWS managed push policy; "
            "it is required for the stage's access and execution logging.",
        )
