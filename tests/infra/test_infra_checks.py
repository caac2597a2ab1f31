"""cfn-lint and cdk-nag over every synthesized template; config validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lisa_stacks.application import Synthesized, synthesize
from lisa_stacks.config import EXAMPLE_CONFIG_PATH, REPO_ROOT, ConfigError, parse_config
from lisa_stacks.nag import MIN_REASON_WORDS

SKIP_BUNDLING: dict[str, list[str]] = {"aws:cdk:bundling-stacks": []}


def _templates(synthesized: Synthesized) -> list[Path]:
    found = []
    for assembly in (synthesized.assembly, synthesized.model_assembly):
        found += [Path(stack.template_full_path) for stack in assembly.stacks]
    return found


def test_every_stack_is_synthesized(synthesized: Synthesized) -> None:
    names = {p.name for p in _templates(synthesized)}
    n = synthesized.names
    assert names == {
        f"{n.core}.template.json",
        f"{n.serve}.template.json",
        f"{n.model_hosting}.template.json",
        f"{n.console}.template.json",
    }


def test_cfn_lint_is_clean(synthesized: Synthesized) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--ignore-checks",
            "W3005",
            "--",
            *map(str, _templates(synthesized)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cdk_nag_has_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    for assembly in (synthesized.assembly, synthesized.model_assembly):
        report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
        violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
        assert violations == [], json.dumps(violations, indent=1)[:4000]


def test_every_acknowledgement_has_a_specific_reason(synthesized: Synthesized) -> None:
    acknowledged: dict[str, str] = {}
    for assembly in (synthesized.assembly, synthesized.model_assembly):
        for metadata_file in Path(assembly.directory).glob("*.metadata.json"):
            for path, entries in json.loads(metadata_file.read_text()).items():
                for entry in entries:
                    if entry["type"] == "aws:cdk:acknowledged-rules":
                        for rule, reason in entry["data"].items():
                            if "AwsSolutions-" in rule:  # CDK acknowledges some of its own checks
                                acknowledged[f"{path} {rule}"] = reason
    assert len(acknowledged) >= 10
    for key, reason in acknowledged.items():
        assert len(reason.split()) >= MIN_REASON_WORDS, key


def _example() -> dict:
    return yaml.safe_load((REPO_ROOT / EXAMPLE_CONFIG_PATH).read_text())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"vpc": {"create": {"cidr": "10.0.0.0/16"}, "import": {"vpcId": "vpc-0123456789abcdef0"}}}, "vpc"),
        ({"vpc": {"import": {"vpcId": "vpc-nope"}}}, "vpc.import.vpcId"),
        ({"removalPolicy": "keep"}, "removalPolicy"),
        ({"unknownSetting": 1}, "unknownSetting"),
        ({"serve": {"desiredCount": 1}}, "serve.desiredCount"),
        ({"logRetentionDays": 10}, "(top level)"),
        ({"oidc": {"issuer": "http://insecure", "clientId": "x"}}, "oidc.issuer"),
    ],
)
def test_invalid_config_names_the_field(change: dict, field: str) -> None:
    data = {**_example(), **change}
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert f"config error in {field}:" in str(info.value)


def test_example_config_is_valid() -> None:
    config = parse_config(_example())
    assert config.removalPolicy == "retain"
    assert config.tokens.maxLifetimeDays == 90


def test_invalid_config_file_fails_synthesis(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**_example(), "removalPolicy": "sometimes"}))
    with pytest.raises(ConfigError, match="config error in removalPolicy"):
        synthesize(context={**SKIP_BUNDLING, "config": str(bad)}, outdir=str(tmp_path / "out"))


def test_imported_vpc_kms_destroy_https_variant_synthesizes_clean(tmp_path: Path) -> None:
    data = {
        **_example(),
        "vpc": {
            "import": {
                "vpcId": "vpc-0123456789abcdef0",
                "vpcCidr": "10.1.0.0/16",
                "availabilityZones": ["us-east-1a", "us-east-1b"],
                "privateSubnetIds": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
                "publicSubnetIds": ["subnet-0123456789abcdef2", "subnet-0123456789abcdef3"],
            }
        },
        "encryption": "customer-managed",
        "removalPolicy": "destroy",
        "serve": {
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "allowManagementKey": True,
            "requestLimits": {
                "maxN": 2,
                "maxBestOf": 3,
                "maxTokens": 4096,
                "maxGuidedDecodingBytes": 2048,
                "maxAudioUploadBytes": 2_097_152,
            },
            "cpu": 2048,
            "memory": 4096,
        },
        "oidc": {**_example()["oidc"], "groupsClaimString": "reject"},
        "managementKey": {"previousVersionValidHours": 2},
        "modelUrlPolicy": {"allowHttp": True, "allowedCidrs": ["10.0.0.0/8", "fd00::/8"]},
    }
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data))
    result = synthesize(context={**SKIP_BUNDLING, "config": str(path)}, outdir=str(tmp_path / "out"))
    core = result.template(result.names.core)
    types = {r["Type"] for r in core["Resources"].values()}
    assert "AWS::EC2::VPC" not in types
    assert "AWS::KMS::Key" in types
    steps = next(
        r["Properties"]["Environment"]["Variables"]
        for r in core["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "workflow_steps.handler.lambda_handler"
    )
    assert steps["MODEL_VPC_ID"] == "vpc-0123456789abcdef0"
    assert steps["MODEL_SUBNET_IDS"] == "subnet-0123456789abcdef0,subnet-0123456789abcdef1"
    serve = result.template(result.names.serve)
    (task,) = [r for r in serve["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    environment = {
        e["Name"]: e["Value"] for e in task["Properties"]["ContainerDefinitions"][0]["Environment"]
    }
    assert {
        "LISA_SERVE_MAX_N": "2",
        "LISA_SERVE_MAX_BEST_OF": "3",
        "LISA_SERVE_MAX_TOKENS": "4096",
        "LISA_SERVE_MAX_GUIDED_BYTES": "2048",
        "LISA_SERVE_MAX_AUDIO_BYTES": "2097152",
        "LISA_SERVE_ALLOW_MANAGEMENT_KEY": "true",
        "LISA_SERVE_WORKERS": "2",  # one per vCPU of the 2-vCPU task
        "MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS": "7200",
        "OIDC_GROUPS_STRING": "reject",
    }.items() <= environment.items()
    functions = {
        r["Properties"].get("Handler"): r["Properties"].get("Environment", {}).get("Variables", {})
        for r in core["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    authorizer = functions["authorizer.handler.lambda_handler"]
    assert (authorizer["MANAGEMENT_KEY_PREVIOUS_TTL_SECONDS"], authorizer["OIDC_GROUPS_STRING"]) == (
        "7200",
        "reject",
    )
    admin = functions["admin_api.handler.lambda_handler"]
    assert (admin["MODEL_URL_ALLOW_HTTP"], admin["MODEL_URL_ALLOWED_CIDRS"]) == (
        "true",
        "10.0.0.0/8,fd00::/8",
    )
    listeners = [r["Properties"] for r in serve["Resources"].values() if r["Type"].endswith("::Listener")]
    assert {listener["Protocol"] for listener in listeners} == {"HTTPS", "HTTP"}
    for table in (r for r in core["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"):
        assert table["DeletionPolicy"] == "Delete"
        assert table["Properties"]["SSESpecification"]["SSEType"] == "KMS"
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p.get("violations", [])] == []
