"""Every ``lisa`` command against local mode: output formats, --wait, exit codes, apply and export."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lisa_client import Conflict, LisaClient
from lisa_client.cli import main
from lisa_client.connection import from_local
from lisa_client.install_launcher import write_launcher
from lisa_domain.schema import CreateModelRequest, ModelStatus
from local_mode.demo import self_hosted_model
from tests.cli.conftest import Lisa, external, write
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

KEY_ENV = "LISA_CLI_TEST_KEY"


def model_ids(lisa: Lisa) -> set[str]:
    return {model["modelId"] for model in lisa.json("models", "list")}


def test_model_commands_with_wait_and_output_formats(
    lisa: Lisa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-cli-test")
    body = external("cli-ext", apiKey={"fromEnv": KEY_ENV})
    created = lisa.json("models", "create", "-f", write(tmp_path / "m.yaml", body), "--wait")
    assert created["status"] == "InService" and created["modelId"] == "cli-ext"
    assert "apiKey" not in created and "sk-cli-test" not in json.dumps(created)

    assert "cli-ext" in model_ids(lisa)
    table = lisa("models", "list")
    assert table.exit_code == 0 and "cli-ext" in table.stdout and "InService" in table.stdout
    as_yaml = lisa("models", "get", "cli-ext", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)["modelName"] == "openai/gpt-4o-mini"

    update = write(tmp_path / "u.yaml", {"modelDescription": "changed by lisa"})
    updated = lisa.json("models", "update", "cli-ext", "-f", update, "--wait")
    assert updated["modelDescription"] == "changed by lisa" and updated["status"] == "InService"

    deleted = lisa("models", "delete", "cli-ext", "--wait")
    assert deleted.exit_code == 0, deleted.output
    missing = lisa("models", "get", "cli-ext")
    assert missing.exit_code == 1 and "404" in missing.stderr


def test_literal_api_key_in_a_file_is_refused(lisa: Lisa, tmp_path: Path) -> None:
    body = external("cli-literal", apiKey="sk-literal")
    result = lisa("models", "create", "-f", write(tmp_path / "m.yaml", body))
    assert result.exit_code == 2
    assert "models[0].apiKey" in result.stderr and "literal key is not allowed" in result.stderr
    assert "cli-literal" not in model_ids(lisa)


def test_invalid_create_names_the_field_and_exits_1(lisa: Lisa, tmp_path: Path) -> None:
    body = external("cli-bad-url", modelUrl="ftp://example.com/v1")
    result = lisa("models", "create", "-f", write(tmp_path / "m.yaml", body))
    assert result.exit_code == 1
    assert "modelUrl" in result.stderr


def test_stop_and_start_a_self_hosted_model(lisa: Lisa, tmp_path: Path) -> None:

    body = self_hosted_model("cli-e5", "embedding")
    timed_out = lisa("models", "create", "-f", write(tmp_path / "m.yaml", body), "--wait", "--timeout", "0")
    assert timed_out.exit_code == 3
    assert "cli-e5: still Creating after 0 s (the workflow may still be running)" in timed_out.stderr
    connection = from_local(lisa.local.state_file)
    with LisaClient(connection.admin_url, connection.token) as client:
        client.wait_for("cli-e5", ModelStatus.IN_SERVICE, 120, poll=0.2)
    stopped = lisa("models", "stop", "cli-e5", "--wait", "-o", "json")
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(stopped.stdout)["status"] == "Stopped"
    assert "Stopping" in stopped.stderr  # the progress lines (not a terminal: one per change)
    assert lisa.json("models", "start", "cli-e5", "--wait")["status"] == "InService"
    assert lisa("models", "delete", "cli-e5", "--wait").exit_code == 0


def test_a_create_that_ends_failed_exits_1_with_the_reason(lisa: Lisa, tmp_path: Path) -> None:
    body = self_hosted_model("cli-image", "imagegen", streaming=False)
    result = lisa("models", "create", "-f", write(tmp_path / "m.yaml", body), "--wait")
    assert result.exit_code == 1
    assert "Failed" in result.stderr and "local hosting cannot run imagegen models" in result.stderr
    assert lisa("models", "delete", "cli-image", "--wait").exit_code == 0


def test_tokens_create_list_revoke(lisa: Lisa) -> None:
    created = lisa.json("tokens", "create", "--username", "cli-user", "--group", "g1", "--name", "cli")
    assert created["token"].startswith("lisa_") and created["groups"] == ["g1"]
    listed = lisa.json("tokens", "list", "--username", "cli-user")
    assert [token["tokenId"] for token in listed] == [created["tokenId"]]
    assert "token" not in listed[0]
    assert lisa.json("tokens", "revoke", created["tokenId"])["tokenId"] == created["tokenId"]
    assert lisa.json("tokens", "list", "--username", "cli-user") == []


def test_no_connection_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LISA_ADMIN_URL", raising=False)
    monkeypatch.setenv("LISA_CONFIG_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 2 and "LISA_ADMIN_URL" in result.stderr
    result = CliRunner().invoke(main, ["--admin-url", "http://127.0.0.1:9", "models", "list"])
    assert result.exit_code == 2 and "lisa login" in result.stderr


def test_apply_plan_idempotency_recreate_and_failure(lisa: Lisa, tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    models = [external("cli-apply-a"), external("cli-apply-b", allowedGroups=["team"])]
    first = lisa("apply", "-f", write(path, {"models": models}))
    assert first.exit_code == 0, first.output
    assert "+ create cli-apply-a" in first.stdout and "applied: create cli-apply-b" in first.stdout
    stamps = {m["modelId"]: m["updatedAt"] for m in lisa.json("models", "list")}

    again = lisa("apply", "-f", str(path))
    assert again.exit_code == 0 and "no changes" in again.stdout
    assert lisa.json("apply", "-f", str(path)) == {
        "changes": [],
        "kept": [],
        "notices": [],
        "blockers": [],
        "message": "no changes",
    } | {"kept": sorted(model_ids(lisa) - {"cli-apply-a", "cli-apply-b"})}
    assert {m["modelId"]: m["updatedAt"] for m in lisa.json("models", "list")} == stamps

    models[0]["modelDescription"] = "new description"
    dry = lisa("apply", "-f", write(path, {"models": models}), "--dry-run")
    assert dry.exit_code == 0
    assert "~ update cli-apply-a" in dry.stdout and '"cli test" -> "new description"' in dry.stdout
    planned = lisa.json("apply", "-f", str(path), "--dry-run")
    assert [(c["action"], c["modelId"]) for c in planned["changes"]] == [("update", "cli-apply-a")]
    assert planned["changes"][0]["fields"] == [
        {"path": "modelDescription", "before": "cli test", "after": "new description"}
    ]
    assert planned["message"] == "dry run: nothing applied"
    assert lisa.json("models", "get", "cli-apply-a")["modelDescription"] == "cli test"
    assert lisa("apply", "-f", str(path)).exit_code == 0
    assert lisa.json("models", "get", "cli-apply-a")["modelDescription"] == "new description"

    models[1]["modelName"] = "openai/gpt-4o"
    refused = lisa("apply", "-f", write(path, {"models": models}))
    assert refused.exit_code == 1 and "--recreate" in refused.stderr
    assert "! recreate cli-apply-b (no route updates modelName)" in refused.stdout
    dry_recreate = lisa("apply", "-f", str(path), "--dry-run")
    assert dry_recreate.exit_code == 0 and "pass --recreate" in dry_recreate.stdout
    assert lisa.json("models", "get", "cli-apply-b")["modelName"] == "openai/gpt-4o-mini"
    recreated = lisa("apply", "-f", str(path), "--recreate")
    assert recreated.exit_code == 0, recreated.output
    assert lisa.json("models", "get", "cli-apply-b")["modelName"] == "openai/gpt-4o"

    failing = [
        *models,
        external("cli-apply-c"),
        self_hosted_model("cli-apply-image", "imagegen", streaming=False),
        external("cli-apply-d"),
    ]
    stopped = lisa("apply", "-f", write(path, {"models": failing}))
    assert stopped.exit_code == 1 and "error: stopped at create cli-apply-image" in stopped.stderr
    assert "applied: create cli-apply-c" in stopped.stdout
    assert "failed: create cli-apply-image" in stopped.stdout and "imagegen" in stopped.stdout
    assert "not applied: create cli-apply-d" in stopped.stdout
    assert "cli-apply-d" not in model_ids(lisa)
    # The Failed model matches the file: a second apply leaves it alone and creates the rest.
    rerun = lisa("apply", "-f", str(path))
    assert rerun.exit_code == 0, rerun.output
    assert "note: cli-apply-image is Failed" in rerun.stdout and "applied: create cli-apply-d" in rerun.stdout


def test_export_then_apply_is_a_no_op_and_prune_deletes_the_rest(lisa: Lisa, tmp_path: Path) -> None:
    exported = lisa("export")
    assert exported.exit_code == 0, exported.output
    path = tmp_path / "exported.yaml"
    path.write_text(exported.stdout)
    listed = yaml.safe_load(exported.stdout)["models"]
    assert {entry["modelId"] for entry in listed} == model_ids(lisa)
    round_trip = lisa("apply", "-f", str(path))
    assert round_trip.exit_code == 0 and "no changes" in round_trip.stdout, round_trip.output

    keep = [entry for entry in listed if entry["modelId"] == "cli-apply-a"]
    assert keep, "the apply test's model is exported"
    kept = lisa("apply", "-f", write(path, {"models": keep}), "--dry-run")
    assert "keep cli-apply-b (not in the file; --prune deletes it)" in kept.stdout
    pruned = lisa("apply", "-f", str(path), "--prune")
    assert pruned.exit_code == 0, pruned.output
    assert "- delete cli-apply-b" in pruned.stdout
    assert model_ids(lisa) == {"cli-apply-a"}


def test_installed_launcher_runs_the_command(lisa: Lisa, tmp_path: Path) -> None:
    launcher = write_launcher(tmp_path)
    env = os.environ | {"LISA_LOCAL_STATE_FILE": str(lisa.local.state_file), "NO_COLOR": "1"}
    result = subprocess.run(
        [str(launcher), "--local", "models", "list", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
    table = subprocess.run(
        [str(launcher), "--local", "models", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert table.returncode == 0 and "\x1b[" not in table.stdout  # no colour codes: NO_COLOR, not a terminal


def test_schedule_commands_and_a_scheduled_model_in_apply(lisa: Lisa, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    window = {  # running now, so the evaluator leaves the model alone during the test
        "startTime": (now - timedelta(hours=1)).strftime("%H:%M"),
        "stopTime": (now + timedelta(hours=3)).strftime("%H:%M"),
    }
    schedule = {"scheduleType": "RECURRING", "timezone": "UTC", "recurringSchedule": window}
    body = self_hosted_model("cli-sched", "embedding")
    assert lisa("apply", "-f", write(tmp_path / "models.yaml", {"models": [body]})).exit_code == 0

    assert lisa.json("schedule", "get", "cli-sched")["scheduling"] == {}
    set_result = lisa.json("schedule", "set", "cli-sched", "-f", write(tmp_path / "s.yaml", schedule))
    assert set_result["scheduleEnabled"] is True
    got = lisa.json("schedule", "get", "cli-sched")
    assert got["scheduling"]["recurringSchedule"] == window
    assert lisa.json("schedule", "status", "cli-sched")["scheduleStatus"] == "ACTIVE"
    bad = lisa(
        "schedule", "set", "cli-sched", "-f", write(tmp_path / "b.yaml", schedule | {"timezone": "Mars/Base"})
    )
    assert bad.exit_code == 2 and "timezone" in bad.stderr  # checked before any call

    # The file without the schedule: apply deletes it through the schedule route; with it: sets it.
    plan = lisa("apply", "-f", str(tmp_path / "models.yaml"))
    assert (
        plan.exit_code == 0
        and "~ update cli-sched" in plan.stdout
        and "autoScalingConfig.scheduling" in plan.stdout
    )
    assert lisa.json("schedule", "get", "cli-sched")["scheduling"] == {}
    scheduled = body | {"autoScalingConfig": body["autoScalingConfig"] | {"scheduling": schedule}}
    assert lisa("apply", "-f", write(tmp_path / "models.yaml", {"models": [scheduled]})).exit_code == 0
    assert lisa.json("schedule", "get", "cli-sched")["scheduling"]["recurringSchedule"] == window
    assert "no changes" in lisa("apply", "-f", str(tmp_path / "models.yaml")).stdout

    assert lisa.json("schedule", "delete", "cli-sched")["scheduleEnabled"] is False
    assert lisa("models", "delete", "cli-sched", "--wait").exit_code == 0


def test_the_python_client_drives_local_mode_and_its_serve_api(lisa: Lisa) -> None:

    connection = from_local(lisa.local.state_file)
    with LisaClient(connection.admin_url, connection.token, serve_url=connection.serve_url) as client:
        client.create_model(CreateModelRequest.model_validate(external("cli-py")))
        with pytest.raises(Conflict) as duplicate:
            client.create_model(CreateModelRequest.model_validate(external("cli-py")))
        assert "already exists" in duplicate.value.message
        seen: list[str] = []
        model = client.wait_for(
            "cli-py",
            ModelStatus.IN_SERVICE,
            120,
            poll=0.2,
            on_progress=lambda i, m, t: seen.append(str(m.status if m else None)),
        )
        assert model.status == ModelStatus.IN_SERVICE and seen[-1] == "InService"
        serve = client.serve_client()
        wait_for(lambda: "cli-py" in {m.id for m in serve.models.list()}, 10, "cli-py on the serve API")
        client.delete_model("cli-py")
        client.wait_deleted("cli-py", 120, poll=0.2)
        assert "cli-py" not in {m.modelId for m in client.list_models()}
