"""Upgrade safety: the stateful resources of the synthesized stacks, and what would replace them.

An upgrade must never delete or replace a table, a secret, a key, a bucket or a log group.
CloudFormation deletes a resource whose logical id disappears and replaces one whose type or a
replacement-triggering property changes. The baseline (``tests/infra/stateful-baseline.json``)
records, per stack, each stateful resource's logical id, type and those properties, nothing
else, so ordinary changes leave it alone. ``tests/infra/test_upgrade_safety.py`` compares a fresh
synthesis with it; after an intended change, refresh it with ``make baseline``
(``python -m lisa_stacks.upgrade_baseline``), which synthesizes the example config.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from lisa_stacks.config import EXAMPLE_CONFIG_PATH, REPO_ROOT

BASELINE_PATH = REPO_ROOT / "tests" / "infra" / "stateful-baseline.json"

#: Stateful resource types -> the properties whose change makes CloudFormation replace the resource
#: (the "Update requires: Replacement" properties of the CloudFormation resource reference).
REPLACEMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "AWS::DynamoDB::Table": ("TableName", "KeySchema", "LocalSecondaryIndexes"),
    "AWS::DynamoDB::GlobalTable": ("TableName", "KeySchema", "LocalSecondaryIndexes"),
    "AWS::SecretsManager::Secret": ("Name",),
    "AWS::KMS::Key": ("KeySpec", "KeyUsage", "MultiRegion"),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
}

Baseline = dict[str, dict[str, dict[str, Any]]]


def stateful_resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{logicalId: {"Type": ..., "Properties": {replacement property: value or None}}}``."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        properties = REPLACEMENT_PROPERTIES.get(resource["Type"])
        if properties is None:
            continue
        values = resource.get("Properties", {})
        found[logical_id] = {
            "Type": resource["Type"],
            "Properties": {name: values.get(name) for name in properties},
        }
    return found


def replacement_problems(baseline: Baseline, current: Baseline) -> list[str]:
    """Every stateful resource of ``baseline`` that ``current`` would delete or replace, and why."""
    problems: list[str] = []
    for stack, resources in sorted(baseline.items()):
        now = current.get(stack, {})
        for logical_id, before in sorted(resources.items()):
            after = now.get(logical_id)
            where = f"{stack}/{logical_id} ({before['Type']})"
            if after is None:
                problems.append(
                    f"{where} would be deleted: its logical id is gone (a construct was renamed or moved? "
                    "keep its id, e.g. with override_logical_id)"
                )
                continue
            if after["Type"] != before["Type"]:
                problems.append(f"{where} would be replaced: its type changed to {after['Type']}")
                continue
            for name, value in before["Properties"].items():
                if after["Properties"].get(name) != value:
                    problems.append(
                        f"{where} would be replaced: property {name} changed from "
                        f"{json.dumps(value)} to {json.dumps(after['Properties'].get(name))}"
                    )
    return problems


def unrecorded(baseline: Baseline, current: Baseline) -> list[str]:
    """Stateful resources the baseline does not protect yet (new ones: refresh the baseline)."""
    return [
        f"{stack}/{logical_id} ({resource['Type']})"
        for stack, resources in sorted(current.items())
        for logical_id, resource in sorted(resources.items())
        if logical_id not in baseline.get(stack, {})
    ]


def current_baseline(templates: dict[str, dict[str, Any]]) -> Baseline:
    """The baseline of ``{stack role: template}`` (roles, not names, so the deployment name is irrelevant)."""
    return {
        role: resources for role, template in templates.items() if (resources := stateful_resources(template))
    }


def load_baseline(path: Path = BASELINE_PATH) -> Baseline:
    result: Baseline = json.loads(path.read_text(encoding="utf-8"))
    return result


def write_baseline(baseline: Baseline, path: Path = BASELINE_PATH) -> None:
    path.write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main() -> int:
    """Synthesize the example config (bundling skipped) and write the baseline."""
    from lisa_stacks.application import synthesize

    with tempfile.TemporaryDirectory() as outdir:
        result = synthesize(
            context={"aws:cdk:bundling-stacks": [], "config": EXAMPLE_CONFIG_PATH}, outdir=outdir
        )
        write_baseline(current_baseline(result.templates_by_role()))
    print(f"wrote {BASELINE_PATH.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
