"""Settings read from the environment, once per process (names: docs/architecture.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def required_env(name: str, needed_by: str = "") -> str:
    """The variable's value; a clear error (naming who needs it) when it is unset or empty."""
    value = os.environ.get(name)
    if not value:
        suffix = f" (needed by {needed_by})" if needed_by else ""
        raise RuntimeError(f"environment variable {name} is not set{suffix}")
    return value


def flag_env(name: str, default: bool = False) -> bool:
    """A boolean variable: ``true``/``1``/``yes``/``on`` (any case) are true; unset is ``default``."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("true", "1", "yes", "on")


@dataclass(frozen=True)
class Settings:
    models_table: str
    tokens_table: str
    admin_group: str
    management_key_secret_arn: str | None
    model_secret_prefix: str
    create_state_machine_arn: str | None
    update_state_machine_arn: str | None
    delete_state_machine_arn: str | None
    workflow_poll_seconds: int
    workflow_max_polls: int
    #: External models' ``modelUrl`` may use http (``admin_api.model_url``).
    model_url_allow_http: bool
    #: Comma-separated CIDRs a ``modelUrl`` may resolve into although they are not public.
    model_url_allowed_cidrs: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            models_table=required_env("MODELS_TABLE_NAME"),
            tokens_table=os.environ.get("TOKENS_TABLE_NAME", ""),
            admin_group=os.environ.get("ADMIN_GROUP", "lisa-admins"),
            management_key_secret_arn=os.environ.get("MANAGEMENT_KEY_SECRET_ARN") or None,
            model_secret_prefix=os.environ.get("MODEL_SECRET_PREFIX", "lisa/models/"),
            create_state_machine_arn=os.environ.get("CREATE_MODEL_STATE_MACHINE_ARN") or None,
            update_state_machine_arn=os.environ.get("UPDATE_MODEL_STATE_MACHINE_ARN") or None,
            delete_state_machine_arn=os.environ.get("DELETE_MODEL_STATE_MACHINE_ARN") or None,
            workflow_poll_seconds=int(os.environ.get("WORKFLOW_POLL_SECONDS", "30")),
            workflow_max_polls=int(os.environ.get("WORKFLOW_MAX_POLLS", "120")),
            model_url_allow_http=flag_env("MODEL_URL_ALLOW_HTTP"),
            model_url_allowed_cidrs=os.environ.get("MODEL_URL_ALLOWED_CIDRS", ""),
        )


@cache
def settings() -> Settings:
    """The process's settings (cached: Lambda environments do not change while warm)."""
    return Settings.from_env()
