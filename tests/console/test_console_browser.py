"""The console in a real browser (headless Chromium) against local mode, as a person uses it.

The tests run in file order in one browser tab: sign in with the link ``make local`` prints, then
each page. ``window.__lisaNoReload`` is set once after sign-in; a test that watches a status change
checks it is still there, which proves the page changed without a reload.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from tests.console.browser import wait_for
from tests.e2e.conftest import LocalMode
from tests.support import waiting

pytestmark = pytest.mark.e2e

EXTERNAL_ID = "console-external"


def status_of(driver: WebDriver, model_id: str) -> str:
    badges = driver.find_elements(By.CSS_SELECTOR, f'tr[data-model-id="{model_id}"] .badge')
    return badges[0].get_attribute("data-status") or "" if badges else ""


def wait_status(driver: WebDriver, model_id: str, status: str, timeout: float = 120) -> None:
    wait_for(
        driver,
        lambda d: status_of(d, model_id) == status,
        timeout,
        f"{model_id} never showed {status} (last: {status_of(driver, model_id)!r})",
    )


def go(driver: WebDriver, route: str) -> None:
    """Navigate inside the app (a hash change, never a page load)."""
    driver.execute_script("location.hash = arguments[0]", route)


def labelled(driver: WebDriver, label: str) -> WebElement | None:
    """The control a visible <label> names (every control has one), or None."""
    for element in driver.find_elements(By.XPATH, f'//label[normalize-space()="{label}"]'):
        if element.is_displayed():
            return driver.find_element(By.ID, element.get_attribute("for") or "")
    return None


def field_input(driver: WebDriver, label: str, timeout: float = 20) -> WebElement:
    element = wait_for(
        driver, lambda d: labelled(d, label), timeout, f"no visible control labelled {label!r}"
    )
    assert element is not None
    return element


def field_error(driver: WebDriver, control: WebElement) -> str:
    error = driver.find_element(By.ID, f"{control.get_attribute('id')}-error")
    return error.text if error.is_displayed() else ""


def click(driver: WebDriver, selector: str, timeout: float = 30) -> None:
    """Click the element ``selector`` names once it is enabled (pages redraw while they poll, so
    the element is found and clicked in one step inside the page)."""
    wait_for(
        driver,
        lambda d: d.execute_script(
            "const el = document.querySelector(arguments[0]);"
            "if (!el || el.disabled) return false; el.click(); return true;",
            selector,
        ),
        timeout,
        f"nothing to click at {selector}",
    )


def confirm(driver: WebDriver) -> None:
    wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, "dialog[open] button.danger")).click()


def history_caption(driver: WebDriver) -> str:
    captions = driver.find_elements(By.CSS_SELECTOR, "table.status-history caption")
    return captions[0].text if captions else ""


def history_statuses(driver: WebDriver) -> list[str]:
    badges = driver.find_elements(By.CSS_SELECTOR, "table.status-history tbody .badge")
    return [badge.get_attribute("data-status") or "" for badge in badges]


def no_reload_marker(driver: WebDriver) -> Any:
    return driver.execute_script("return window.__lisaNoReload")


def test_sign_in_link_shows_the_demo_models_in_service(
    browser: WebDriver, console_link: str, console_local_mode: LocalMode
) -> None:
    assert "#code=" in console_link
    browser.get(console_link)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "table.models"), 30, "no models table")
    assert "code=" not in browser.current_url, "the code must leave the address bar"
    wait_status(browser, "smollm2", "InService", 30)
    wait_status(browser, "e5-small", "InService", 30)
    assert "(admin)" in browser.find_element(By.ID, "who").text
    browser.execute_script("window.__lisaNoReload = 1")

    # The link worked once: the same code is refused now.
    code = console_link.split("#code=", 1)[1]
    base = console_link.split("#", 1)[0].rstrip("/")
    again = httpx.post(f"{base}/local/sign-in", json={"code": code}, timeout=10)
    assert again.status_code == 401


def test_create_an_external_model_shows_the_field_error_then_creates_it(browser: WebDriver) -> None:
    go(browser, "#/models/new")
    model_url = field_input(browser, "Provider URL")
    field_input(browser, "Model ID").send_keys(EXTERNAL_ID)
    field_input(browser, "Model name").send_keys("openai/console-test")
    model_url.send_keys("ftp://127.0.0.1/v1")
    field_input(browser, "Provider API key").send_keys("sk-console-test")
    browser.find_element(By.CSS_SELECTOR, "form.model-form button[type=submit]").click()

    message = wait_for(browser, lambda d: field_error(d, model_url), 20, "no error under Provider URL")
    assert "scheme" in message
    assert model_url.get_attribute("aria-invalid") == "true"
    assert browser.switch_to.active_element == model_url, "focus moves to the first field with an error"

    model_url.clear()
    model_url.send_keys("http://127.0.0.1:9/v1")
    browser.find_element(By.CSS_SELECTOR, "form.model-form button[type=submit]").click()
    wait_for(browser, lambda d: d.current_url.endswith(f"#/models/{EXTERNAL_ID}"), 20, "no detail page")
    go(browser, "#/models")
    wait_status(browser, EXTERNAL_ID, "InService", 60)
    assert no_reload_marker(browser) == 1


def snippet_text(driver: WebDriver) -> str:
    return "\n".join(code.text for code in driver.find_elements(By.CSS_SELECTOR, ".snippet pre"))


def test_a_reranker_is_created_without_streaming_from_the_default_form(
    browser: WebDriver, console_local_mode: LocalMode
) -> None:
    """Streaming is ticked by default; rerank models cannot stream, like embedding models. Its
    detail page shows how to call /rerank."""
    go(browser, "#/models/new")
    field_input(browser, "Model ID").send_keys("console-rerank")
    field_input(browser, "Model name").send_keys("cohere/rerank-v3.5")
    Select(field_input(browser, "Type")).select_by_value("rerank")
    field_input(browser, "Provider URL").send_keys("http://127.0.0.1:9/v1")
    field_input(browser, "Provider API key").send_keys("sk-console-test")
    browser.find_element(By.CSS_SELECTOR, "form.model-form button[type=submit]").click()
    wait_for(browser, lambda d: d.current_url.endswith("#/models/console-rerank"), 20, "no detail page")
    snippets = wait_for(browser, snippet_text, 20, "no snippets")
    assert "/rerank" in snippets and '"documents"' in snippets and "chat" not in snippets
    with console_local_mode.admin() as admin:
        assert admin.get("/models/console-rerank").json()["model"]["streaming"] is False

        def rerank_in_service() -> bool:
            return bool(admin.get("/models/console-rerank").json()["model"]["status"] == "InService")

        waiting.wait_for(rerank_in_service, 60, "console-rerank InService", interval=0.5)
        assert admin.delete("/models/console-rerank").status_code == 200


@pytest.mark.parametrize(
    ("model_type", "model_name", "call"),
    [
        ("tts", "openai/tts-1", "client.audio.speech.create("),
        ("stt", "openai/whisper-1", "client.audio.transcriptions.create("),
    ],
)
def test_the_snippets_of_an_audio_model_call_its_route(
    browser: WebDriver, console_local_mode: LocalMode, model_type: str, model_name: str, call: str
) -> None:
    model_id = f"console-{model_type}"
    body = {
        "modelId": model_id,
        "modelName": model_name,
        "modelType": model_type,
        "modelUrl": "http://127.0.0.1:9/v1",
    }
    with console_local_mode.admin() as admin:
        assert admin.post("/models", json=body).status_code == 201
        go(browser, f"#/models/{model_id}")
        snippets = wait_for(browser, snippet_text, 20, "no snippets")
        assert call in snippets and "chat" not in snippets

        def in_service() -> bool:
            return bool(admin.get(f"/models/{model_id}").json()["model"]["status"] == "InService")

        waiting.wait_for(in_service, 60, f"{model_id} InService", interval=0.5)
        assert admin.delete(f"/models/{model_id}").status_code == 200


def test_deleting_a_model_others_fall_back_to_shows_the_warning(
    browser: WebDriver, console_local_mode: LocalMode
) -> None:
    backup = {
        "modelId": "console-backup",
        "modelName": "openai/console-backup",
        "modelType": "textgen",
        "modelUrl": "http://127.0.0.1:9/v1",
        "fallbacks": [EXTERNAL_ID],
    }
    with console_local_mode.admin() as admin:
        assert admin.post("/models", json=backup).status_code == 201
    go(browser, "#/models")
    wait_status(browser, EXTERNAL_ID, "InService", 30)
    click(browser, f'button[aria-label="Delete {EXTERNAL_ID}"]')
    confirm(browser)
    shown = wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#notice .notice.warning"), 20, "no warning shown"
    )
    assert f"Deleting {EXTERNAL_ID}" in shown[0].text
    assert "requests of 'console-backup' skip it" in shown[0].text
    with console_local_mode.admin() as admin:

        def backup_in_service() -> bool:
            return bool(admin.get("/models/console-backup").json()["model"]["status"] == "InService")

        waiting.wait_for(backup_in_service, 60, "console-backup InService", interval=0.5)
        assert admin.delete("/models/console-backup").status_code == 200


def test_stop_and_start_a_model_and_watch_its_status_without_reload(browser: WebDriver) -> None:
    go(browser, "#/models")
    wait_status(browser, "e5-small", "InService", 30)
    click(browser, 'button[aria-label="Stop e5-small"]')
    wait_status(browser, "e5-small", "Stopped", 120)
    click(browser, 'button[aria-label="Start e5-small"]')
    wait_for(browser, lambda d: status_of(d, "e5-small") in ("Starting", "InService"), 30)
    wait_status(browser, "e5-small", "InService", 180)
    assert no_reload_marker(browser) == 1

    # The detail page shows the registry's history (every transition, not only what the tab saw).
    go(browser, "#/models/e5-small")
    wait_for(browser, lambda d: "Every status" in history_caption(d), 30, "no status history from the API")
    statuses = history_statuses(browser)  # newest first
    assert statuses[:4] == ["InService", "Starting", "Stopped", "Stopping"], statuses
    assert "InService" in statuses[4:], statuses


def test_create_and_revoke_a_token(browser: WebDriver, console_local_mode: LocalMode) -> None:
    go(browser, "#/tokens")
    name = field_input(browser, "Name")
    name.send_keys("console test token")
    browser.find_element(By.XPATH, '//button[normalize-space()="Create token"]').click()
    value = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "input.token-value"), 20)
    token = value.get_attribute("value") or ""
    assert token.startswith("lisa_")
    assert "shown only once" in browser.find_element(By.CSS_SELECTOR, ".created").text
    with httpx.Client(base_url=console_local_mode.serve_url, timeout=30) as serve:

        def answers(status: int) -> None:
            """The serve app follows token changes within a second or so."""
            deadline = time.monotonic() + 10
            while serve.get("/models", headers={"Authorization": f"Bearer {token}"}).status_code != status:
                assert time.monotonic() < deadline, f"the token never got {status} from the serve API"
                time.sleep(0.2)

        answers(200)
        click(browser, 'button[aria-label="Revoke console test token"]')
        confirm(browser)
        wait_for(
            browser,
            lambda d: not d.find_elements(By.CSS_SELECTOR, 'button[aria-label="Revoke console test token"]'),
            20,
            "the revoked token is still listed",
        )
        answers(401)


def test_playground_streams_the_reply(browser: WebDriver) -> None:
    go(browser, "#/playground")
    picker = field_input(browser, "Model")
    Select(picker).select_by_value("smollm2")
    field_input(browser, "Message").send_keys("Write two sentences about the sea.")
    browser.find_element(By.XPATH, '//button[normalize-space()="Send"]').click()

    # Streamed: the reply is seen partly written (still streaming) before it is complete.
    partial = wait_for(
        browser,
        lambda d: d.execute_script(
            "const p = document.querySelector('.msg.assistant p.streaming'); return p && p.textContent"
        ),
        60,
        "no text arrived while streaming",
    )
    final = wait_for(
        browser,
        lambda d: d.execute_script(
            "const p = document.querySelector('.msg.assistant p.done'); return p && p.textContent"
        ),
        120,
        "the reply never finished",
    )
    assert final.startswith(partial) and len(final) > len(partial)
    assert not browser.find_elements(By.CSS_SELECTOR, ".msg.assistant .notice.error")


@pytest.mark.parametrize("api", ["admin", "serve"])
def test_both_apis_answer_cors_for_the_console_origin_only(
    api: str, console_link: str, console_local_mode: LocalMode
) -> None:
    console_origin = console_link.split("/#", 1)[0]
    url = (
        f"{console_local_mode.admin_url}/models"
        if api == "admin"
        else f"{console_local_mode.serve_url}/models"
    )
    auth = {"Authorization": f"Bearer {console_local_mode.admin_token}"}
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    with httpx.Client(timeout=30) as client:
        for origin, allowed in (
            (console_origin, True),
            ("http://127.0.0.1:1", False),
            ("https://evil.example", False),
        ):
            answer = client.get(url, headers=auth | {"Origin": origin})
            assert answer.status_code == 200
            assert answer.headers.get("access-control-allow-origin") == (origin if allowed else None), origin
            options = client.options(url, headers=preflight | {"Origin": origin})
            assert options.headers.get("access-control-allow-origin") == (origin if allowed else None), origin
            if allowed:
                assert "authorization" in options.headers["access-control-allow-headers"].lower()
        refused = client.get(url, headers={"Origin": console_origin, "Authorization": "Bearer wrong"})
        assert refused.status_code == 401
        assert refused.headers.get("access-control-allow-origin") == console_origin, (
            "the browser must see a 401"
        )


UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => el.offsetParent !== null && el.type !== 'hidden')
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map((el) => el.outerHTML.slice(0, 120));
"""


@pytest.mark.parametrize(
    "route", ["#/models", "#/models/new", "#/models/smollm2", "#/tokens", "#/usage", "#/playground"]
)
def test_every_control_has_a_label_and_the_page_fits_a_narrow_window(browser: WebDriver, route: str) -> None:
    go(browser, route)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "main h1"), 20)
    time.sleep(0.5)
    assert browser.execute_script(UNLABELLED) == []
    browser.set_window_size(420, 800)
    try:
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (
            f"{route} scrolls sideways by {overflow} px at 420 px (tables scroll inside their box)"
        )
    finally:
        browser.set_window_size(1280, 800)
