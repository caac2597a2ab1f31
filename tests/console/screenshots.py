"""``make screenshots``: every console page as a PNG, from local mode in headless Chromium.

Usage: ``python -m tests.console.screenshots [OUTPUT_DIR]`` (default ``docs/console``). It starts
local mode with its demo models (as the browser tests do), signs in with the printed link, and
writes one PNG per page at 1280x800 plus the models page in a narrow (420 px) window.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.console.browser import chromium, wait_for
from tests.e2e.conftest import REPO_ROOT, running_local_mode


def shoot(driver: WebDriver, route: str, selector: str, path: Path) -> None:
    driver.execute_script("location.hash = arguments[0]", route)
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector), 60, f"{route}: no {selector}")
    time.sleep(1.0)  # the page's first poll and layout settle
    driver.save_screenshot(str(path))
    print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


def main(argv: list[str]) -> int:
    out = (Path(argv[0]) if argv else REPO_ROOT / "docs" / "console").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="lisa-screenshots-") as tmp,
        running_local_mode(Path(tmp)) as local,
    ):
        link = json.loads(local.state_file.read_text())["consoleUrl"]
        with chromium() as driver:
            driver.get(link)
            wait_for(
                driver, lambda d: d.find_elements(By.CSS_SELECTOR, '.badge[data-status="InService"]'), 60
            )
            shoot(driver, "#/models", '.badge[data-status="InService"]', out / "models.png")
            shoot(driver, "#/models/smollm2", ".facts", out / "model-detail.png")
            shoot(driver, "#/models/new", "form.model-form", out / "model-form.png")
            shoot(driver, "#/tokens", "table.tokens tbody tr", out / "tokens.png")
            shoot(driver, "#/usage", ".usage table, .usage .notice", out / "usage.png")
            driver.execute_script("location.hash = '#/playground'")
            picker = wait_for(
                driver, lambda d: d.find_elements(By.CSS_SELECTOR, "form.playground-form select"), 30
            )[0]
            Select(picker).select_by_value("smollm2")
            driver.find_element(By.CSS_SELECTOR, "form.playground-form textarea").send_keys(
                "Say hello to the LISA console."
            )
            driver.find_element(By.CSS_SELECTOR, "form.playground-form button[type=submit]").click()
            shoot(driver, "#/playground", ".msg.assistant p.done", out / "playground.png")
        with chromium(width=420, height=800) as narrow:
            # The link worked once; the narrow window signs in with the pasted admin token.
            narrow.get(link.split("#")[0] + "#/sign-in")
            fields = wait_for(narrow, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=password]"), 30)
            fields[0].send_keys(local.admin_token)
            narrow.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
            shoot(narrow, "#/models", '.badge[data-status="InService"]', out / "models-narrow.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
