"""The contracts between the parts (``lambdas/lisa_contracts``): settings models, shared names, the
generated environment table, and no environment reading outside the settings package."""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from lisa_contracts import envdoc
from lisa_contracts.names import WORKFLOW_STEPS, WORKFLOWS
from lisa_contracts.settings import (
    RUNTIMES,
    AdminApiSettings,
    AuthorizerSettings,
    IdentitySettings,
    RuntimeSettings,
    ServeSettings,
    SettingsError,
    WorkflowStepsSettings,
)
from lisa_domain.oidc import OidcSettings
from serve.config import RequestLimits, ServeConfig
from tests.support.lambda_state import fresh_admin_api, fresh_authorizer, fresh_key_rotation
from workflow_steps.handler import STEPS
from workflow_steps.hosting.ecs import EcsSettings

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_CODE = (ROOT / "lambdas", ROOT / "litellm_container")
CONTRACTS = ROOT / "lambdas" / "lisa_contracts"
ENV_ACCESS = re.compile(r"\bos\.(environ|getenv|putenv|unsetenv)\b|\bfrom os import\b.*\b(environ|getenv)\b")


# ---- item 3: one reader of the environment ------------------------------------------------------
def test_no_runtime_code_reads_the_environment_outside_the_settings_package() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in RUNTIME_CODE
        for path in sorted(folder.rglob("*.py"))
        if CONTRACTS not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ENV_ACCESS.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("module_name", "fresh"),
    [
        ("admin_api.wiring", fresh_admin_api),
        ("authorizer.handler", fresh_authorizer),
        ("key_rotation.handler", fresh_key_rotation),
    ],
)
def test_a_fresh_container_in_tests_forgets_everything_the_handler_caches(
    module_name: str, fresh: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handlers have no test-only reset hook; tests/support/lambda_state.py forgets every cached
    module-level object (each a private annotated global) so the next request builds it again."""
    module = importlib.import_module(module_name)
    assert not hasattr(module, "reset")
    cached = [name for name in vars(module).get("__annotations__", {}) if name.startswith("_")]
    assert cached, module_name
    for name in cached:
        monkeypatch.setattr(module, name, object())
    fresh()
    assert {name: getattr(module, name) for name in cached} == dict.fromkeys(cached)


def test_the_grep_pattern_catches_every_form_of_environment_access() -> None:
    for line in ('os.environ.get("X")', "os.environ['X']", 'os.getenv("X")', "from os import environ"):
        assert ENV_ACCESS.search(line), line
    assert not ENV_ACCESS.search("os.sched_getaffinity(0)")


def test_the_environment_table_in_the_architecture_doc_is_current() -> None:
    document = envdoc.DOC_PATH.read_text()
    assert envdoc.render(document) == document, "run: cd lambdas && python -m lisa_contracts.envdoc"
    assert envdoc.main(["--check"]) == 0


def test_a_stale_environment_table_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "architecture.md"
    stale.write_text(envdoc.DOC_PATH.read_text().replace("`MODELS_TABLE_NAME`", "`MODELS_TABLE`", 1))
    monkeypatch.setattr(envdoc, "DOC_PATH", stale)
    assert envdoc.main(["--check"]) == 1
    assert envdoc.main([]) == 0
    assert envdoc.main(["--check"]) == 0
    assert "`MODELS_TABLE_NAME`" in stale.read_text()


def test_every_variable_of_every_runtime_is_documented() -> None:
    table = envdoc.table()
    for model in RUNTIMES:
        for field in model.model_fields.values():
            assert f"| `{field.alias}` |" in table


# ---- item 1: the settings models ----------------------------------------------------------------
def test_unset_and_blank_variables_take_the_one_default() -> None:
    blank = AdminApiSettings.from_env({"MODELS_TABLE_NAME": "models", "ADMIN_GROUP": "  ", "API_GROUP": ""})
    assert (blank.admin_group, blank.api_group, blank.token_max_lifetime_days) == ("lisa-admins", None, 90)
    assert IdentitySettings.from_env({}).admin_group == blank.admin_group
    assert ServeSettings.from_env({"MODELS_TABLE_NAME": "m"}).admin_group == blank.admin_group


@pytest.mark.parametrize(
    ("model", "env", "message"),
    [
        (AdminApiSettings, {}, "MODELS_TABLE_NAME: required by the admin API but not set"),
        (AdminApiSettings, {"MODELS_TABLE_NAME": "m", "WORKFLOW_MAX_POLLS": "0"}, "WORKFLOW_MAX_POLLS"),
        (
            AdminApiSettings,
            {"MODELS_TABLE_NAME": "m", "MODEL_URL_ALLOW_HTTP": "maybe"},
            "MODEL_URL_ALLOW_HTTP",
        ),
        (ServeSettings, {"MODELS_TABLE_NAME": "m", "LISA_SERVE_MAX_N": "0"}, "LISA_SERVE_MAX_N"),
        (ServeSettings, {"MODELS_TABLE_NAME": "m", "LISA_SERVE_PORT": "x"}, "LISA_SERVE_PORT"),
        (AuthorizerSettings, {"MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS": "-1"}, "MANAGEMENT_KEY_PREVIOUS_TTL"),
    ],
)
def test_a_bad_variable_fails_at_start_naming_it(
    model: type[RuntimeSettings], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        model.from_env(env)


def test_to_env_gives_only_what_was_set_and_reads_back_the_same() -> None:
    built = AdminApiSettings.build(
        models_table="models", model_url_allow_http=True, workflow_poll_seconds=2, model_url_allowed_cidrs=""
    )
    env = built.to_env()
    assert env == {
        "MODELS_TABLE_NAME": "models",
        "MODEL_URL_ALLOW_HTTP": "true",
        "WORKFLOW_POLL_SECONDS": "2",
        "MODEL_URL_ALLOWED_CIDRS": "",
    }
    assert AdminApiSettings.from_env(env) == built
    serve = ServeSettings.build(models_table="m", keep_alive_seconds=620, registry_poll_seconds=0.05)
    assert serve.to_env()["LISA_SERVE_KEEP_ALIVE_SECONDS"] == "620"
    assert ServeSettings.from_env(serve.to_env()) == serve


def test_building_a_runtimes_settings_refuses_unknown_and_requires_required_variables() -> None:
    with pytest.raises(SettingsError, match="api_group: not a variable the authorizer reads"):
        AuthorizerSettings.build(api_group="lisa-users")
    with pytest.raises(SettingsError, match="MODELS_TABLE_NAME: required by the workflow steps"):
        WorkflowStepsSettings.build(hosting_backend="ecs")
    assert AuthorizerSettings.build(ADMIN_GROUP="ops").admin_group == "ops"  # by variable name too


def test_removed_variables_are_declared_by_no_runtime_that_never_read_them() -> None:
    def names(model: type[RuntimeSettings]) -> set[str]:
        return {str(field.alias) for field in model.model_fields.values()}

    assert "API_GROUP" not in names(AuthorizerSettings) | names(ServeSettings)
    assert "MODEL_SECRET_PREFIX" not in names(ServeSettings)
    assert all(
        "LITELLM_LOCAL_MODEL_COST_MAP" not in names(model) for model in RUNTIMES if model is not ServeSettings
    )


def test_the_serve_config_is_the_serve_settings_model() -> None:
    config = ServeConfig.from_env({"MODELS_TABLE_NAME": "m", "LISA_SERVE_MAX_TOKENS": "100"})
    assert isinstance(config, ServeSettings)
    assert config.request_limits == RequestLimits(max_tokens=100)
    assert RequestLimits() == ServeConfig(models_table="m").request_limits


def test_oidc_and_ecs_settings_come_from_the_runtime_models() -> None:
    oidc = OidcSettings.from_settings(
        IdentitySettings.build(oidc_issuer="https://idp.example.com", oidc_client_id="lisa")
    )
    assert oidc is not None and (oidc.issuer, oidc.client_id, oidc.leeway_seconds) == (
        "https://idp.example.com",
        "lisa",
        60,
    )
    with pytest.raises(RuntimeError, match=r"MODEL_STACK_TEMPLATE_URL, MODEL_STACK_PREFIX.*ECS hosting"):
        EcsSettings.from_settings(WorkflowStepsSettings.build(models_table="m", model_vpc_id="vpc-1"))
    steps = WorkflowStepsSettings.from_env(
        {"MODELS_TABLE_NAME": "m", "AWS_DEFAULT_REGION": "eu-west-1"}
        | {str(WorkflowStepsSettings.model_fields[name].alias): "x" for name in _ECS_FIELDS}
    )
    assert EcsSettings.from_settings(steps).region == "eu-west-1"


_ECS_FIELDS = (
    "model_stack_template_url",
    "model_stack_prefix",
    "model_vpc_id",
    "model_subnet_ids",
    "serve_security_group_id",
    "model_task_execution_role_arn",
    "model_task_role_arn",
)


# ---- shared names -------------------------------------------------------------------------------
def test_workflow_step_names_match_the_definitions_and_the_task_lambda() -> None:
    definitions = ROOT / "lambdas" / "workflow_steps" / "definitions"
    for workflow in WORKFLOWS:
        text = (definitions / f"{workflow}.asl.json").read_text()
        steps = set(re.findall(r'"step"\s*:\s*"([A-Za-z]+)"', text))
        assert steps == set(WORKFLOW_STEPS[workflow]), workflow
        json.loads(text)
    assert set(STEPS) == {step for steps in WORKFLOW_STEPS.values() for step in steps}


# ---- item 6: libraries instead of hand-written code ----------------------------------------------
class _CountingSecrets:
    def __init__(self) -> None:
        self.calls = 0

    def get_secret_value(self, **kwargs: str) -> dict[str, str]:
        self.calls += 1
        return {"SecretString": f"key-{self.calls}", "ARN": kwargs["SecretId"]}


def test_provider_keys_are_cached_by_powertools_for_the_ttl() -> None:
    from serve.follower import SecretCache

    client = _CountingSecrets()
    cache = SecretCache(client, ttl=300)
    assert cache.get("arn:1") == cache.get("arn:1") == "key-1"
    assert (cache.get("arn:2"), client.calls) == ("key-2", 2)
    uncached = SecretCache(_CountingSecrets(), ttl=0)
    assert (uncached.get("arn:1"), uncached.get("arn:1")) == ("key-1", "key-2")
