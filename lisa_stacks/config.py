"""Typed deployment configuration, loaded from a YAML file (see docs/configuration.md).

Every model rejects unknown fields; a bad file fails synthesis with ``config error in <field>: <why>``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from lisa_contracts.limits import UsageLimits

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = "config/deployment.yaml"
EXAMPLE_CONFIG_PATH = "config/deployment.example.yaml"

#: Retention periods CloudWatch Logs accepts (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

#: Fargate CPU units and the memory sizes (MiB) each accepts.
FARGATE_MEMORY: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", min_length=1, max_length=20)]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


class ConfigError(ValueError):
    """The deployment configuration is invalid; the message names every bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _check_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not an IPv4 CIDR block: {exc}") from exc
    if not 16 <= network.prefixlen <= 24:
        raise ValueError(f"'{value}': a VPC CIDR block must be between /16 and /24")
    return value


Cidr = Annotated[str, StringConstraints(min_length=9), Field(description="IPv4 CIDR, /16 to /24")]


class CreateVpc(_Strict):
    cidr: Cidr = "10.0.0.0/16"
    maxAzs: Annotated[int, Field(ge=2, le=6)] = 2
    natGateways: Annotated[int, Field(ge=1, le=6)] = 1

    @model_validator(mode="after")
    def _valid(self) -> CreateVpc:
        _check_cidr(self.cidr)
        if self.natGateways > self.maxAzs:
            raise ValueError("natGateways must be at most maxAzs")
        return self


VpcId = Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8,17}$")]
SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]


class ImportVpc(_Strict):
    vpcId: VpcId
    vpcCidr: Cidr
    availabilityZones: Annotated[list[NonEmptyStr], Field(min_length=2)]
    privateSubnetIds: Annotated[list[SubnetId], Field(min_length=2)]
    publicSubnetIds: Annotated[list[SubnetId], Field(min_length=2)]

    @model_validator(mode="after")
    def _valid(self) -> ImportVpc:
        _check_cidr(self.vpcCidr)
        zones = len(self.availabilityZones)
        for field in ("privateSubnetIds", "publicSubnetIds"):
            if len(getattr(self, field)) != zones:
                raise ValueError(f"{field} needs one subnet per availability zone ({zones})")
        return self


class VpcConfig(_Strict):
    create: CreateVpc | None = None
    import_: ImportVpc | None = Field(default=None, alias="import")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("create") is None) == (data.get("import") is None):
            raise ValueError("set exactly one of 'create' and 'import'")
        return data


class OidcConfig(_Strict):
    issuer: Annotated[str, StringConstraints(pattern=r"^https://\S+$")]
    clientId: NonEmptyStr
    usernameClaim: NonEmptyStr = "sub"
    groupsClaim: Annotated[str, StringConstraints(pattern=r"^[^.\s]+(\.[^.\s]+)*$")] = "cognito:groups"
    #: A groups claim that is a string, not a list: ``one-group`` (one group name) or ``reject`` (no groups).
    groupsClaimString: Literal["one-group", "reject"] = "one-group"


class ThrottlingConfig(_Strict):
    rateLimit: Annotated[float, Field(gt=0, le=10000)] = 50
    burstLimit: Annotated[int, Field(ge=1, le=5000)] = 100


class ApiConfig(_Strict):
    throttling: ThrottlingConfig = ThrottlingConfig()
    authorizerCacheSeconds: Annotated[int, Field(ge=0, le=60)] = 30


class TokensConfig(_Strict):
    maxLifetimeDays: Annotated[int, Field(ge=1, le=3650)] = 90


class RequestLimitsConfig(_Strict):
    """Per-request bounds the serve app enforces (LISA_SERVE_MAX_*)."""

    maxN: Annotated[int, Field(ge=1, le=128)] = 8
    maxBestOf: Annotated[int, Field(ge=1, le=128)] = 8
    maxTokens: Annotated[int, Field(ge=1, le=1_048_576)] = 32768
    maxGuidedDecodingBytes: Annotated[int, Field(ge=1024, le=10_485_760)] = 65536
    maxAudioUploadBytes: Annotated[int, Field(ge=1_048_576, le=536_870_912)] = 26_214_400


class ServeConfig(_Strict):
    desiredCount: Annotated[int, Field(ge=2)] = 2
    minTasks: Annotated[int, Field(ge=2)] = 2
    maxTasks: Annotated[int, Field(ge=2, le=100)] = 6
    cpu: Literal[256, 512, 1024, 2048, 4096, 8192, 16384] = 1024
    memory: Annotated[int, Field(ge=512)] = 2048
    targetCpuUtilization: Annotated[int, Field(ge=10, le=90)] = 60
    certificateArn: (
        Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/.+$")]
        | None
    ) = None
    #: Without a certificate the listener is plain HTTP: synthesis refuses that unless this is true.
    allowInsecureHttp: bool = False
    #: Whether the serve API accepts the management key (the admin API always does).
    allowManagementKey: bool = False
    requestLimits: RequestLimitsConfig = RequestLimitsConfig()

    @model_validator(mode="after")
    def _valid(self) -> ServeConfig:
        if self.minTasks > self.maxTasks:
            raise ValueError("minTasks must be at most maxTasks")
        if not self.minTasks <= self.desiredCount <= self.maxTasks:
            raise ValueError("desiredCount must be between minTasks and maxTasks")
        if self.memory not in FARGATE_MEMORY[self.cpu]:
            allowed = FARGATE_MEMORY[self.cpu]
            raise ValueError(
                f"memory {self.memory} is not valid for cpu {self.cpu}: "
                f"{allowed.start} to {allowed.stop - 1} MiB in steps of {allowed.step}"
            )
        return self


class WorkflowConfig(_Strict):
    pollSeconds: Annotated[int, Field(ge=1, le=3600)] = 30
    maxPolls: Annotated[int, Field(ge=1, le=10000)] = 120
    timeoutMinutes: Annotated[int, Field(ge=5, le=1440)] = 240

    @model_validator(mode="after")
    def _fits(self) -> WorkflowConfig:
        if self.pollSeconds * self.maxPolls > self.timeoutMinutes * 60:
            raise ValueError(
                "pollSeconds * maxPolls must fit in timeoutMinutes, or executions time out before polling ends"
            )
        return self


class ManagementKeyConfig(_Strict):
    #: How long the previous key (AWSPREVIOUS) stays valid after a rotation created the current one.
    previousVersionValidHours: Annotated[int, Field(ge=0, le=8760)] = 24


def _check_any_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a CIDR block: {exc}") from exc
    return value


class ModelUrlPolicyConfig(_Strict):
    """Which ``modelUrl`` values the admin API accepts (MODEL_URL_ALLOW_HTTP, MODEL_URL_ALLOWED_CIDRS)."""

    allowHttp: bool = False
    allowedCidrs: list[Annotated[str, AfterValidator(_check_any_cidr)]] = []


class DeploymentConfig(_Strict):
    deploymentName: Name
    stage: Name
    account: Annotated[str, StringConstraints(pattern=r"^\d{12}$")] | None = None
    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")] | None = None
    vpc: VpcConfig
    adminGroup: NonEmptyStr
    apiGroup: NonEmptyStr
    oidc: OidcConfig
    removalPolicy: Literal["retain", "destroy"] = "retain"
    encryption: Literal["aws-managed", "customer-managed"] = "aws-managed"
    api: ApiConfig = ApiConfig()
    tokens: TokensConfig = TokensConfig()
    serve: ServeConfig = ServeConfig()
    workflow: WorkflowConfig = WorkflowConfig()
    logRetentionDays: int = 90
    managementKeyRotationDays: Annotated[int, Field(ge=1, le=365)] = 30
    managementKey: ManagementKeyConfig = ManagementKeyConfig()
    modelUrlPolicy: ModelUrlPolicyConfig = ModelUrlPolicyConfig()
    #: Rate limits and monthly token budgets (docs/usage.md); none by default.
    usageLimits: UsageLimits = UsageLimits()

    @model_validator(mode="after")
    def _cross_field(self) -> DeploymentConfig:
        # Checked here, not in ServeConfig, so that a file without a serve section reports it too.
        if self.serve.certificateArn is None and not self.serve.allowInsecureHttp:
            raise ValueError(
                "serve.certificateArn is required: without it the serve API listens on plain HTTP and "
                "credentials cross the network unencrypted; set serve.allowInsecureHttp: true to accept that"
            )
        if self.managementKey.previousVersionValidHours > self.managementKeyRotationDays * 24:
            raise ValueError(
                "managementKey.previousVersionValidHours must be at most managementKeyRotationDays * 24: "
                "the next rotation replaces the previous version anyway"
            )
        if self.logRetentionDays not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"logRetentionDays {self.logRetentionDays} is not a CloudWatch Logs retention; "
                f"allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return self

    # Derived names (the contracts in docs/architecture.md).
    @property
    def prefix(self) -> str:
        return f"{self.deploymentName}-{self.stage}"

    @property
    def model_secret_prefix(self) -> str:
        return f"lisa/{self.deploymentName}/{self.stage}/models/"

    @property
    def management_key_secret_name(self) -> str:
        return f"lisa/{self.deploymentName}/{self.stage}/management-key"

    @property
    def model_stack_prefix(self) -> str:
        return f"{self.prefix}-model-"

    @property
    def model_boundary_policy_name(self) -> str:
        """The managed policy every role a model stack creates must carry as its permissions boundary."""
        return f"{self.prefix}-model-role-boundary"


def _location(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error["loc"]]
    # A model-level validator reports its own model; a missing or unknown field reports itself.
    return ".".join(loc) if loc else "(top level)"


def parse_config(data: Any, source: str = "config") -> DeploymentConfig:
    """Validate already-parsed YAML; raise ConfigError naming every bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"config error in {source}: the file must hold a mapping of settings")
    try:
        return DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"config error in {_location(dict(error))}: {message}")
        raise ConfigError(f"{source}:\n" + "\n".join(lines)) from None


def resolve_config_path(context_value: str | None) -> Path:
    """The config file: context ``config`` if given, else deployment.yaml, else the checked-in example."""
    if context_value:
        path = Path(context_value)
        return path if path.is_absolute() else REPO_ROOT / path
    default = REPO_ROOT / DEFAULT_CONFIG_PATH
    return default if default.exists() else REPO_ROOT / EXAMPLE_CONFIG_PATH


def load_config(path: Path) -> DeploymentConfig:
    if not path.is_file():
        raise ConfigError(f"config error in {path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config error in {path}: not valid YAML: {exc}") from None
    return parse_config(data, source=str(path))
