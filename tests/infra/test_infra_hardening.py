"""Blast radius of the workflows, model load balancer ingress, container secrets, runtime settings."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Template

from lisa_stacks.application import Synthesized
from lisa_stacks.config import EXAMPLE_CONFIG_PATH, REPO_ROOT, ConfigError, parse_config


def _statements(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    assert found, role_logical_id
    return found


def _actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def _role_id(template: Template, fragment: str) -> str:
    (role_id,) = [k for k in template.find_resources("AWS::IAM::Role") if fragment in k]
    return role_id


def _function(template: Template, handler: str) -> dict[str, Any]:
    (function,) = [
        f["Properties"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == handler
    ]
    return function


def _serve_environment(serve: Template) -> dict[str, Any]:
    (task,) = serve.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


# ---- permissions boundary on every role a model stack creates ---------------------------------
def test_model_stack_roles_carry_the_boundary(model: Template, synthesized: Synthesized) -> None:
    roles = model.find_resources("AWS::IAM::Role")
    assert roles
    name = synthesized.config.model_boundary_policy_name
    for role in roles.values():
        boundary = role["Properties"]["PermissionsBoundary"]
        assert boundary == {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{name}"}


def test_boundary_policy_exists_and_caps_the_instance_role(
    core: Template, model: Template, synthesized: Synthesized
) -> None:
    (policy,) = core.find_resources("AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["ManagedPolicyName"] == synthesized.config.model_boundary_policy_name
    allowed = set().union(*(_actions(s) for s in policy["Properties"]["PolicyDocument"]["Statement"]))
    (instance_role,) = model.find_resources("AWS::IAM::Role").values()
    used = set().union(
        *(
            _actions(s)
            for p in instance_role["Properties"]["Policies"]
            for s in p["PolicyDocument"]["Statement"]
        )
    )
    assert used == allowed


def test_model_stack_role_creates_only_bounded_roles(core: Template) -> None:
    (boundary_id,) = core.find_resources("AWS::IAM::ManagedPolicy")
    bounded = {"iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"}
    statements = _statements(core, _role_id(core, "ModelStackRole"))
    for statement in statements:
        if _actions(statement) & bounded:
            assert _actions(statement) <= bounded
            assert statement["Condition"] == {
                "StringEquals": {"iam:PermissionsBoundary": {"Ref": boundary_id}}
            }
    everything = set().union(*(_actions(s) for s in statements))
    assert bounded <= everything
    # No way to widen a role other than through the bounded actions above.
    widening = {"iam:AttachRolePolicy", "iam:DeleteRolePermissionsBoundary", "iam:UpdateAssumeRolePolicy"}
    assert not widening & everything


# ---- the step Lambda creates stacks only from the synthesized template -------------------------
def test_stack_calls_are_pinned_to_the_template_url_and_stack_role(core: Template) -> None:
    steps = _function(core, "workflow_steps.handler.lambda_handler")
    url = steps["Environment"]["Variables"]["MODEL_STACK_TEMPLATE_URL"]
    stack_role = steps["Environment"]["Variables"]["MODEL_STACK_ROLE_ARN"]
    statements = _statements(core, steps["Role"]["Fn::GetAtt"][0])
    creating = [
        s for s in statements if _actions(s) & {"cloudformation:CreateStack", "cloudformation:UpdateStack"}
    ]
    assert len(creating) == 1
    assert creating[0]["Condition"] == {
        "StringEquals": {"cloudformation:TemplateUrl": url, "cloudformation:RoleArn": stack_role}
    }
    (deleting,) = [s for s in statements if "cloudformation:DeleteStack" in _actions(s)]
    assert deleting["Condition"] == {"StringEqualsIfExists": {"cloudformation:RoleArn": stack_role}}


# ---- model load balancers admit only the serve tasks ------------------------------------------
def test_model_load_balancer_admits_only_the_serve_security_group(model: Template) -> None:
    parameters = model.to_json()["Parameters"]
    assert parameters["ServeSecurityGroupId"]["Type"] == "AWS::EC2::SecurityGroup::Id"
    assert "VpcCidr" not in parameters
    groups = model.find_resources("AWS::EC2::SecurityGroup")
    rules = [rule for g in groups.values() for rule in g["Properties"].get("SecurityGroupIngress", [])]
    assert not any("CidrIp" in rule or "CidrIpv6" in rule for rule in rules)
    assert {"Ref": "ServeSecurityGroupId"} in [rule.get("SourceSecurityGroupId") for rule in rules]


def test_serve_tasks_use_the_core_security_group_the_workflow_hands_on(
    core: Template, serve: Template
) -> None:
    steps = _function(core, "workflow_steps.handler.lambda_handler")["Environment"]["Variables"]
    (group_id,) = [k for k in core.find_resources("AWS::EC2::SecurityGroup") if "ServeSecurityGroup" in k]
    assert steps["SERVE_SECURITY_GROUP_ID"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    (service,) = serve.find_resources("AWS::ECS::Service").values()
    (used,) = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
    assert group_id in used["Fn::ImportValue"]
    # The load balancer reaches the tasks through a rule in the serve stack (no core -> serve cycle).
    (ingress,) = serve.find_resources("AWS::EC2::SecurityGroupIngress").values()
    assert group_id in ingress["Properties"]["GroupId"]["Fn::ImportValue"]
    assert ingress["Properties"]["FromPort"] == ingress["Properties"]["ToPort"] == 8080


# ---- container secrets --------------------------------------------------------------------------
def test_model_execution_role_reads_only_model_secrets(core: Template, synthesized: Synthesized) -> None:
    statements = _statements(core, _role_id(core, "ModelTaskExecutionRole"))
    (secrets,) = [s for s in statements if any(a.startswith("secretsmanager:") for a in _actions(s))]
    assert _actions(secrets) == {"secretsmanager:GetSecretValue"}
    resource = str(secrets["Resource"])
    assert f":secret:{synthesized.config.model_secret_prefix}*" in resource


# ---- runtime settings from the config ------------------------------------------------------------
def _example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO_ROOT / EXAMPLE_CONFIG_PATH).read_text())
    return data


def test_plain_http_needs_an_explicit_opt_in() -> None:
    data = _example()
    assert data["serve"]["allowInsecureHttp"] is True  # the example says it, with a comment
    data["serve"] = {k: v for k, v in data["serve"].items() if k != "allowInsecureHttp"}
    with pytest.raises(ConfigError, match=r"serve\.certificateArn is required") as info:
        parse_config(data)
    assert "serve.allowInsecureHttp" in str(info.value)
    without_serve = {k: v for k, v in _example().items() if k != "serve"}
    with pytest.raises(ConfigError, match=r"serve\.certificateArn is required"):
        parse_config(without_serve)
    with_certificate = {
        **data,
        "serve": {**data["serve"], "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"},
    }
    assert parse_config(with_certificate).serve.allowInsecureHttp is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"oidc": {"issuer": "https://x", "clientId": "y", "groupsClaimString": "split"}},
            "oidc.groupsClaimString",
        ),
        ({"modelUrlPolicy": {"allowedCidrs": ["10.0.0.1/8"]}}, "modelUrlPolicy.allowedCidrs.0"),
        ({"serve": {"allowInsecureHttp": True, "requestLimits": {"maxN": 0}}}, "serve.requestLimits.maxN"),
        ({"managementKey": {"previousVersionValidHours": 9999}}, "managementKey.previousVersionValidHours"),
    ],
)
def test_invalid_runtime_settings_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**_example(), **change})
    assert f"config error in {field}:" in str(info.value)


def test_previous_key_validity_must_fit_the_rotation() -> None:
    data = {**_example(), "managementKeyRotationDays": 1, "managementKey": {"previousVersionValidHours": 25}}
    with pytest.raises(ConfigError, match="previousVersionValidHours must be at most"):
        parse_config(data)


def test_runtime_settings_reach_the_containers_and_functions(
    core: Template, serve: Template, synthesized: Synthesized
) -> None:
    config = synthesized.config
    limits = config.serve.requestLimits
    previous_ttl = str(config.managementKey.previousVersionValidHours * 3600)
    environment = _serve_environment(serve)
    assert {
        "LISA_SERVE_MAX_N": str(limits.maxN),
        "LISA_SERVE_MAX_BEST_OF": str(limits.maxBestOf),
        "LISA_SERVE_MAX_TOKENS": str(limits.maxTokens),
        "LISA_SERVE_MAX_GUIDED_BYTES": str(limits.maxGuidedDecodingBytes),
        "LISA_SERVE_MAX_AUDIO_BYTES": str(limits.maxAudioUploadBytes),
        "LISA_SERVE_ALLOW_MANAGEMENT_KEY": "false",
        "MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS": previous_ttl,
        "OIDC_GROUPS_STRING": config.oidc.groupsClaimString,
    }.items() <= environment.items()
    authorizer = _function(core, "authorizer.handler.lambda_handler")["Environment"]["Variables"]
    assert authorizer["MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS"] == previous_ttl
    assert authorizer["OIDC_GROUPS_STRING"] == "one-group"
    admin = _function(core, "admin_api.handler.lambda_handler")["Environment"]["Variables"]
    assert admin["MODEL_URL_ALLOW_HTTP"] == "false"
    assert admin["MODEL_URL_ALLOWED_CIDRS"] == ""
