"""The ``fallbacks`` model field through the real admin API handler (moto): the rules a create or
update must meet (400 naming the entry, nothing written), the warnings about fallbacks some callers
may not use, and that changing it is a metadata-only update."""

from __future__ import annotations

from typing import Any

import pytest

from lisa_domain.registry import ModelRegistry
from lisa_domain.schema import MAX_FALLBACKS, ModelRecord, ModelStatus
from local_mode.resources import LocalResources
from tests.support.lisa_payloads import BEDROCK_MODEL, VLLM_MODEL
from tests.unit.conftest import Workflows
from tests.unit.helpers import USER_A
from tests.unit.test_admin_api import call, seed, table_items
from workflow_steps.state import ExecutionState
from workflow_steps.update import desired_model, touches_infrastructure

EMBEDDING = {"modelId": "e", "modelName": "bedrock/amazon.titan-embed-text-v2:0", "modelType": "embedding"}


def model(model_id: str = "primary", **fields: Any) -> dict[str, Any]:
    return {**BEDROCK_MODEL, "modelId": model_id, **fields}


def stored(resources: LocalResources, model_id: str) -> ModelRecord:
    return ModelRegistry(resources.models_table).get(model_id)


@pytest.fixture
def backups(resources: LocalResources) -> None:
    """Fallback candidates: two textgen models open to everyone, one open to team-a only, one
    embedding model, one being deleted."""
    seed(resources, "backup-1")
    seed(resources, "backup-2")
    seed(resources, "team-a-only", allowed_groups=["team-a"])
    seed(resources, "embedder", body=EMBEDDING)
    seed(resources, "going", ModelStatus.DELETING)


def test_create_stores_the_fallbacks_in_order_without_warnings(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    status, body = call("POST", "/models", body=model(fallbacks=["backup-2", "backup-1"]))

    assert status == 201, body
    assert body["model"]["fallbacks"] == ["backup-2", "backup-1"]
    assert "warnings" not in body
    assert stored(resources, "primary").fallbacks == ["backup-2", "backup-1"]


def test_a_lisa_payload_without_the_field_has_no_fallbacks(
    resources: LocalResources, workflows: Workflows
) -> None:
    status, body = call("POST", "/models", body=VLLM_MODEL)
    assert status == 201, body
    assert body["model"]["fallbacks"] == [] and "warnings" not in body


@pytest.mark.parametrize(
    ("fallbacks", "message"),
    [
        (["backup-1", "primary"], "fallbacks[1]: 'primary' is the model itself"),
        (["backup-1", "backup-2", "backup-1"], "fallbacks[2]: 'backup-1' is listed twice"),
        (["backup-1", "nowhere"], "fallbacks[1]: model 'nowhere' does not exist"),
        (
            ["embedder"],
            "fallbacks[0]: model 'embedder' has modelType embedding; the fallbacks of model "
            "'primary' must have modelType textgen",
        ),
        (["going"], "fallbacks[0]: model 'going' is being deleted"),
        (
            [f"m{i}" for i in range(MAX_FALLBACKS + 1)],
            f"fallbacks: at most {MAX_FALLBACKS} fallbacks ({MAX_FALLBACKS + 1} given)",
        ),
    ],
)
def test_a_create_breaking_a_fallback_rule_is_400_naming_the_entry_and_writes_nothing(
    resources: LocalResources, workflows: Workflows, backups: None, fallbacks: list[str], message: str
) -> None:
    before = table_items(resources)
    for query in (None, {"dryRun": "true"}):
        status, body = call("POST", "/models", body=model(fallbacks=fallbacks), query=query)
        assert status == 400, body
        assert body["message"] == message
    assert table_items(resources) == before
    assert workflows.count() == 0


def test_an_entry_that_cannot_be_a_model_id_is_422_naming_it(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    status, body = call("POST", "/models", body=model(fallbacks=["backup-1", "no spaces"]))
    assert status == 422, body
    assert body["errors"][0]["field"] == "body.fallbacks.1"
    assert workflows.count() == 0


def test_a_fallback_not_open_to_every_caller_is_accepted_with_a_warning(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    status, body = call("POST", "/models", body=model(fallbacks=["backup-1", "team-a-only"]))
    assert status == 201, body
    assert body["warnings"] == [
        {
            "model": "primary",
            "field": "fallbacks[1]",
            "fallback": "team-a-only",
            "groups": [],
            "message": "model 'primary' is open to everyone but 'team-a-only' only to the groups "
            "team-a: requests of other callers are not sent to it",
        }
    ]
    assert stored(resources, "primary").fallbacks == ["backup-1", "team-a-only"]

    status, body = call(
        "POST",
        "/models",
        body=model("shared", allowedGroups=["team-a", "team-b"], fallbacks=["team-a-only"]),
    )
    assert status == 201, body
    [warning] = body["warnings"]
    assert warning["field"] == "fallbacks[0]" and warning["groups"] == ["team-b"]

    status, body = call(
        "POST", "/models", body=model("a-only", allowedGroups=["team-a"], fallbacks=["team-a-only"])
    )
    assert status == 201 and "warnings" not in body


def test_a_dry_run_answers_the_warnings_too(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    before = table_items(resources)
    status, body = call("POST", "/models", body=model(fallbacks=["team-a-only"]), query={"dryRun": "true"})
    assert status == 200, body
    assert [warning["fallback"] for warning in body["warnings"]] == ["team-a-only"]
    assert table_items(resources) == before and workflows.count() == 0


def test_updating_the_fallbacks_is_a_metadata_only_update(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    seed(resources, "served", body=VLLM_MODEL)

    status, body = call("PUT", "/models/served", body={"fallbacks": ["backup-1", "team-a-only"]})

    assert status == 200, body
    assert [warning["fallback"] for warning in body["warnings"]] == ["team-a-only"]
    [execution] = workflows.executions("update")
    assert execution["input"]["changes"] == {"fallbacks": ["backup-1", "team-a-only"]}
    # The update workflow: no infrastructure touched (no stack update, no redeployment); the list is
    # written with the final status.
    record = stored(resources, "served")
    state = ExecutionState.model_validate(execution["input"])
    assert record.self_hosted and not touches_infrastructure(record, state)
    assert desired_model(record, state).fallbacks == ["backup-1", "team-a-only"]


def test_an_empty_list_removes_the_fallbacks(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    seed(resources, "served", body=model(fallbacks=["backup-1"]))
    status, body = call("PUT", "/models/served", body={"fallbacks": []})
    assert status == 200, body
    [execution] = workflows.executions("update")
    state = ExecutionState.model_validate(execution["input"])
    assert desired_model(stored(resources, "served"), state).fallbacks == []


def test_an_update_breaking_a_rule_is_400_and_leaves_the_model_alone(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    seed(resources, "served", body=model(fallbacks=["backup-1"]))
    before = table_items(resources)
    for fallbacks, message in (
        (["served"], "fallbacks[0]: 'served' is the model itself"),
        (["backup-1", "embedder"], "fallbacks[1]: model 'embedder' has modelType embedding"),
    ):
        status, body = call("PUT", "/models/served", body={"fallbacks": fallbacks})
        assert status == 400, body
        assert body["message"].startswith(message)
    assert table_items(resources) == before
    assert workflows.count() == 0


def test_narrowing_the_groups_warns_about_the_stored_fallbacks(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    seed(resources, "served", body=model(fallbacks=["team-a-only", "deleted-since"]))
    status, body = call("PUT", "/models/served", body={"allowedGroups": ["team-a", "team-c"]})
    assert status == 200, body
    assert body["warnings"] == [
        {
            "model": "served",
            "field": "fallbacks[0]",
            "fallback": "team-a-only",
            "groups": ["team-c"],
            "message": "the groups team-c may use 'served' but not 'team-a-only': requests of callers "
            "outside the groups team-a are not sent to it",
        },
        {
            "model": "served",
            "field": "fallbacks[1]",
            "fallback": "deleted-since",
            "groups": [],
            "message": "model 'deleted-since' is deleted (or not a valid record): requests of 'served' skip it",
        },
    ]
    # A stop or start says nothing about fallbacks.
    status, body = call("PUT", "/models/backup-1", body={"enabled": False})
    assert status == 200 and "warnings" not in body


def test_others_do_not_see_the_fallbacks(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    seed(resources, "served", body=model(fallbacks=["backup-1"]))
    status, body = call("GET", "/models/served", principal=USER_A)
    assert status == 200, body
    assert "fallbacks" not in body["model"]
    status, body = call("GET", "/models/served")
    assert body["model"]["fallbacks"] == ["backup-1"]


def test_deleting_a_model_others_fall_back_to_warns_about_them(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    seed(resources, "first", body=model(fallbacks=["backup-2", "backup-1"]))
    seed(resources, "second", body=model(fallbacks=["backup-1"]))

    status, body = call("DELETE", "/models/backup-1")

    assert status == 200, body
    assert body["model"]["status"] == "Deleting"
    assert sorted((warning["model"], warning["field"]) for warning in body["warnings"]) == [
        ("first", "fallbacks[1]"),
        ("second", "fallbacks[0]"),
    ]
    assert stored(resources, "first").fallbacks == ["backup-2", "backup-1"]  # kept: requests skip it
    status, body = call("DELETE", "/models/backup-2")
    assert status == 200 and [warning["model"] for warning in body["warnings"]] == ["first"]
    status, body = call("DELETE", "/models/team-a-only")
    assert status == 200 and "warnings" not in body


def test_narrowing_a_fallbacks_groups_warns_about_the_models_that_use_it(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    seed(resources, "for-everyone", body=model(fallbacks=["backup-1"]))
    seed(resources, "for-team-a", body=model(allowedGroups=["team-a"], fallbacks=["backup-1"]))

    status, body = call("PUT", "/models/backup-1", body={"allowedGroups": ["team-a"]})

    assert status == 200, body
    assert [(warning["model"], warning["groups"]) for warning in body["warnings"]] == [("for-everyone", [])]
    status, body = call("PUT", "/models/backup-2", body={"allowedGroups": ["team-b"]})
    assert status == 200 and "warnings" not in body  # no model falls back to it


def test_creating_a_model_others_name_as_a_fallback_warns_about_those_it_does_not_serve(
    resources: LocalResources, workflows: Workflows, backups: None
) -> None:
    """A model deleted and created again (``lisa apply --recreate`` does that) becomes a fallback of
    the models whose lists kept its id: the create says which of them it is not open to, or for
    which it has another modelType (their requests skip it)."""
    seed(resources, "for-team-a", body=model(allowedGroups=["team-a"], fallbacks=["again"]))
    seed(resources, "for-team-b", body=model(allowedGroups=["team-b"], fallbacks=["backup-1", "again"]))
    seed(resources, "embeds", body={**EMBEDDING, "modelId": "embeds", "fallbacks": ["again"]})

    for query in ({"dryRun": "true"}, None):
        status, body = call("POST", "/models", body=model("again", allowedGroups=["team-b"]), query=query)
        assert status == (200 if query else 201), body
        warnings = {warning["model"]: warning for warning in body["warnings"]}
        assert sorted(warnings) == ["embeds", "for-team-a"]
        assert warnings["for-team-a"]["field"] == "fallbacks[0]"
        assert warnings["for-team-a"]["groups"] == ["team-a"]
        assert (
            warnings["embeds"]["fallback"] == "again" and "modelType textgen" in warnings["embeds"]["message"]
        )
