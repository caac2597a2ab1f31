"""The apply plan and its execution, without a server: diffs, what needs a recreate, order, failure."""

from __future__ import annotations

from typing import Any

import pytest

from lisa_client import apply as planning
from lisa_client.apply import Action
from lisa_client.errors import WorkflowFailed
from lisa_client.modelfile import DesiredModel, ModelFileError, dump, entry_of, parse, parse_entry
from lisa_domain.schema import MARKED_FOR_DELETION, ModelRecord, ModelStatus
from local_mode.demo import self_hosted_model


def desired(body: dict[str, Any]) -> DesiredModel:
    return parse_entry(body)


def current(body: dict[str, Any], **fields: Any) -> ModelRecord:
    return ModelRecord.model_validate(
        {key: value for key, value in body.items() if key != "apiKey"}
        | {"status": "InService", "createdAt": 1, "updatedAt": 1}
        | fields
    )


EXTERNAL = {"modelId": "ext", "modelName": "openai/gpt-4o-mini", "modelType": "textgen"}
HOSTED = self_hosted_model("e5", "embedding")


def only(plan: planning.Plan) -> planning.Change:
    assert len(plan.changes) == 1, plan.changes
    return plan.changes[0]


def test_identical_models_plan_nothing() -> None:
    plan = planning.plan(
        [desired(EXTERNAL), desired(HOSTED)], [current(EXTERNAL), current(HOSTED)], prune=True
    )
    assert plan.empty and planning.render(plan) == []


def test_server_filled_context_window_is_compared_only_when_the_file_sets_it() -> None:
    record = current(HOSTED, contextWindow=512)
    assert planning.plan([desired(HOSTED)], [record], prune=False).empty
    change = only(planning.plan([desired(HOSTED | {"contextWindow": 1024})], [record], prune=False))
    assert change.action == Action.UPDATE and change.context_window == 1024 and change.update is None


def test_updatable_fields_become_one_update_body() -> None:
    want = dict(HOSTED)
    want["modelDescription"] = "new"
    want["containerConfig"] = HOSTED["containerConfig"] | {
        "environment": {"NEW": "1"},
        "sharedMemorySize": 4096,
    }
    want["autoScalingConfig"] = HOSTED["autoScalingConfig"] | {"maxCapacity": 3}
    have = current(HOSTED | {"containerConfig": HOSTED["containerConfig"] | {"environment": {"OLD": "x"}}})
    change = only(planning.plan([desired(want)], [have], prune=False))
    assert change.action == Action.UPDATE
    assert change.update is not None
    assert change.update.changes() == {
        "modelDescription": "new",
        "autoScalingInstanceConfig": {"maxCapacity": 3},
        "containerConfig": {
            "environment": {"NEW": "1", "OLD": MARKED_FOR_DELETION},
            "sharedMemorySize": 4096,
        },
    }
    lines = planning.render(planning.plan([desired(want)], [have], prune=False))
    assert "~ update e5" in lines and '    containerConfig.environment.OLD: "x" -> (absent)' in lines


def test_fallbacks_are_updated_not_recreated() -> None:
    change = only(
        planning.plan(
            [desired(EXTERNAL | {"fallbacks": ["spare", "other"]})], [current(EXTERNAL)], prune=False
        )
    )
    assert change.action == Action.UPDATE
    assert change.update is not None and change.update.changes() == {"fallbacks": ["spare", "other"]}
    removal = only(planning.plan([desired(EXTERNAL)], [current(EXTERNAL, fallbacks=["spare"])], prune=False))
    assert removal.update is not None and removal.update.changes() == {"fallbacks": []}


def test_a_model_the_plan_creates_comes_before_the_models_that_fall_back_to_it() -> None:
    spare = {"modelId": "spare", "modelName": "openai/gpt-4o", "modelType": "textgen"}
    other = {"modelId": "other", "modelName": "openai/gpt-4.1", "modelType": "textgen"}
    plan = planning.plan(
        [
            desired(EXTERNAL | {"fallbacks": ["spare", "other"]}),
            desired(other),
            desired(spare | {"fallbacks": ["other"]}),
        ],
        [current(EXTERNAL)],
        prune=False,
    )
    assert [(change.action, change.model_id) for change in plan.changes] == [
        (Action.CREATE, "other"),
        (Action.CREATE, "spare"),
        (Action.UPDATE, "ext"),
    ]
    loop = planning.plan(
        [desired(other | {"fallbacks": ["spare"]}), desired(spare | {"fallbacks": ["other"]})],
        [],
        prune=False,
    )
    assert [change.model_id for change in loop.changes] == ["other", "spare"]


def test_fields_no_route_changes_need_a_recreate_that_is_refused_by_default() -> None:
    plan = planning.plan(
        [desired(EXTERNAL | {"modelName": "openai/gpt-4o"})], [current(EXTERNAL)], prune=False
    )
    change = only(plan)
    assert change.action == Action.RECREATE and change.reasons == ["no route updates modelName"]
    assert plan.refused_recreates(allow_recreate=False) == [change]
    assert plan.refused_recreates(allow_recreate=True) == []


def test_enabled_is_compared_only_when_given_and_unlisted_models_need_prune() -> None:
    stopped = current(EXTERNAL, status="Stopped", enabled=False)
    assert planning.plan([desired(EXTERNAL)], [stopped], prune=False).empty
    change = only(planning.plan([desired(EXTERNAL | {"enabled": True})], [stopped], prune=False))
    assert change.action == Action.UPDATE and change.enabled is True and change.update is None

    other = current(EXTERNAL | {"modelId": "other"})
    kept = planning.plan([desired(EXTERNAL)], [current(EXTERNAL), other], prune=False)
    assert kept.empty and kept.kept == ["other"]
    pruned = planning.plan([desired(EXTERNAL)], [current(EXTERNAL), other], prune=True)
    assert [(c.action, c.model_id) for c in pruned.changes] == [(Action.DELETE, "other")]


def test_models_mid_workflow_block_and_failed_ones_are_noted_or_recreated() -> None:
    busy = planning.plan([desired(EXTERNAL)], [current(EXTERNAL, status="Updating")], prune=False)
    assert busy.blockers == ["ext is Updating: wait until its workflow settles, then apply again"]
    assert busy.empty
    unlisted = current(EXTERNAL | {"modelId": "other"}, status="Creating")
    assert planning.plan([], [unlisted], prune=True).blockers == [
        "other is Creating: wait until its workflow settles, then apply again"
    ]
    failed = current(EXTERNAL, status="Failed", statusReason="boom")
    noted = planning.plan([desired(EXTERNAL)], [failed], prune=False)
    assert noted.empty and "ext is Failed (boom)" in noted.notices[0]
    changed = planning.plan([desired(EXTERNAL | {"modelDescription": "x"})], [failed], prune=False)
    assert only(changed).action == Action.RECREATE


def test_export_entry_round_trips_to_no_change() -> None:
    record = current(HOSTED, contextWindow=512, status="Stopped", enabled=False)
    entry = entry_of(record)
    assert entry["enabled"] is False and "status" not in entry
    assert planning.plan(parse(dump([entry])), [record], prune=True).empty


def test_file_errors_name_the_entry_and_field() -> None:
    with pytest.raises(ModelFileError, match=r"models\[0\]\.apiKey: a literal key"):
        parse("models:\n  - {modelId: a, modelName: n, modelType: textgen, apiKey: sk-123}")
    with pytest.raises(ModelFileError, match=r"models\[0\]\.apiKey: .*exactly one"):
        parse("models:\n  - {modelId: a, modelName: n, modelType: textgen, apiKey: {}}")
    with pytest.raises(ModelFileError, match=r"models\[1\]\.modelId: 'a' is listed twice"):
        parse(
            "models:\n  - {modelId: a, modelName: n, modelType: textgen}\n  - {modelId: a, modelName: n, modelType: textgen}"
        )
    with pytest.raises(ModelFileError, match=r"models\[0\]\.modelType"):
        parse("models:\n  - {modelId: a, modelName: n, modelType: nope}")
    with pytest.raises(ModelFileError, match="one key, models"):
        parse("model: []")


class FakeClient:
    """Records calls; the model named in ``failing`` ends Failed."""

    def __init__(self, failing: str = "") -> None:
        self.calls: list[tuple[str, str]] = []
        self.failing = failing

    def create_model(self, request: Any) -> None:
        self.calls.append(("create", request.modelId))
        self.last_key = request.apiKey

    def update_model(self, model_id: str, request: Any) -> None:
        self.calls.append(("update", model_id))

    def set_context_window(self, model_id: str, value: int) -> None:
        self.calls.append(("context-window", model_id))

    def start_model(self, model_id: str) -> None:
        self.calls.append(("start", model_id))

    def stop_model(self, model_id: str) -> None:
        self.calls.append(("stop", model_id))

    def set_schedule(self, model_id: str, schedule: Any) -> None:
        self.calls.append((f"schedule-{schedule.scheduleType}", model_id))

    def delete_schedule(self, model_id: str) -> None:
        self.calls.append(("delete-schedule", model_id))

    def delete_model(self, model_id: str) -> None:
        self.calls.append(("delete", model_id))

    def wait_deleted(self, model_id: str, timeout: float, on_progress: Any) -> None:
        self.calls.append(("wait-deleted", model_id))

    def wait_for(self, model_id: str, status: ModelStatus, timeout: float, on_progress: Any) -> None:
        self.calls.append((f"wait-{status.value}", model_id))
        if model_id == self.failing:
            raise WorkflowFailed(
                current(EXTERNAL | {"modelId": model_id}, status="Failed", statusReason="boom"), status
            )


def run(plan: planning.Plan, fake: FakeClient) -> planning.ApplyResult:
    return planning.execute(fake, plan, timeout=1, on_progress=lambda *a: None)  # type: ignore[arg-type]


def test_execution_stops_at_the_first_failure_and_says_what_was_not_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEY_OF_B", "sk-b")
    models = [
        desired(EXTERNAL | {"modelId": "a"}),
        desired(EXTERNAL | {"modelId": "b", "apiKey": {"fromEnv": "KEY_OF_B"}}),
        desired(EXTERNAL | {"modelId": "c"}),
    ]
    fake = FakeClient(failing="b")
    outcome = run(planning.plan(models, [], prune=False), fake)
    assert (
        outcome.applied == ["create a"] and outcome.failed == "create b" and "boom" in (outcome.error or "")
    )
    assert outcome.not_applied == ["create c"]
    assert ("create", "c") not in fake.calls and fake.last_key == "sk-b"


def test_a_missing_key_variable_stops_before_any_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISSING_KEY", raising=False)
    models = [
        desired(EXTERNAL | {"modelId": "a"}),
        desired(EXTERNAL | {"modelId": "b", "apiKey": {"fromEnv": "MISSING_KEY"}}),
    ]
    fake = FakeClient()
    with pytest.raises(ModelFileError, match="MISSING_KEY is not set"):
        run(planning.plan(models, [], prune=False), fake)
    assert fake.calls == []


def test_an_update_with_start_and_scaling_is_split_and_each_part_awaited() -> None:
    stopped = current(HOSTED, status="Stopped", enabled=False)
    want = HOSTED | {"enabled": True, "autoScalingConfig": HOSTED["autoScalingConfig"] | {"maxCapacity": 2}}
    fake = FakeClient()
    assert run(planning.plan([desired(want)], [stopped], prune=False), fake).ok
    assert fake.calls == [("update", "e5"), ("wait-Stopped", "e5"), ("start", "e5"), ("wait-InService", "e5")]


def test_recreate_deletes_then_creates() -> None:
    fake = FakeClient()
    plan = planning.plan([desired(EXTERNAL | {"modelType": "embedding"})], [current(EXTERNAL)], prune=False)
    assert run(plan, fake).ok
    assert fake.calls == [
        ("delete", "ext"),
        ("wait-deleted", "ext"),
        ("create", "ext"),
        ("wait-InService", "ext"),
    ]


def test_the_first_environment_variable_is_an_update_not_a_recreate() -> None:
    want = HOSTED | {"containerConfig": HOSTED["containerConfig"] | {"environment": {"FIRST": "1"}}}
    change = only(planning.plan([desired(want)], [current(HOSTED)], prune=False))
    assert change.action == Action.UPDATE and change.update is not None
    assert change.update.changes() == {"containerConfig": {"environment": {"FIRST": "1"}}}


RECURRING = {
    "scheduleType": "RECURRING",
    "timezone": "UTC",
    "recurringSchedule": {"startTime": "08:00", "stopTime": "18:00"},
}


def test_schedule_changes_go_through_the_schedule_routes() -> None:
    scheduled = HOSTED | {"autoScalingConfig": HOSTED["autoScalingConfig"] | {"scheduling": RECURRING}}
    fake = FakeClient()
    change = only(planning.plan([desired(scheduled)], [current(HOSTED)], prune=False))
    assert change.action == Action.UPDATE and change.schedule_changed and change.update is None
    assert run(planning.plan([desired(scheduled)], [current(HOSTED)], prune=False), fake).ok
    assert fake.calls == [("schedule-RECURRING", "e5")]

    # LISA's reported fields in the registry's copy are not differences.
    reported = RECURRING | {"scheduleEnabled": True, "lastScheduleFailed": False}
    have = current(HOSTED | {"autoScalingConfig": HOSTED["autoScalingConfig"] | {"scheduling": reported}})
    assert planning.plan([desired(scheduled)], [have], prune=False).empty

    fake = FakeClient()
    assert run(planning.plan([desired(HOSTED)], [have], prune=False), fake).ok
    assert fake.calls == [("delete-schedule", "e5")]


def test_a_secrets_manager_reference_is_read_when_the_model_is_created(aws: None) -> None:
    import boto3

    arn = boto3.client("secretsmanager").create_secret(Name="providers/openai", SecretString="sk-from-sm")[
        "ARN"
    ]
    fake = FakeClient()
    models = [desired(EXTERNAL | {"apiKey": {"fromSecretsManager": arn}})]
    assert run(planning.plan(models, [], prune=False), fake).ok
    assert fake.last_key == "sk-from-sm"
    missing = [desired(EXTERNAL | {"apiKey": {"fromSecretsManager": "providers/none"}})]
    with pytest.raises(ModelFileError, match="secret providers/none could not be read"):
        run(planning.plan(missing, [], prune=False), FakeClient())
