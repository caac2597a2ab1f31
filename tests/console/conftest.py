"""Local mode (the e2e fixture's ``start_local_mode``) and a headless Chromium signed in to its console."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.console.browser import browser_missing_reason, chromium
from tests.e2e.conftest import LocalMode, running_local_mode

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def console_local_mode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMode]:
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    with running_local_mode(tmp_path_factory.mktemp("console-local-mode")) as local:
        yield local


@pytest.fixture(scope="module")
def console_link(console_local_mode: LocalMode) -> str:
    """The one-time sign-in link local mode wrote to its state file (``consoleUrl``)."""
    return str(json.loads(console_local_mode.state_file.read_text())["consoleUrl"])


@pytest.fixture(scope="module")
def browser(console_local_mode: LocalMode) -> Iterator[object]:
    with chromium() as driver:
        yield driver
