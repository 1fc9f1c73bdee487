"""End to end: the chat example in headless Chromium, served by uWSGI with two workers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_websocket import ROOT, UWSGI_, worker_stopped

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The chat example under uWSGI, 2 workers, fan-out in a private directory."""
    tmp = tmp_path_factory.mktemp("chat")
    srv = UWSGI_("app:application", 2, tmp, env={"CHAT_FANOUT_DIR": str(tmp / "fanout")},
                 pythonpath=ROOT / "examples" / "chat")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by chromedriver (Debian packages)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install selenium")
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.fail("chromium and chromium-driver are needed (scripts/debian-packages.txt)")
    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def open_page(driver: Any, url: str) -> str:
    """Load the chat page in the current tab; return the worker pid serving its socket."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    return str(WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.body.dataset.worker")))


def messages(driver: Any) -> list[str]:
    """The chat lines shown in the current tab."""
    return list(driver.execute_script(
        "return Array.from(document.querySelectorAll('#log li')).map(e => e.textContent)"))


def test_message_from_one_page_arrives_in_another_on_another_worker(chat: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base = f"http://127.0.0.1:{chat.port}/"
    alice_tab = browser.current_window_handle
    alice_worker = open_page(browser, base + "?name=alice")
    browser.switch_to.new_window("tab")
    bob_tab = browser.current_window_handle
    # With alice's worker stopped, bob's page and socket go to the other worker.
    with worker_stopped(int(alice_worker)):
        bob_worker = open_page(browser, base + "?name=bob")
    assert bob_worker != alice_worker

    browser.switch_to.window(alice_tab)
    browser.find_element(By.ID, "text").send_keys("hello <b>bob</b>")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 10).until(lambda d: "alice: hello <b>bob</b>" in messages(d))

    browser.switch_to.window(bob_tab)
    WebDriverWait(browser, 10).until(lambda d: "alice: hello <b>bob</b>" in messages(d))
    # Shown as text, never as markup.
    assert browser.find_elements(By.CSS_SELECTOR, "#log b") == []

    browser.find_element(By.ID, "text").send_keys("hi alice")
    browser.find_element(By.ID, "send").click()
    browser.switch_to.window(alice_tab)
    WebDriverWait(browser, 10).until(lambda d: "bob: hi alice" in messages(d))
