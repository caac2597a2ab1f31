"""``lisa import-lisa`` on a LISA model table laid out as LISA writes it (moto).

The items follow LISA v6.6's layout (lambda/models/handler/create_model_handler.py and
state_machine/create_model.py): ``model_id`` key, ``model_status``, ``model_config`` = LISA's
``CreateModelRequest.model_dump()`` (every field, null when absent; ``apiKey`` in plain text),
``model_description``, ``last_modified_date``; once created also ``model_url``, ``litellm_id``,
``auto_scaling_group``, ``cloudformation_stack_name``, ``context_window``; ``failure_reason`` when
Failed.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner

from lisa_client import apply as planning
from lisa_client.cli import main
from lisa_client.modelfile import parse
from tests.support.lisa_payloads import VLLM_MODEL

SECRET = "sk-lisa-stored-4d1e"
TABLE = "lisa-prod-ModelTable"
#: Every field of LISA's CreateModelRequest, as its model_dump() writes them.
LISA_FIELDS = (
    "autoScalingConfig",
    "containerConfig",
    "inferenceContainer",
    "instanceType",
    "loadBalancerConfig",
    "modelId",
    "modelName",
    "modelDescription",
    "modelType",
    "modelUrl",
    "streaming",
    "features",
    "allowedGroups",
    "apiKey",
    "guardrailsConfig",
    "hostingType",
)


def lisa_item(config: dict[str, Any], status: str = "InService", **attributes: Any) -> dict[str, Any]:
    dumped = {name: config.get(name) for name in LISA_FIELDS} | {
        "hostingType": config.get("hostingType", "third_party")
    }
    dumped.pop("guardrailsConfig")  # LISA stores guardrails in their own table
    return {
        "model_id": config["modelId"],
        "model_status": status,
        "model_config": dumped,
        "model_description": config.get("modelDescription"),
        "last_modified_date": 1733200000,
        **attributes,
    }


HOSTED = VLLM_MODEL | {
    "autoScalingConfig": VLLM_MODEL["autoScalingConfig"]
    | {
        "scheduling": {
            "scheduleType": "RECURRING",
            "timezone": "Europe/Berlin",
            "recurringSchedule": {"startTime": "08:00", "stopTime": "18:00"},
            "scheduleEnabled": True,
            "scheduleConfigured": True,
            "lastScheduleFailed": False,
            "scheduledActionArns": [
                "arn:aws:autoscaling:us-east-1:123456789012:scheduledUpdateGroupAction:x"
            ],
        }
    }
}
ITEMS = [
    lisa_item(
        HOSTED,
        model_url="https://internal-lisa-mistral-123.us-east-1.elb.amazonaws.com/v1",
        litellm_id="3f1c",
        auto_scaling_group="lisa-mistral-asg",
        cloudformation_stack_name="lisa-mistral",
        context_window=8192,
    ),
    lisa_item(
        {
            "modelId": "gpt-4o",
            "modelName": "openai/gpt-4o",
            "modelType": "textgen",
            "streaming": True,
            "apiKey": SECRET,
            "allowedGroups": ["analysts"],
        },
        model_url=None,
        litellm_id="9a2b",
    ),
    lisa_item(
        {
            "modelId": "claude",
            "modelName": "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
            "modelType": "textgen",
            "apiKey": "ignored",
            "features": [{"name": "toolCalls", "overview": ""}],
        },
    ),
    lisa_item(
        {"modelId": "stopped-e5", "modelName": "intfloat/e5", "modelType": "embedding"}
        | {
            name: VLLM_MODEL[name]
            for name in ("instanceType", "containerConfig", "autoScalingConfig", "loadBalancerConfig")
        }
        | {"inferenceContainer": "tei"},
        status="Stopped",
    ),
    lisa_item(
        {"modelId": "broken", "modelName": "x", "modelType": "textgen"}
        | {name: VLLM_MODEL[name] for name in ("instanceType", "inferenceContainer", "loadBalancerConfig")}
        | {
            "containerConfig": VLLM_MODEL["containerConfig"] | {"image": {"baseImage": "x", "type": "s3"}},
            "autoScalingConfig": VLLM_MODEL["autoScalingConfig"],
        },
        status="Failed",
        failure_reason="stack rollback",
    ),
]


@pytest.fixture
def lisa_table(aws: None) -> str:
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    table = dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "model_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "model_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in ITEMS:
        table.put_item(Item=item)
    return TABLE


def run_import(*args: str) -> Any:
    return CliRunner().invoke(main, ["import-lisa", "--models-table", TABLE, "--region", "us-east-1", *args])


def test_import_writes_an_applicable_file_and_names_what_it_cannot_carry(
    lisa_table: str, tmp_path: Any
) -> None:
    target = tmp_path / "models.yaml"
    result = run_import("-f", str(target))
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert SECRET not in text and SECRET not in result.output
    entries = {entry["modelId"]: entry for entry in yaml.safe_load(text)["models"]}
    assert set(entries) == {"mistral-7b-instruct", "gpt-4o", "claude", "stopped-e5"}

    hosted = entries["mistral-7b-instruct"]
    assert (
        "modelUrl" not in hosted
        and hosted["hostingType"] == "lisa_hosted"
        and hosted["contextWindow"] == 8192
    )
    assert hosted["autoScalingConfig"]["scheduling"]["recurringSchedule"] == {
        "startTime": "08:00",
        "stopTime": "18:00",
    }
    assert "scheduleEnabled" not in hosted["autoScalingConfig"]["scheduling"]
    assert entries["gpt-4o"]["apiKey"] == {"fromEnv": "LISA_API_KEY_GPT_4O"}
    assert entries["gpt-4o"]["allowedGroups"] == ["analysts"]
    assert "apiKey" not in entries["claude"]  # LISA's Bedrock placeholder, not a key
    assert entries["stopped-e5"]["enabled"] is False

    notes = result.stderr
    assert "mistral-7b-instruct: modelUrl of the LISA-hosted endpoint dropped" in notes
    assert "gpt-4o: LISA stored its provider key in the table; not copied: set LISA_API_KEY_GPT_4O" in notes
    assert "broken: skipped: containerConfig.image.type" in notes
    assert "wrote 4 models" in notes

    desired = parse(text)  # the file is valid for lisa apply, and creates every model
    plan = planning.plan(desired, [], prune=False)
    assert [change.model_id for change in plan.changes] == list(entries)


def test_dry_run_prints_the_file_and_writes_nothing(
    lisa_table: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_import("--dry-run")
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["models"][0]["modelId"] == "claude"
    assert not (tmp_path / "models.yaml").exists()


def test_fields_this_api_lacks_are_dropped_by_name(lisa_table: str) -> None:
    from lisa_client.lisa_import import convert

    notes: list[str] = []
    item = lisa_item({"modelId": "m", "modelName": "openai/x", "modelType": "textgen"})
    item["model_config"]["legacyField"] = "x"
    entry = convert(item, notes)
    assert entry is not None and "legacyField" not in entry
    assert notes == ["m: legacyField is not supported here; dropped"]
