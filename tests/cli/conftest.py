"""The CLI tier: ``lisa`` driven in-process (click's runner) against one local mode for the session.

Local mode starts as in the end-to-end tier (``tests.e2e.conftest.start_local_mode``), without the
demo models (each test creates what it needs); ``LISA_LOCAL_STATE_FILE`` points ``lisa --local``
at it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from lisa_client.cli import main
from tests.e2e.conftest import LocalMode, running_local_mode


@pytest.fixture(scope="session")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    with running_local_mode(tmp_path_factory.mktemp("cli-local-mode"), "--no-demo") as instance:
        yield instance


class Lisa:
    """``lisa --local ...`` in-process, with the environment a test gives it."""

    def __init__(self, local: LocalMode, monkeypatch: pytest.MonkeyPatch) -> None:
        self.local = local
        monkeypatch.setenv("LISA_LOCAL_STATE_FILE", str(local.state_file))
        monkeypatch.delenv("LISA_ADMIN_URL", raising=False)
        monkeypatch.delenv("LISA_TOKEN", raising=False)

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(main, ["--local", *args], input=stdin, catch_exceptions=False)

    def json(self, *args: str) -> Any:
        result = self(*args, "-o", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def lisa(local: LocalMode, monkeypatch: pytest.MonkeyPatch) -> Lisa:
    return Lisa(local, monkeypatch)


def external(model_id: str, **overrides: Any) -> dict[str, Any]:
    """A third-party model on a loopback URL: reaches InService without hosting anything."""
    return {
        "modelId": model_id,
        "modelName": "openai/gpt-4o-mini",
        "modelType": "textgen",
        "modelUrl": "http://127.0.0.1:9/v1",
        "modelDescription": "cli test",
        **overrides,
    }


def write(path: Path, data: Any) -> str:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)
