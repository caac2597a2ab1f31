"""The CLI's output: formats for scripts, and the wait display on and off a terminal."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from rich.console import Console

from lisa_client.output import OutputFormat, WaitDisplay, emit
from lisa_domain.schema import ModelRecord

ROW = {"modelId": "m1", "status": "InService", "statusReason": None}


def test_json_and_yaml_print_the_objects_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    emit([ROW], OutputFormat.JSON, ("modelId",))
    assert json.loads(capsys.readouterr().out) == [ROW]
    emit(ROW, OutputFormat.YAML, ("modelId",))
    assert yaml.safe_load(capsys.readouterr().out) == ROW


def model(status: str, reason: str | None = None) -> ModelRecord:
    return ModelRecord.model_validate(
        {
            "modelId": "m1",
            "modelName": "n",
            "modelType": "textgen",
            "status": status,
            "statusReason": reason,
            "createdAt": 1,
            "updatedAt": 1,
        }
    )


def test_off_a_terminal_each_status_or_step_change_is_one_line() -> None:
    out = io.StringIO()
    with WaitDisplay(Console(file=out, force_terminal=False)) as display:
        display.update("m1", model("Creating"), 0.2)
        display.update("m1", model("Creating"), 1.2)
        display.update("m1", model("Creating", "waiting for the stack"), 2.1)
        display.update("m1", model("InService"), 3.0)
        display.update("m1", None, 4.0)
    assert out.getvalue().splitlines() == [
        "m1: Creating (0 s)",
        "m1: Creating (2 s): waiting for the stack",
        "m1: InService (3 s)",
        "m1: deleted (4 s)",
    ]


def test_on_a_terminal_one_live_table_shows_every_model() -> None:
    out = io.StringIO()
    with WaitDisplay(Console(file=out, force_terminal=True, width=100)) as display:
        display.update("m1", model("Stopping", "scaling to zero"), 1.0)
        display.update("m2", model("Creating"), 2.0)
    text = out.getvalue()
    assert "scaling to zero" in text and "m2" in text and "Creating" in text
