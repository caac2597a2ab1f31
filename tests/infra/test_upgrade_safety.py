"""Upgrade safety: no change may delete or replace a stateful resource; stateful resources are retained."""

from __future__ import annotations

import copy

from lisa_stacks.application import Synthesized
from lisa_stacks.upgrade_baseline import (
    BASELINE_PATH,
    REPLACEMENT_PROPERTIES,
    current_baseline,
    load_baseline,
    replacement_problems,
    unrecorded,
)

REFRESH = "if the change is intended and safe, refresh the baseline with `make baseline`"


def test_no_stateful_resource_would_be_deleted_or_replaced(synthesized: Synthesized) -> None:
    current = current_baseline(synthesized.templates_by_role())
    problems = replacement_problems(load_baseline(), current)
    assert problems == [], "\n".join([*problems, REFRESH])


def test_every_stateful_resource_is_in_the_baseline(synthesized: Synthesized) -> None:
    current = current_baseline(synthesized.templates_by_role())
    missing = unrecorded(load_baseline(), current)
    assert missing == [], f"new stateful resources, not yet protected: {missing}; {REFRESH}"


def test_the_check_names_the_property_that_triggers_a_replacement() -> None:
    baseline = load_baseline()
    table_id = next(k for k, r in baseline["core"].items() if r["Type"] == "AWS::DynamoDB::Table")
    secret_id = next(k for k, r in baseline["core"].items() if r["Type"] == "AWS::SecretsManager::Secret")
    log_id = next(k for k, r in baseline["core"].items() if r["Type"] == "AWS::Logs::LogGroup")
    changed = copy.deepcopy(baseline)
    changed["core"][table_id]["Properties"]["KeySchema"] = [{"AttributeName": "id", "KeyType": "HASH"}]
    changed["core"][secret_id]["Properties"]["Name"] = "renamed"
    del changed["core"][log_id]

    problems = replacement_problems(baseline, changed)

    assert len(problems) == 3, problems
    assert any(table_id in p and "property KeySchema changed" in p for p in problems)
    assert any(secret_id in p and "property Name changed" in p for p in problems)
    assert any(log_id in p and "would be deleted" in p for p in problems)
    assert unrecorded(changed, baseline) == [f"core/{log_id} (AWS::Logs::LogGroup)"]


def test_baseline_holds_only_ids_types_and_replacement_properties() -> None:
    baseline = load_baseline()
    assert BASELINE_PATH.stat().st_size < 20_000
    kinds = set()
    for resources in baseline.values():
        for resource in resources.values():
            assert set(resource) == {"Type", "Properties"}
            assert set(resource["Properties"]) == set(REPLACEMENT_PROPERTIES[resource["Type"]])
            kinds.add(resource["Type"])
    assert {"AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"} <= kinds


def test_stateful_resources_are_retained(synthesized: Synthesized) -> None:
    """With the default removalPolicy (retain), deleting a stack or replacing a resource keeps the data."""
    assert synthesized.config.removalPolicy == "retain"
    checked = 0
    for role, template in synthesized.templates_by_role().items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] in REPLACEMENT_PROPERTIES:
                checked += 1
                assert resource.get("DeletionPolicy") == "Retain", f"{role}/{logical_id}"
                assert resource.get("UpdateReplacePolicy") == "Retain", f"{role}/{logical_id}"
    assert checked >= 10
