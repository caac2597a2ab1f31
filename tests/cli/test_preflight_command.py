"""``lisa preflight``: the ``make preflight`` checks from the CLI, against the emulator (moto) with
Service Quotas and Bedrock access from recorded answers (as tests/unit/test_preflight.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from moto import mock_aws

from lisa_client.cli import main
from lisa_stacks.config import EXAMPLE_CONFIG_PATH
from tests.support import lisa_payloads as payloads
from tests.unit.test_preflight import RecordedBedrock, bootstrapped, clients, imported_config


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def config_file(tmp_path: Path) -> Path:
    """The example config with the emulator's VPC imported (what ``imported_config`` builds)."""
    raw = yaml.safe_load(Path(EXAMPLE_CONFIG_PATH).read_text())
    raw["vpc"] = imported_config().model_dump(mode="json", by_alias=True)["vpc"]
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [payloads.BEDROCK_MODEL]}))
    return path


def test_preflight_prints_the_report_and_exits_non_zero_on_a_finding(
    aws: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrapped()
    config, models = config_file(tmp_path), models_file(tmp_path)
    bedrock_id = payloads.BEDROCK_MODEL["modelName"].removeprefix("bedrock/")
    refused = RecordedBedrock({bedrock_id: "access not granted"})
    monkeypatch.setattr("lisa_preflight.__main__.clients", lambda session: clients(bedrock=refused))
    runner = CliRunner()

    passing = runner.invoke(main, ["preflight", "-c", str(config)])
    failing = runner.invoke(main, ["preflight", "-c", str(config), "-m", str(models)])

    assert passing.exit_code == 0, passing.output
    assert "ok   CDK bootstrap" in passing.output and "FAIL" not in passing.output
    assert failing.exit_code == 1, failing.output
    assert "FAIL models" in failing.output and "access not granted" in failing.output
    assert refused.asked == [bedrock_id]


def test_preflight_exits_two_on_an_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vpc: {}\n")
    assert CliRunner().invoke(main, ["preflight", "--config", str(bad)]).exit_code == 2
