"""One settings model per runtime: the environment each part reads, with every default in one place.

A field's alias is its environment variable. The runtimes build their model once with
``from_env()``; the CDK stacks, local mode and tests build the same model with field names and hand
``to_env()`` to the function or container, so a variable a runtime does not declare, or a missing
required one, fails at construction (synthesis) instead of at run time. ``docs/architecture.md``
embeds the table ``python -m lisa_contracts.envdoc`` writes from these models.

Plain pydantic models, not pydantic-settings: the admin API's cold start has a budget, and
pydantic-settings costs about 35 ms more to import than the ``from_env`` below needs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_ADMIN_GROUP = "lisa-admins"
DEFAULT_MODEL_SECRET_PREFIX = "lisa/models/"
DEFAULT_PREVIOUS_KEY_TTL_SECONDS = 86_400
DEFAULT_OIDC_LEEWAY_SECONDS = 60
DEFAULT_TOKEN_MAX_LIFETIME_DAYS = 90
MAX_TOKEN_MAX_LIFETIME_DAYS = 3650
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: OpenAI's limit for an audio upload.
DEFAULT_MAX_AUDIO_BYTES = 25 * 1024 * 1024

#: What reads a field that is not read by our code (the documentation's "read by" column).
READ_BY_LIBRARY = "read_by"


class SettingsError(ValueError):
    """A variable that is set to something its runtime cannot use (names the variable)."""


def _library(name: str) -> dict[str, Any]:
    return {READ_BY_LIBRARY: name}


class RuntimeSettings(BaseModel):
    """Base of every runtime's settings: frozen, unknown names refused, built by field name or alias."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    #: The runtime's name in errors and in the documentation.
    RUNTIME: ClassVar[str] = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings ``environ`` (default: the process environment) describes; unset or blank
        variables take the field's default. Raises ``SettingsError`` naming the variable."""
        env = os.environ if environ is None else environ
        values = {}
        for field in cls.model_fields.values():
            alias = field.alias or ""
            raw = env.get(alias)
            if raw is not None and raw.strip():
                values[alias] = raw.strip()
        return cls.build(**values)

    @classmethod
    def build(cls, **values: Any) -> Self:
        """The model from field names or environment names; ``SettingsError`` names each problem."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise SettingsError(cls._describe(error)) from None

    @classmethod
    def _describe(cls, error: ValidationError) -> str:
        aliases = {name: field.alias or name for name, field in cls.model_fields.items()}
        problems = []
        for item in error.errors(include_url=False, include_input=False):
            location = str(item["loc"][0]) if item["loc"] else ""
            name = aliases.get(location, location)
            if item["type"] == "extra_forbidden":
                problems.append(f"{name}: not a variable the {cls.RUNTIME} reads")
            elif item["type"] == "missing":
                problems.append(f"{name}: required by the {cls.RUNTIME} but not set")
            else:
                problems.append(f"{name}: {item['msg']}")
        return "; ".join(problems)

    def to_env(self) -> dict[str, str]:
        """The variables given when this model was built (defaults stay in the runtime), as strings."""
        env: dict[str, str] = {}
        for name in sorted(self.model_fields_set):
            value = getattr(self, name)
            if value is None:
                continue
            alias = type(self).model_fields[name].alias or name
            if isinstance(value, bool):
                env[alias] = "true" if value else "false"
            elif isinstance(value, float) and value.is_integer():
                env[alias] = str(int(value))
            else:
                env[alias] = str(value)
        return env


def _env(alias: str, description: str, **kwargs: Any) -> Any:
    return Field(alias=alias, description=description, **kwargs)


def _optional(alias: str, description: str, **kwargs: Any) -> Any:
    return Field(default=None, alias=alias, description=description, **kwargs)


# ---- shared groups of fields --------------------------------------------------------------------
class LambdaSettings(RuntimeSettings):
    powertools_service_name: str | None = _optional(
        "POWERTOOLS_SERVICE_NAME",
        "service name in logs and traces (the construct id)",
        json_schema_extra=_library("Powertools"),
    )


class IdentitySettings(RuntimeSettings):
    """How credentials are checked: the authorizer and the serve app (``lisa_domain.auth``, ``oidc``)."""

    RUNTIME: ClassVar[str] = "credential check"

    tokens_table: str | None = _optional(
        "TOKENS_TABLE_NAME", "API tokens table (unset: API tokens are refused)"
    )
    management_key_secret_arn: str | None = _optional(
        "MANAGEMENT_KEY_SECRET_ARN", "Secrets Manager secret holding the management key (unset: refused)"
    )
    admin_group: str = _env("ADMIN_GROUP", "group whose members are admins", default=DEFAULT_ADMIN_GROUP)
    management_key_previous_ttl_seconds: int = _env(
        "MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS",
        "how long AWSPREVIOUS stays valid after the current version was created (0: never)",
        default=DEFAULT_PREVIOUS_KEY_TTL_SECONDS,
        ge=0,
    )
    oidc_issuer: str | None = _optional(
        "OIDC_ISSUER", "OIDC issuer (unset: JWTs are refused); see docs/identity.md"
    )
    oidc_client_id: str | None = _optional(
        "OIDC_CLIENT_ID", "audience every JWT must name (required with an issuer)"
    )
    oidc_username_claim: str = _env("OIDC_USERNAME_CLAIM", "claim holding the username", default="sub")
    oidc_groups_claim: str = _env(
        "OIDC_GROUPS_CLAIM",
        "claim holding the groups (a dotted path reaches nested claims)",
        default="groups",
    )
    oidc_leeway_seconds: int = _env(
        "OIDC_LEEWAY_SECONDS", "clock skew allowed on exp/nbf/iat", default=DEFAULT_OIDC_LEEWAY_SECONDS
    )
    oidc_groups_string: str = _env(
        "OIDC_GROUPS_STRING",
        "a groups claim that is one string: `one-group` (that group) or `reject` (no groups)",
        default="one-group",
    )


class ModelsTableSettings(RuntimeSettings):
    models_table: str = _env("MODELS_TABLE_NAME", "models table (also holds the registry-version item)")


class ModelSecretSettings(RuntimeSettings):
    model_secret_prefix: str = _env(
        "MODEL_SECRET_PREFIX",
        "name prefix of provider-key secrets (`<prefix><modelId>`) and container secrets (`<prefix><path>`)",
        default=DEFAULT_MODEL_SECRET_PREFIX,
    )


class WorkflowPollSettings(RuntimeSettings):
    """What every workflow execution input carries (whoever starts it)."""

    workflow_poll_seconds: int = _env(
        "WORKFLOW_POLL_SECONDS", "wait between polls, passed into every execution input", default=30, ge=0
    )
    workflow_max_polls: int = _env(
        "WORKFLOW_MAX_POLLS", "bound on polls, passed into every execution input", default=120, ge=1
    )


# ---- one model per runtime ----------------------------------------------------------------------
class AuthorizerSettings(LambdaSettings, IdentitySettings):
    RUNTIME: ClassVar[str] = "authorizer"


class AdminApiSettings(LambdaSettings, WorkflowPollSettings, ModelSecretSettings, ModelsTableSettings):
    RUNTIME: ClassVar[str] = "admin API"

    tokens_table: str = _env("TOKENS_TABLE_NAME", "API tokens table", default="")
    admin_group: str = _env("ADMIN_GROUP", "group whose members are admins", default=DEFAULT_ADMIN_GROUP)
    api_group: str | None = _optional(
        "API_GROUP", "group whose members may create API tokens for themselves (unset: admins only)"
    )
    token_max_lifetime_days: int = _env(
        "TOKEN_MAX_LIFETIME_DAYS",
        "default and maximum API-token lifetime",
        default=DEFAULT_TOKEN_MAX_LIFETIME_DAYS,
        ge=1,
        le=MAX_TOKEN_MAX_LIFETIME_DAYS,
    )
    create_state_machine_arn: str | None = _optional("CREATE_MODEL_STATE_MACHINE_ARN", "create workflow")
    update_state_machine_arn: str | None = _optional("UPDATE_MODEL_STATE_MACHINE_ARN", "update workflow")
    delete_state_machine_arn: str | None = _optional("DELETE_MODEL_STATE_MACHINE_ARN", "delete workflow")
    model_url_allow_http: bool = _env(
        "MODEL_URL_ALLOW_HTTP", "an external model's `modelUrl` may use http (else https only)", default=False
    )
    usage_table: str = _env("USAGE_TABLE_NAME", "usage table (`GET /usage`)", default="")
    usage_limits: str = _env(
        "LISA_USAGE_LIMITS",
        "rate limits and monthly token budgets, JSON (a token's `rateLimit` may not exceed its owner's)",
        default="",
    )
    model_subnet_ids: str = _env(
        "MODEL_SUBNET_IDS",
        "comma-separated subnets self-hosted models run in: creates, starts and dry runs check the "
        "instance type's offerings in their zones and the vCPU quota (empty: not checked, local mode)",
        default="",
    )
    cors_origins: str = _env(
        "CORS_ALLOWED_ORIGINS",
        "comma-separated origins (the console's) whose browsers may call the API (CORS); empty: none",
        default="",
    )
    model_url_allowed_cidrs: str = _env(
        "MODEL_URL_ALLOWED_CIDRS",
        "comma-separated CIDRs a `modelUrl` host may resolve into although not public "
        "(local mode: `127.0.0.0/8,::1/128`)",
        default="",
    )


class WorkflowStepsSettings(LambdaSettings, ModelSecretSettings, ModelsTableSettings):
    """The ECS fields are required only by the ECS hosting backend (checked when it is built)."""

    RUNTIME: ClassVar[str] = "workflow steps"

    hosting_backend: str = _env("HOSTING_BACKEND", "`ecs`, or `local` (local mode)", default="ecs")
    model_stack_template_url: str | None = _optional(
        "MODEL_STACK_TEMPLATE_URL", "S3 URL of the per-model template"
    )
    model_stack_prefix: str | None = _optional("MODEL_STACK_PREFIX", "per-model stack name prefix")
    model_stack_role_arn: str | None = _optional(
        "MODEL_STACK_ROLE_ARN", "CloudFormation service role of model stacks"
    )
    model_vpc_id: str | None = _optional("MODEL_VPC_ID", "VPC of model stacks")
    model_subnet_ids: str | None = _optional("MODEL_SUBNET_IDS", "comma-separated subnets of model stacks")
    serve_security_group_id: str | None = _optional(
        "SERVE_SECURITY_GROUP_ID", "serve tasks' security group (the only source model ALBs admit)"
    )
    model_task_execution_role_arn: str | None = _optional(
        "MODEL_TASK_EXECUTION_ROLE_ARN", "task execution role of model task definitions"
    )
    model_task_role_arn: str | None = _optional("MODEL_TASK_ROLE_ARN", "task role of model task definitions")
    model_log_group_name: str | None = _optional("MODEL_LOG_GROUP_NAME", "awslogs group of model containers")
    aws_region: str | None = _optional(
        "AWS_REGION",
        "region of the model containers' awslogs (set by Lambda itself)",
        json_schema_extra=_library("Lambda"),
    )
    aws_default_region: str | None = _optional(
        "AWS_DEFAULT_REGION", "fallback for `AWS_REGION`", json_schema_extra=_library("boto3")
    )

    @property
    def region(self) -> str | None:
        return self.aws_region or self.aws_default_region


class KeyRotationSettings(LambdaSettings):
    RUNTIME: ClassVar[str] = "key rotation"


class SchedulerSettings(LambdaSettings, WorkflowPollSettings, ModelSecretSettings, ModelsTableSettings):
    """The cost-control evaluator (``scheduler``): starts and stops models through the update workflow."""

    RUNTIME: ClassVar[str] = "cost-control evaluator"

    update_state_machine_arn: str = _env("UPDATE_MODEL_STATE_MACHINE_ARN", "update workflow (start, stop)")
    idle_minute_seconds: float = _env(
        "LISA_LOCAL_IDLE_MINUTE_SECONDS",
        "local mode only (never set by the CDK app): seconds in one minute of `idleStopMinutes`, "
        "to see idle stops quickly on one machine",
        default=60.0,
        gt=0,
        le=60,
    )


class ServeSettings(ModelsTableSettings, IdentitySettings):
    """The serve container (``litellm_container/serve/config.py`` adds behaviour, not fields)."""

    RUNTIME: ClassVar[str] = "serve app"

    host: str = _env("LISA_SERVE_HOST", "listen address", default="127.0.0.1")
    cors_origins: str = _env(
        "LISA_SERVE_CORS_ORIGINS",
        "comma-separated origins (the console's) whose browsers may call the API (CORS); empty: none",
        default="",
    )
    port: int = _env("LISA_SERVE_PORT", "listen port (0: any free port)", default=8080, ge=0)
    registry_poll_seconds: float = _env(
        "LISA_SERVE_REGISTRY_POLL_SECONDS", "how often the registry version is read", default=0.25, ge=0.01
    )
    registry_stale_seconds: float = _env(
        "LISA_SERVE_REGISTRY_STALE_SECONDS",
        "readiness reports `stale` (still 200) when the registry was unreadable this long",
        default=10.0,
        ge=0.1,
    )
    tokens_poll_seconds: float = _env(
        "LISA_SERVE_TOKENS_POLL_SECONDS",
        "how often the tokens table's version is read (token changes reach the replica within it)",
        default=0.25,
        ge=0.01,
    )
    tokens_resync_seconds: float = _env(
        "LISA_SERVE_TOKENS_RESYNC_SECONDS",
        "every this many seconds the replica reloads every token",
        default=300.0,
        ge=1,
    )
    backend_timeout_seconds: float = _env(
        "LISA_SERVE_BACKEND_TIMEOUT_SECONDS",
        "wait for a model backend (connect, and between any two bytes)",
        default=300.0,
        ge=0.1,
    )
    backend_retries: int = _env("LISA_SERVE_BACKEND_RETRIES", "LiteLLM retries per request", default=0, ge=0)
    max_body_bytes: int = _env(
        "LISA_SERVE_MAX_BODY_BYTES", "larger request bodies get 413", default=DEFAULT_MAX_BODY_BYTES, ge=1
    )
    max_audio_bytes: int = _env(
        "LISA_SERVE_MAX_AUDIO_BYTES",
        "larger transcription uploads (the whole multipart body) get 413",
        default=DEFAULT_MAX_AUDIO_BYTES,
        ge=1,
    )
    max_n: int = _env("LISA_SERVE_MAX_N", "most choices per request (`n`)", default=8, ge=1)
    max_best_of: int = _env(
        "LISA_SERVE_MAX_BEST_OF", "most candidates per completion (`best_of`)", default=8, ge=1
    )
    max_tokens: int = _env(
        "LISA_SERVE_MAX_TOKENS", "most tokens per choice (`max_tokens` and the like)", default=32768, ge=1
    )
    max_guided_bytes: int = _env(
        "LISA_SERVE_MAX_GUIDED_BYTES",
        "largest guided-decoding field, bytes of compact JSON",
        default=65536,
        ge=1,
    )
    usage_flush_seconds: float = _env(
        "LISA_SERVE_USAGE_FLUSH_SECONDS",
        "how often a replica writes the models' `lastUsedAt` (at most one write per model each time); "
        "below 60 only in local mode (`LISA_LOCAL_IDLE_MINUTE_SECONDS`)",
        default=60.0,
        gt=0,
        le=60,
    )
    usage_table: str | None = _optional(
        "USAGE_TABLE_NAME", "usage table: metering, rate-limit leases, budgets (unset: no metering)"
    )
    metering_flush_seconds: float = _env(
        "LISA_SERVE_METERING_FLUSH_SECONDS",
        "how often a replica writes its usage aggregates (a crash loses at most this window)",
        default=10.0,
        gt=0,
        le=10,
    )
    metrics: bool = _env(
        "LISA_SERVE_METRICS", "print per-model CloudWatch EMF metrics on stdout at each flush", default=False
    )
    usage_limits: str = _env(
        "LISA_USAGE_LIMITS",
        "rate limits and monthly token budgets, JSON (`lisa_contracts.limits`; empty: none)",
        default="",
    )
    auth_cache_seconds: float = _env(
        "LISA_SERVE_AUTH_CACHE_SECONDS",
        "how long a successful management-key authentication is reused (0: never)",
        default=0.0,
        ge=0,
    )
    allow_management_key: bool = _env(
        "LISA_SERVE_ALLOW_MANAGEMENT_KEY", "the management key is accepted on the serve API", default=False
    )
    access_log: bool = _env("LISA_SERVE_ACCESS_LOG", "uvicorn access log", default=True)
    log_level: str = _env("LISA_SERVE_LOG_LEVEL", "log level", default="info")
    keep_alive_seconds: float = _env(
        "LISA_SERVE_KEEP_ALIVE_SECONDS",
        "idle keep-alive (longer than the ALB's idle timeout)",
        default=75.0,
        ge=1,
    )
    graceful_shutdown_seconds: float = _env(
        "LISA_SERVE_GRACEFUL_SHUTDOWN_SECONDS", "wait for in-flight requests on SIGTERM", default=25.0, ge=0
    )
    workers: int = _env(
        "LISA_SERVE_WORKERS", "uvicorn worker processes (0: one per available CPU)", default=0, ge=0
    )
    aws_default_region: str | None = _optional(
        "AWS_DEFAULT_REGION", "region", json_schema_extra=_library("boto3")
    )
    litellm_local_model_cost_map: bool | None = _optional(
        "LITELLM_LOCAL_MODEL_COST_MAP",
        "use LiteLLM's bundled cost map (never fetch it); the app sets it when unset",
        json_schema_extra=_library("LiteLLM"),
    )

    @field_validator("log_level")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


#: Every runtime's model, in the documentation's order.
RUNTIMES: tuple[type[RuntimeSettings], ...] = (
    AuthorizerSettings,
    AdminApiSettings,
    WorkflowStepsSettings,
    KeyRotationSettings,
    SchedulerSettings,
    ServeSettings,
)


def litellm_offline() -> None:
    """Keep LiteLLM from fetching its cost map at import (call before ``import litellm``)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
