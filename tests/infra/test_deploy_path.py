"""The operator's deploy path: a pinned CDK CLI, make targets, feature flags, no synthesis warning."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import aws_cdk

from lisa_stacks.application import Synthesized

REPO = Path(__file__).resolve().parents[2]
#: Feature flags kept at a value other than a new project's, each with the reason (docs/operations.md).
KEPT_FOR_UPGRADE_SAFETY = {
    # "weak" would let a consumer stack's reference vanish under an existing deployment; switching
    # needs "both" deployed everywhere first. "strong" is today's behaviour, now explicit.
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


def recommended_flags() -> dict[str, Any]:
    """The flags ``cdk init`` writes for a new project of the installed aws-cdk-lib (shipped in its
    jsii assembly as ``recommended-feature-flags.json``)."""
    bundle = next((Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz"))
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        flags: dict[str, Any] = json.load(member)
    return flags


def cdk_json() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())
    return result


def test_the_cdk_cli_is_pinned_exactly_and_locked() -> None:
    version = json.loads((REPO / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert re.fullmatch(r"2\.\d+\.\d+", version), f"aws-cdk must be an exact 2.x version, not {version!r}"
    lock = json.loads((REPO / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == version
    assert lock["packages"]["node_modules/aws-cdk"]["integrity"].startswith("sha512-")


def test_make_diff_and_deploy_use_the_pinned_cli_the_venv_and_the_config() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "CDK_CLI := node_modules/aws-cdk/bin/cdk" in makefile
    assert "npm-cli.js \\\n\t\tci " in makefile  # npm ci: exactly the lock file
    for target in ("diff", "deploy"):
        recipe = re.search(rf"^{target}: cdk-cli .*\n\t(.+)$", makefile, re.MULTILINE)
        assert recipe, target
        assert recipe.group(1) == f"$(CDK) {target} --all -c config=$(CONFIG)"
    assert cdk_json()["app"] == ".venv/bin/python app.py"
    assert "npx" not in makefile and "aws-cdk@" not in makefile


def test_the_readme_deploys_with_the_make_targets_only() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deploy to AWS", 1)[1].split("\n## ", 1)[0]
    assert "aws-cdk@2" not in section and "npx" not in section
    for command in ("make preflight", "make diff", "make deploy", "make smoke"):
        assert command in section, command
    assert "Docker" in section and "docs/operations.md" in section


def test_cdk_json_sets_every_flag_a_new_project_gets() -> None:
    context = cdk_json()["context"]
    expected = recommended_flags() | KEPT_FOR_UPGRADE_SAFETY
    missing = sorted(set(expected) - set(context))
    assert missing == [], f"feature flags not configured (the CLI warns about them): {missing}"
    different = {k: (context[k], v) for k, v in expected.items() if context[k] != v}
    assert different == {}, f"flags differ from a new project's without a recorded reason: {different}"
    unknown = sorted(k for k in set(context) - set(expected) if k.startswith("@aws-cdk"))
    assert unknown == [], f"flags the pinned aws-cdk-lib does not know: {unknown}"


def warnings_in(assembly_directory: str) -> list[str]:
    """Warning annotations of every stack (inline or in its ``additionalMetadataFile``)."""
    directory = Path(assembly_directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    found = []
    for artifact in manifest.get("artifacts", {}).values():
        metadata = dict(artifact.get("metadata") or {})
        if artifact.get("additionalMetadataFile"):
            metadata |= json.loads((directory / artifact["additionalMetadataFile"]).read_text())
        found += [
            f"{path}: {entry.get('data')}"
            for path, entries in metadata.items()
            for entry in entries
            if entry.get("type") == "aws:cdk:warning"
        ]
    return found


def test_synthesis_reports_no_warning(synthesized: Synthesized) -> None:
    """What ``cdk synth`` prints as WARNING: warning annotations in either cloud assembly (the
    cross-stack reference strength warning among them)."""
    for assembly in (synthesized.assembly, synthesized.model_assembly):
        assert warnings_in(assembly.directory) == []


def test_the_workflow_lambda_can_reach_model_load_balancers_for_the_canary(synthesized: Synthesized) -> None:
    """Model ALBs admit only ``ServeSecurityGroupId``: the step Lambda runs in the private subnets
    in the serve tasks' security group (the canary, lambdas/workflow_steps/canary.py)."""
    core = synthesized.template(synthesized.names.core)
    (steps,) = [
        r["Properties"]
        for r in core["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == "workflow_steps.handler.lambda_handler"
    ]
    serve_group = steps["Environment"]["Variables"]["SERVE_SECURITY_GROUP_ID"]
    assert steps["VpcConfig"]["SecurityGroupIds"] == [serve_group]
    private = steps["Environment"]["Variables"]["MODEL_SUBNET_IDS"]["Fn::Join"][1]
    assert steps["VpcConfig"]["SubnetIds"] == private
