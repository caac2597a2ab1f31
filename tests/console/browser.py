"""Headless Chromium driven by Selenium (Debian's ``chromium`` and ``chromium-driver``; no download).

``CHROMIUM_FLAGS`` keep the browser off the network (no updates, sync or background requests) and
give every run a fresh profile. ``browser_missing_reason`` says why the browser tests cannot run:
only when Chromium is absent *and* this is not CI (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
T = TypeVar("T")


def browser_missing_reason() -> str | None:
    """Why the browser tests must skip, or None when they can (or must, in CI) run."""
    if os.environ.get("CI"):
        return None
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return f"{path} is not installed (apt-get install -y chromium chromium-driver; CI installs it)"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 800) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile, closed (and its profile removed) afterwards."""
    profile = tempfile.mkdtemp(prefix="lisa-console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(shutil.which("chromedriver") or CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(
    driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 30, message: str = ""
) -> T:
    """``condition``'s first truthy value within ``timeout`` seconds (Selenium's explicit wait).

    The console re-renders live tables every few seconds, so an element found by ``condition`` can
    be replaced before it is read: a stale element means "look again", like a missing one.
    """
    result: Any = WebDriverWait(
        driver,
        timeout,
        poll_frequency=0.1,
        ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
    ).until(condition, message)
    return result
