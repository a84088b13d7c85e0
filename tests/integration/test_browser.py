"""A real browser loads a Streamlit app through appyard; its WebSocket must connect."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.integration.test_specs import APPS, SLOW_BUILDS
from tests.support.server import AppyardServer


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def test_streamlit_page_renders_through_proxy(server_factory, browser, tmp_path: Path) -> None:
    server: AppyardServer = server_factory("podman", SLOW_BUILDS)
    src = tmp_path / "streamlit"
    shutil.copytree(APPS / "streamlit", src)
    server.cli("app", "create", "--spec", "python-streamlit", "--approve", str(src), "/st")
    server.cli("app", "reload", "/st", timeout=1500)  # build and start before the browser
    browser.get(server.url + "/st/")
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        # The title and body are rendered by the page's script from data that arrives over
        # the WebSocket (/st/_stcore/stream); they cannot appear unless it connected.
        text = browser.find_element("tag name", "body").text
        if "rendered by streamlit through the proxy" in text:
            break
        time.sleep(0.5)
    else:
        browser.save_screenshot(str(tmp_path / "streamlit.png"))
        raise AssertionError(f"streamlit content never rendered; page text: {text[:500]!r}")
    assert "Streamlit on appyard" in text
