"""The stacks build every runtime's environment from its settings model (``lisa_contracts``): what
they set is exactly what the runtime declares, and synthesis fails otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template
from pydantic import Field

from lisa_contracts.settings import (
    AdminApiSettings,
    AuthorizerSettings,
    IdentitySettings,
    KeyRotationSettings,
    RuntimeSettings,
    ServeSettings,
    SettingsError,
    WorkflowStepsSettings,
)
from lisa_stacks import stacks, workflows
from lisa_stacks.application import Synthesized, synthesize
from lisa_stacks.config import EXAMPLE_CONFIG_PATH
from tests.infra.conftest import SKIP_BUNDLING

HANDLER_SETTINGS: dict[str, type[RuntimeSettings]] = {
    "authorizer.handler.lambda_handler": AuthorizerSettings,
    "admin_api.handler.lambda_handler": AdminApiSettings,
    "workflow_steps.handler.lambda_handler": WorkflowStepsSettings,
    "key_rotation.handler.lambda_handler": KeyRotationSettings,
}


def _aliases(model: type[RuntimeSettings]) -> set[str]:
    return {str(field.alias) for field in model.model_fields.values()}


def _environments(core: Template) -> dict[str, dict[str, Any]]:
    return {
        function["Properties"]["Handler"]: function["Properties"]["Environment"]["Variables"]
        for function in core.find_resources("AWS::Lambda::Function").values()
        if function["Properties"].get("Handler") in HANDLER_SETTINGS
    }


def test_every_function_gets_only_variables_its_runtime_reads(core: Template) -> None:
    environments = _environments(core)
    assert set(environments) == set(HANDLER_SETTINGS)
    for handler, variables in environments.items():
        assert set(variables) <= _aliases(HANDLER_SETTINGS[handler]), handler
        assert variables["POWERTOOLS_SERVICE_NAME"], handler
    # The variables nothing read are gone (issue 11).
    assert "API_GROUP" not in environments["authorizer.handler.lambda_handler"]
    assert environments["admin_api.handler.lambda_handler"]["API_GROUP"]
    assert all("LITELLM_LOCAL_MODEL_COST_MAP" not in variables for variables in environments.values())


def test_the_serve_container_gets_only_variables_the_serve_app_reads(serve: Template) -> None:
    (task,) = serve.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    names = {variable["Name"] for variable in container["Environment"]}
    assert names <= _aliases(ServeSettings)
    assert {"API_GROUP", "MODEL_SECRET_PREFIX"}.isdisjoint(names)
    assert {str(field.alias) for field in IdentitySettings.model_fields.values()} - names == {
        "OIDC_LEEWAY_SECONDS"
    }


def _synthesize(tmp_path: Path) -> Synthesized:
    return synthesize(context={**SKIP_BUNDLING, "config": EXAMPLE_CONFIG_PATH}, outdir=str(tmp_path))


def test_synthesis_fails_when_a_stack_sets_a_variable_the_runtime_does_not_declare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class AuthorizerWithoutOidc(RuntimeSettings):
        """The authorizer as if it read no OIDC setting."""

        RUNTIME = "authorizer"
        powertools_service_name: str | None = Field(default=None, alias="POWERTOOLS_SERVICE_NAME")
        tokens_table: str | None = Field(default=None, alias="TOKENS_TABLE_NAME")
        management_key_secret_arn: str | None = Field(default=None, alias="MANAGEMENT_KEY_SECRET_ARN")
        admin_group: str = Field(default="lisa-admins", alias="ADMIN_GROUP")
        management_key_previous_ttl_seconds: int = Field(
            default=0, alias="MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS"
        )
        oidc_groups_string: str = Field(default="one-group", alias="OIDC_GROUPS_STRING")

    monkeypatch.setattr(stacks, "AuthorizerSettings", AuthorizerWithoutOidc)
    with pytest.raises(SettingsError, match="oidc_issuer: not a variable the authorizer reads"):
        _synthesize(tmp_path)


def test_synthesis_fails_when_a_stack_misses_a_required_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class StepsNeedingMore(WorkflowStepsSettings):
        """The workflow steps as if they required one more variable."""

        model_bucket: str = Field(alias="MODEL_BUCKET_NAME", description="a new required setting")

    monkeypatch.setattr(workflows, "WorkflowStepsSettings", StepsNeedingMore)
    with pytest.raises(SettingsError, match="MODEL_BUCKET_NAME: required by the workflow steps but not set"):
        _synthesize(tmp_path)
