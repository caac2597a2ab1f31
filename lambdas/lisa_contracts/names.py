"""Names the parts agree on: the CDK stacks, the Lambdas, the serve app, local mode and the tests
import them from here instead of repeating the literals."""

from __future__ import annotations

# ---- DynamoDB -------------------------------------------------------------------------------------
MODELS_TABLE_KEY = "modelId"
#: The models table's version item (``lisa_domain.registry``): never a model id (ids never hold ``#``).
REGISTRY_VERSION_KEY = "#registry"
TOKENS_TABLE_KEY = "tokenHash"
#: The tokens table's version item (``lisa_domain.tokens``): never a token hash (hex digits only).
TOKENS_VERSION_KEY = "#version"
TOKENS_TABLE_EXPIRY_ATTRIBUTE = "tokenExpiration"
TOKENS_BY_TOKEN_ID = "byTokenId"
TOKENS_BY_USERNAME = "byUsername"
#: Global secondary index -> its partition key.
TOKEN_INDEXES: dict[str, str] = {TOKENS_BY_TOKEN_ID: "tokenId", TOKENS_BY_USERNAME: "username"}
#: The usage table (``lisa_domain.usage``): metered aggregates, flush markers, limit and budget counters.
USAGE_TABLE_PARTITION_KEY = "pk"
USAGE_TABLE_SORT_KEY = "sk"
USAGE_TABLE_EXPIRY_ATTRIBUTE = "expiresAt"

# ---- metrics --------------------------------------------------------------------------------------
METRICS_NAMESPACE = "LISA"

# ---- per-model stack ------------------------------------------------------------------------------
#: The model's container in its task definition (the workflow registers it; the stack's service
#: puts it behind the load balancer).
MODEL_CONTAINER_NAME = "model"
#: Parameters the workflow passes to the per-model stack (the stack declares exactly these plus
#: ``ImageId``, an SSM-resolved AMI it never receives).
MODEL_STACK_PARAMETERS: tuple[str, ...] = (
    "ModelId",
    "InstanceType",
    "TaskDefinitionArn",
    "ContainerPort",
    "HealthCheckPath",
    "HealthCheckInterval",
    "HealthCheckTimeout",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "MinCapacity",
    "MaxCapacity",
    "DesiredCapacity",
    "Cooldown",
    "DefaultInstanceWarmup",
    "BlockDeviceVolumeSize",
    "ScalingMetric",
    "ScalingTargetValue",
    "EstimatedInstanceWarmup",
    "VpcId",
    "SubnetIds",
    "ServeSecurityGroupId",
)
#: Outputs of the per-model stack; ``EndpointUrl`` is ``http://<ALB DNS>`` without ``/v1``.
MODEL_STACK_OUTPUTS: tuple[str, ...] = (
    "EndpointUrl",
    "ClusterName",
    "ServiceName",
    "AutoScalingGroupName",
    "TargetGroupArn",
    "LoadBalancerArn",
)
TASK_DEFINITION_PARAMETER = "TaskDefinitionArn"
ENDPOINT_URL_OUTPUT = "EndpointUrl"

# ---- admin API ------------------------------------------------------------------------------------
#: Resource path -> methods: every route the admin handler serves (the OpenAPI document's paths and
#: methods, tests/unit/test_admin_openapi.py). API Gateway creates exactly these, each behind the
#: authorizer (``lisa_stacks.admin_api``); local mode's adapter matches requests against the same
#: paths in this order (a literal segment before a ``{parameter}`` one, as API Gateway prefers it).
ADMIN_ROUTES: dict[str, tuple[str, ...]] = {
    "/models": ("GET", "POST"),
    "/models/metadata/instances": ("GET",),
    "/models/{modelId}": ("GET", "PUT", "DELETE"),
    "/models/{modelId}/context-window": ("PUT",),
    "/models/{modelId}/schedule": ("GET", "PUT", "POST", "DELETE"),
    "/models/{modelId}/schedule/status": ("GET",),
    "/api-tokens": ("GET", "POST"),
    "/api-tokens/{tokenId}": ("GET", "DELETE"),
    "/usage": ("GET",),
    "/usage/me": ("GET",),
    "/docs": ("GET",),
}
TOKENS_RESOURCE = "/api-tokens"
TOKEN_RESOURCE = "/api-tokens/{tokenId}"

# ---- workflows ------------------------------------------------------------------------------------
#: Workflow -> its ASL file stem in ``lambdas/workflow_steps/definitions/``.
WORKFLOWS: tuple[str, ...] = ("create_model", "update_model", "delete_model")
#: Workflow -> the ``step`` values its Task states pass to the task Lambda (``Cleanup``,
#: ``PollCleanup`` and ``MarkFailed`` are the failure path).
WORKFLOW_STEPS: dict[str, tuple[str, ...]] = {
    "create_model": (
        "StartCreate",
        "CreateInfrastructure",
        "PollCreate",
        "PollCreateService",
        "Canary",
        "RegisterModel",
        "Cleanup",
        "PollCleanup",
        "MarkFailed",
    ),
    "update_model": (
        "StartUpdate",
        "UpdateInfrastructure",
        "PollUpdate",
        "PollUpdateService",
        "Canary",
        "FinishUpdate",
        "CleanupUpdate",
        "MarkFailed",
    ),
    "delete_model": (
        "StartDelete",
        "DeleteInfrastructure",
        "PollDelete",
        "ReleaseInfrastructure",
        "DeleteSecret",
        "DeleteRecord",
        "Cleanup",
        "PollCleanup",
        "MarkFailed",
    ),
}
