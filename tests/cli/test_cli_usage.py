"""``lisa usage`` against local mode: a request the serve API metered shows up (replicas flush
usage every few seconds), per model, and in the caller's own usage."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from lisa_client import LisaClient
from lisa_client.connection import from_local
from tests.cli.conftest import Lisa, external, write
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def test_usage_shows_what_the_serve_api_metered(lisa: Lisa, tmp_path: Path) -> None:
    assert lisa("apply", "-f", write(tmp_path / "m.yaml", {"models": [external("cli-usage")]})).exit_code == 0
    connection = from_local(lisa.local.state_file)
    with LisaClient(connection.admin_url, connection.token, serve_url=connection.serve_url) as client:
        serve = client.serve_client().with_options(max_retries=0)
        with pytest.raises(openai.APIError):  # the provider URL answers nothing: an error, metered
            serve.chat.completions.create(model="cli-usage", messages=[{"role": "user", "content": "hi"}])

    def metered() -> bool:
        rows = lisa.json("usage", "--group-by", "model")["usage"]
        return any(row["model"] == "cli-usage" and row["requests"] >= 1 for row in rows)

    wait_for(metered, 60, "the request in GET /usage", interval=1)
    report = lisa.json("usage", "--group-by", "model")
    assert report["groupBy"] == "model" and "from" in report and "to" in report
    table = lisa("usage", "--group-by", "model")
    assert table.exit_code == 0 and "cli-usage" in table.stdout
    mine = lisa.json("usage", "--me")
    assert mine["username"] == "local-admin"
    assert any(day["model"] == "cli-usage" for day in mine["usage"]) and mine["total"]["requests"] >= 1
    bad = lisa("usage", "--from", "yesterday")
    assert bad.exit_code == 1 and "from" in bad.stderr
    assert lisa("models", "delete", "cli-usage", "--wait").exit_code == 0
