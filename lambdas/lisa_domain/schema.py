"""The one model schema: request bodies, the stored record and responses (LISA-compatible camelCase).

Every layer (admin API, workflow steps, serve app) validates and reads models through these classes.
A body LISA's clients send is accepted as it is (``hostingType``, ``contextWindow``, ``null``
fields, ``modelUrl: ""``; examples in ``tests/support/lisa_payloads.py``). Where LISA accepts what
it later fails on, this schema refuses it up front and names the field: unknown fields (LISA ignores
them), model ids outside letters, digits, ``-``, ``.`` and ``_`` (1-128 characters), hosting fields
that do not fit the ``hostingType``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from lisa_domain.instance_types import is_instance_type
from lisa_domain.schedule import SchedulingConfig
from lisa_domain.vllm_flags import vllm_flags

#: Letters of either case, digits, '-', '.', '_' (LISA's ids keep working; no other characters, so
#: two ids never collide once AWS resource names are derived from them: see ``resource_name``).
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MODEL_ID_MAX_LENGTH = 128

#: Environment value that removes a variable in an update (LISA's convention).
MARKED_FOR_DELETION = "LISA_MARKED_FOR_DELETION"

#: A name a process environment accepts (the names of ``containerConfig.secrets``).
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: A Secrets Manager secret ARN; ``name`` is the secret's name (with the 6-character suffix AWS
#: appends, when given).
SECRET_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:(?P<name>[A-Za-z0-9/_+=.@-]+)$"
)

ModelId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MODEL_ID_MAX_LENGTH, pattern=MODEL_ID_PATTERN),
    Field(
        description="Id users call the model by: letters (either case), digits, '-', '.', '_'; "
        f"1-{MODEL_ID_MAX_LENGTH} chars."
    ),
]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1, strip_whitespace=False)]
PositiveInt = Annotated[int, Field(gt=0)]
#: Most models in a model's ``fallbacks`` (each one a backend a failing request may try in turn).
MAX_FALLBACKS = 5
FALLBACKS_DESCRIPTION = (
    "Models of the same modelType that answer, in this order, when this model's backend fails with "
    f"a retryable error (5xx, timeout, connection refused); at most {MAX_FALLBACKS}, not the model "
    "itself, no duplicates. A caller is only ever sent to a fallback open to its groups; one that is "
    "not served at the time is skipped. See docs/serve-api.md (Fallbacks)."
)
#: Minutes without a request before a model is stopped (``idleStopMinutes``).
MIN_IDLE_STOP_MINUTES = 5
IdleStopMinutes = Annotated[int, Field(ge=MIN_IDLE_STOP_MINUTES)]


class ModelType(StrEnum):
    TEXTGEN = "textgen"
    EMBEDDING = "embedding"
    IMAGEGEN = "imagegen"
    VIDEOGEN = "videogen"
    TTS = "tts"
    STT = "stt"
    RERANK = "rerank"


class HostingType(StrEnum):
    """Where a model runs (LISA's ``hostingType``)."""

    THIRD_PARTY = "third_party"
    LISA_HOSTED = "lisa_hosted"
    INTERNAL_HOSTED = "internal_hosted"


class InferenceContainer(StrEnum):
    VLLM = "vllm"
    TGI = "tgi"
    TEI = "tei"


#: The containers a self-hosted model of these types may run on (other types: any). vLLM serves
#: Whisper-style transcription and rerankers, TEI rerankers; none serves speech, so a tts model is
#: third-party (or internal_hosted with modelUrl).
SELF_HOSTED_CONTAINERS: dict[ModelType, frozenset[InferenceContainer]] = {
    ModelType.TTS: frozenset(),
    ModelType.STT: frozenset({InferenceContainer.VLLM}),
    ModelType.RERANK: frozenset({InferenceContainer.TEI, InferenceContainer.VLLM}),
}
#: Model types whose answers never stream (``streaming`` must be false).
NON_STREAMING_TYPES = frozenset({ModelType.EMBEDDING, ModelType.RERANK})


class ModelStatus(StrEnum):
    CREATING = "Creating"
    IN_SERVICE = "InService"
    UPDATING = "Updating"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    STARTING = "Starting"
    DELETING = "Deleting"
    FAILED = "Failed"


#: States from which a model may be updated, stopped, started or deleted.
UPDATABLE_STATES = frozenset({ModelStatus.IN_SERVICE, ModelStatus.STOPPED})
DELETABLE_STATES = frozenset({ModelStatus.IN_SERVICE, ModelStatus.STOPPED, ModelStatus.FAILED})
TRANSIENT_STATES = frozenset(
    {
        ModelStatus.CREATING,
        ModelStatus.UPDATING,
        ModelStatus.STOPPING,
        ModelStatus.STARTING,
        ModelStatus.DELETING,
    }
)


class StrictModel(BaseModel):
    """Base of every request body: unknown fields are rejected, not ignored. A field given as
    ``null`` is absent (its default applies), as in LISA, whose clients send null for optional fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


def _not_supported_yet(reason: str) -> Any:
    """A validator for a LISA field this API does not implement yet: setting it is a 422 with
    ``reason`` (rather than the field being silently dropped)."""

    def reject(value: Any) -> Any:
        raise ValueError(reason)

    return reject


class Feature(StrictModel):
    name: NonEmptyStr
    overview: str = ""


class ContainerImage(StrictModel):
    baseImage: NonEmptyStr
    type: Literal["asset", "ecr"]


def _check_env_names(environment: dict[str, str]) -> dict[str, str]:
    for name in environment:
        if not name.strip():
            raise ValueError("environment variable names must not be empty")
    return environment


def _normalize_health_command(command: str | list[str]) -> list[str]:
    if isinstance(command, str):
        if not command.strip():
            raise ValueError("command must not be empty")
        return ["CMD-SHELL", command]
    if (
        len(command) < 2
        or command[0] not in ("CMD", "CMD-SHELL")
        or not all(part.strip() for part in command)
    ):
        raise ValueError(
            'command must be a list starting with "CMD" or "CMD-SHELL" followed by non-empty strings'
        )
    return command


class ContainerHealthCheck(StrictModel):
    command: list[str] | str
    interval: PositiveInt = 10
    startPeriod: PositiveInt = 30
    timeout: PositiveInt = 5
    retries: PositiveInt = 3

    _command = field_validator("command")(_normalize_health_command)


def _check_secrets(secrets: dict[str, str], *, removals: bool = False) -> dict[str, str]:
    for name, arn in secrets.items():
        if not ENV_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"'{name}' is not a valid environment variable name (letters, digits, '_'; not a digit first)"
            )
        if removals and arn == MARKED_FOR_DELETION:
            continue
        if not SECRET_ARN_PATTERN.fullmatch(arn):
            raise ValueError(f"{name}: the value must be a Secrets Manager secret ARN")
    return secrets


def secret_name_of(arn: str) -> str:
    """The secret name part of a Secrets Manager ARN (``SECRET_ARN_PATTERN``)."""
    match = SECRET_ARN_PATTERN.fullmatch(arn)
    if match is None:
        raise ValueError(f"not a Secrets Manager secret ARN: {arn}")
    return match["name"]


class ContainerConfig(StrictModel):
    image: ContainerImage
    sharedMemorySize: PositiveInt = 2048
    environment: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables read from Secrets Manager when the container starts: "
        "{NAME: secretArn}. Only the ARN is stored; the secret's name must start with the "
        "deployment's MODEL_SECRET_PREFIX followed by a path containing '/'.",
    )
    healthCheckConfig: ContainerHealthCheck
    memoryReservation: PositiveInt | None = None

    _environment = field_validator("environment")(_check_env_names)
    _secrets = field_validator("secrets")(_check_secrets)

    @model_validator(mode="after")
    def _names_unique(self) -> ContainerConfig:
        both = sorted(set(self.secrets) & set(self.environment))
        if both:
            raise ValueError(f"secrets: {', '.join(both)} also set in environment (set each name once)")
        return self


class MetricConfig(StrictModel):
    albMetricName: Literal["RequestCountPerTarget", "TargetResponseTime"]
    targetValue: Annotated[float, Field(gt=0)]
    duration: PositiveInt = 60
    estimatedInstanceWarmup: PositiveInt = 300


def check_capacities(min_c: int | None, desired: int | None, max_c: int | None) -> None:
    if min_c is not None and max_c is not None and min_c > max_c:
        raise ValueError("minCapacity must be at most maxCapacity")
    if desired is not None:
        if min_c is not None and desired < min_c:
            raise ValueError("desiredCapacity must be at least minCapacity")
        if max_c is not None and desired > max_c:
            raise ValueError("desiredCapacity must be at most maxCapacity")


class AutoScalingConfig(StrictModel):
    blockDeviceVolumeSize: Annotated[int, Field(ge=30)] = 50
    minCapacity: PositiveInt
    maxCapacity: PositiveInt
    desiredCapacity: PositiveInt | None = None
    cooldown: PositiveInt = 300
    defaultInstanceWarmup: Annotated[int, Field(ge=1, le=3600)] = 300
    metricConfig: MetricConfig
    scheduling: SchedulingConfig | None = Field(
        default=None,
        description="LISA's schedule: the model runs only in its windows (see docs/cost-control.md); "
        "also set with PUT /models/{modelId}/schedule.",
    )

    @model_validator(mode="after")
    def _capacities(self) -> AutoScalingConfig:
        check_capacities(self.minCapacity, self.desiredCapacity, self.maxCapacity)
        return self


class LoadBalancerHealthCheck(StrictModel):
    path: Annotated[str, StringConstraints(pattern=r"^/")]
    interval: PositiveInt = 30
    timeout: PositiveInt = 10
    healthyThresholdCount: PositiveInt = 3
    unhealthyThresholdCount: PositiveInt = 3


class LoadBalancerConfig(StrictModel):
    healthCheckConfig: LoadBalancerHealthCheck


HOSTING_FIELDS = ("instanceType", "inferenceContainer", "containerConfig", "autoScalingConfig")


class ModelDefinition(StrictModel):
    """Fields common to a create request and the stored record (never a secret)."""

    modelId: ModelId
    modelName: NonEmptyStr
    modelType: ModelType
    modelDescription: str = ""
    modelUrl: str | None = None
    streaming: StrictBool = False
    features: list[Feature] = Field(default_factory=list)
    allowedGroups: list[NonEmptyStr] = Field(default_factory=list)
    fallbacks: list[ModelId] = Field(default_factory=list, description=FALLBACKS_DESCRIPTION)
    instanceType: str | None = None
    inferenceContainer: InferenceContainer | None = None
    containerConfig: ContainerConfig | None = None
    autoScalingConfig: AutoScalingConfig | None = None
    loadBalancerConfig: LoadBalancerConfig | None = None
    hostingType: HostingType | None = Field(
        default=None,
        description="Where the model runs; when absent, lisa_hosted for self-hosted models and "
        "third_party otherwise. internal_hosted needs modelUrl.",
    )
    idleStopMinutes: IdleStopMinutes | None = Field(
        default=None,
        description="Self-hosted models: stop the model after this many minutes without an inference "
        "request (at least 5; absent or null: never). See docs/cost-control.md.",
    )
    startOnRequest: StrictBool = Field(
        default=False,
        description="Self-hosted models: an inference request for the stopped model starts it (the "
        "request answers 503 model_starting with Retry-After until it is InService).",
    )
    contextWindow: PositiveInt | None = Field(
        default=None,
        description="Maximum input tokens. When absent, registration fills it from the container "
        "environment (VLLM_MAX_MODEL_LEN, MAX_MODEL_LEN, MAX_TOTAL_TOKENS) or, for Bedrock and "
        "external models, from a table of LiteLLM's model info; null when unknown. Shown by the "
        "serve API's /model/info as max_input_tokens.",
    )

    @field_validator("modelUrl")
    @classmethod
    def _blank_url_is_absent(cls, value: str | None) -> str | None:
        # LISA's clients send "" for "no URL" (its integration setup does for every Bedrock model).
        return value if value and value.strip() else None

    @model_validator(mode="after")
    def _consistency(self) -> ModelDefinition:
        given = [name for name in HOSTING_FIELDS if getattr(self, name) is not None]
        if given and len(given) != len(HOSTING_FIELDS):
            missing = [name for name in HOSTING_FIELDS if name not in given]
            raise ValueError(
                f"self-hosted models need all of {', '.join(HOSTING_FIELDS)}; missing: {', '.join(missing)}"
            )
        if self.loadBalancerConfig is not None and not given:
            raise ValueError(
                f"loadBalancerConfig is only for self-hosted models ({', '.join(HOSTING_FIELDS)})"
            )
        if self.modelType in NON_STREAMING_TYPES and self.streaming:
            raise ValueError(f"streaming: {self.modelType.value} models cannot stream")
        containers = SELF_HOSTED_CONTAINERS.get(self.modelType)
        if containers is not None and self.inferenceContainer not in (None, *containers):
            served_by = " or ".join(sorted(containers)) or "no self-hosted container (third-party only)"
            raise ValueError(f"inferenceContainer: {self.modelType.value} models are served by {served_by}")
        if self.hostingType == HostingType.INTERNAL_HOSTED and not self.modelUrl:
            raise ValueError("hostingType: internal_hosted models need modelUrl")
        if self.hostingType == HostingType.LISA_HOSTED and not given:
            raise ValueError(f"hostingType: lisa_hosted models need {', '.join(HOSTING_FIELDS)}")
        if not given and (self.idleStopMinutes is not None or self.startOnRequest):
            raise ValueError("idleStopMinutes and startOnRequest are only for self-hosted models")
        if self.hostingType is None:
            self.hostingType = HostingType.LISA_HOSTED if given else HostingType.THIRD_PARTY
        return self

    @property
    def self_hosted(self) -> bool:
        return self.inferenceContainer is not None


GUARDRAILS_NOT_SUPPORTED = "guardrails are not supported yet; remove guardrailsConfig"
GUARDRAILS_DESCRIPTION = "Not supported yet: setting it is a 422."


class CreateModelRequest(ModelDefinition):
    """Body of ``POST /models``. ``apiKey`` goes to Secrets Manager and is never stored here."""

    apiKey: Annotated[str, StringConstraints(min_length=1)] | None = Field(default=None, repr=False)
    guardrailsConfig: Any = Field(default=None, exclude=True, description=GUARDRAILS_DESCRIPTION)

    _guardrails = field_validator("guardrailsConfig")(_not_supported_yet(GUARDRAILS_NOT_SUPPORTED))

    @field_validator("instanceType")
    @classmethod
    def _instance_type(cls, value: str | None) -> str | None:
        # Checked on requests only: reading a stored record never loads EC2's service model.
        if value is not None and not is_instance_type(value):
            raise ValueError("not an EC2 instance type (GET /models/metadata/instances lists them)")
        return value

    @model_validator(mode="after")
    def _api_key(self) -> CreateModelRequest:
        if self.apiKey is not None and self.self_hosted:
            raise ValueError("apiKey is only for external provider models, not self-hosted ones")
        return self

    @model_validator(mode="after")
    def _vllm_settings(self) -> CreateModelRequest:
        """The vLLM variables must make valid flags (``lisa_domain.vllm_flags``; raises naming them)."""
        if self.inferenceContainer == InferenceContainer.VLLM and self.containerConfig is not None:
            vllm_flags(self.containerConfig.environment, 0)
        return self

    def definition(self) -> ModelDefinition:
        return ModelDefinition.model_validate(self.model_dump(exclude={"apiKey"}))


class AutoScalingInstanceConfig(StrictModel):
    minCapacity: PositiveInt | None = None
    maxCapacity: PositiveInt | None = None
    desiredCapacity: PositiveInt | None = None
    cooldown: PositiveInt | None = None
    defaultInstanceWarmup: Annotated[int, Field(ge=1, le=3600)] | None = None

    @model_validator(mode="after")
    def _capacities(self) -> AutoScalingInstanceConfig:
        check_capacities(self.minCapacity, self.desiredCapacity, self.maxCapacity)
        return self


class ContainerConfigUpdate(StrictModel):
    environment: dict[str, str] | None = None
    secrets: dict[str, str] | None = Field(
        default=None,
        description=f"{{NAME: secretArn}} to add or replace; {MARKED_FOR_DELETION} removes NAME.",
    )
    sharedMemorySize: PositiveInt | None = None
    healthCheckCommand: list[str] | str | None = None
    healthCheckInterval: PositiveInt | None = None
    healthCheckTimeout: PositiveInt | None = None
    healthCheckStartPeriod: PositiveInt | None = None
    healthCheckRetries: PositiveInt | None = None

    @field_validator("environment")
    @classmethod
    def _environment(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _check_env_names(value)

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return None if value is None else _check_secrets(value, removals=True)

    @field_validator("healthCheckCommand")
    @classmethod
    def _command(cls, value: list[str] | str | None) -> list[str] | None:
        return None if value is None else _normalize_health_command(value)


def _merge_variables(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    merged = dict(current)
    for name, value in (update or {}).items():
        if value == MARKED_FOR_DELETION:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def merge_container_config(current: ContainerConfig, update: ContainerConfigUpdate) -> ContainerConfig:
    """Apply an update (``LISA_MARKED_FOR_DELETION`` removes a variable or a secret).

    The result is validated again (a name set both as a variable and as a secret is a ValueError).
    """
    health = current.healthCheckConfig.model_copy(
        update={
            key: value
            for key, value in {
                "command": update.healthCheckCommand,
                "interval": update.healthCheckInterval,
                "timeout": update.healthCheckTimeout,
                "startPeriod": update.healthCheckStartPeriod,
                "retries": update.healthCheckRetries,
            }.items()
            if value is not None
        }
    )
    merged = current.model_copy(
        update={
            "environment": _merge_variables(current.environment, update.environment),
            "secrets": _merge_variables(current.secrets, update.secrets),
            "healthCheckConfig": ContainerHealthCheck.model_validate(health.model_dump()),
            "sharedMemorySize": update.sharedMemorySize or current.sharedMemorySize,
        }
    )
    return ContainerConfig.model_validate(merged.model_dump())


METADATA_UPDATE_FIELDS = (
    "modelDescription",
    "streaming",
    "allowedGroups",
    "features",
    "idleStopMinutes",
    "startOnRequest",
    "fallbacks",
)
#: Update fields where null is a value (turn the feature off), not "no change".
NULLABLE_UPDATE_FIELDS = ("idleStopMinutes",)


class UpdateModelRequest(StrictModel):
    """Body of ``PUT /models/{modelId}``: at least one field."""

    enabled: StrictBool | None = None
    modelDescription: str | None = None
    streaming: StrictBool | None = None
    allowedGroups: list[NonEmptyStr] | None = None
    fallbacks: list[ModelId] | None = Field(
        default=None, description="Replaces the model's fallbacks ([] removes them). " + FALLBACKS_DESCRIPTION
    )
    features: list[Feature] | None = None
    autoScalingInstanceConfig: AutoScalingInstanceConfig | None = None
    containerConfig: ContainerConfigUpdate | None = None
    idleStopMinutes: IdleStopMinutes | None = Field(
        default=None, description="Minutes without a request before the model stops (>= 5); null: never"
    )
    startOnRequest: StrictBool | None = None
    guardrailsConfig: Any = Field(default=None, exclude=True, description=GUARDRAILS_DESCRIPTION)

    _guardrails = field_validator("guardrailsConfig")(_not_supported_yet(GUARDRAILS_NOT_SUPPORTED))

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """As ``StrictModel``'s, except that null in a ``NULLABLE_UPDATE_FIELDS`` field is kept."""
        if isinstance(data, dict):
            return {
                key: value
                for key, value in data.items()
                if value is not None or key in NULLABLE_UPDATE_FIELDS
            }
        return data

    @model_validator(mode="after")
    def _not_empty(self) -> UpdateModelRequest:
        given = self.model_fields_set
        if not given or all(getattr(self, f) is None and f not in NULLABLE_UPDATE_FIELDS for f in given):
            raise ValueError("an update needs at least one field")
        if self.enabled is not None and self.autoScalingInstanceConfig is not None:
            raise ValueError("enabled cannot be combined with autoScalingInstanceConfig")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller set, as plain JSON (the workflow input); null only where it is a value
        (``NULLABLE_UPDATE_FIELDS``)."""
        changes = self.model_dump(mode="json", exclude_none=True)
        changes |= {
            name: None
            for name in NULLABLE_UPDATE_FIELDS
            if name in self.model_fields_set and getattr(self, name) is None
        }
        return changes


class UpdateContextWindowRequest(StrictModel):
    """Body of ``PUT /models/{modelId}/context-window``."""

    contextWindow: PositiveInt = Field(description="Maximum input tokens of the model")


class ModelRecord(ModelDefinition):
    """A model as stored in the registry and returned by the API (no secret; only the secret's ARN)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: ModelStatus
    statusReason: str | None = None
    createdAt: int = Field(description="Unix seconds")
    updatedAt: int = Field(description="Unix seconds")
    enabled: bool = True
    apiKeySecretArn: str | None = Field(default=None, exclude=True)


#: What a caller who is not an administrator sees of a model (``ModelSummary``): how to call it and
#: whether it is up, not how it is deployed (no image, environment, secrets, instance type, URLs,
#: scaling, allowed groups or status reason).
SUMMARY_FIELDS = (
    "modelId",
    "modelName",
    "modelType",
    "modelDescription",
    "streaming",
    "features",
    "contextWindow",
    "status",
    "enabled",
    "createdAt",
    "updatedAt",
)


class ModelSummary(BaseModel):
    """The reduced view of a model for callers who are not administrators."""

    modelId: str
    modelName: str
    modelType: ModelType
    modelDescription: str
    streaming: bool
    features: list[Feature]
    contextWindow: int | None = None
    status: ModelStatus
    enabled: bool
    createdAt: int = Field(description="Unix seconds")
    updatedAt: int = Field(description="Unix seconds")

    @classmethod
    def of(cls, record: ModelRecord) -> ModelSummary:
        return cls.model_validate(record.model_dump(include=set(SUMMARY_FIELDS)))


class ModelResponse(BaseModel):
    model: ModelRecord | ModelSummary = Field(
        description="The full record for administrators, the summary for everyone else."
    )


class ModelListResponse(BaseModel):
    models: list[ModelRecord | ModelSummary] = Field(
        description="Full records for administrators, summaries for everyone else."
    )
    nextToken: str | None = Field(default=None, description="Pass back as the nextToken query parameter.")


# ---- usage answers (GET /usage, GET /usage/me) ------------------------------------------------------
class UsageCounters(BaseModel):
    requests: int
    errors: int = Field(description="Requests answered with a status of 400 or more (429s included)")
    promptTokens: int
    completionTokens: int
    totalTokens: int


class UsageRow(UsageCounters):
    user: str | None = Field(default=None, description="groupBy=user")
    model: str | None = Field(default=None, description="groupBy=model")
    group: str | None = Field(
        default=None, description="groupBy=group (a user's usage counts for each of their groups)"
    )


class UsageResponse(BaseModel):
    start: str = Field(alias="from")
    to: str
    groupBy: str
    usage: list[UsageRow]
    nextToken: str | None = Field(default=None, description="Absent on the last page")


class MyUsageDay(UsageCounters):
    day: str
    model: str


class MyUsageResponse(BaseModel):
    username: str
    start: str = Field(alias="from")
    to: str
    total: UsageCounters
    usage: list[MyUsageDay]
