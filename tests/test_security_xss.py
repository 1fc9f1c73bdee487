"""XSS through error bodies, tried in headless Chromium against uWSGI started from uwsgi.ini.

A cookie named like a script with an undecodable value (planted, say, from a
sibling subdomain) used to come back in a 400 body served as HTML; a
``notfound("no such user: " + name)`` reflected ``name``. The browser must
run neither.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.servers import UwsgiServer
from test_chat_browser import browser  # noqa: F401  (the headless Chromium fixture)

StartUwsgi = Callable[..., UwsgiServer]
TESTS = Path(__file__).resolve().parent


def _no_alert(driver: Any, seconds: float = 2.0) -> bool:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, seconds).until(expected_conditions.alert_is_present())
    except TimeoutException:
        return True
    driver.switch_to.alert.accept()
    return False


def test_no_script_runs_from_error_bodies(start_uwsgi: StartUwsgi, browser: Any) -> None:  # noqa: F811
    """A planted script-named cookie and a reflected 404 message run nothing in Chromium."""
    server = start_uwsgi(processes=1, env={"WEBMINI_MODULE": "security_core_app:application",
                                           "PYTHONPATH": str(TESTS)})
    base = f"http://{server.http_address}"
    browser.get(base + "/")
    assert "home" in browser.page_source
    browser.execute_script(
        'document.cookie = "<script>alert(document.domain)</script>=%ff; path=/";'
        'document.cookie = "user=ann; path=/";')
    assert "<script>" in browser.execute_script("return document.cookie")  # planted
    browser.get(base + "/profile")
    assert _no_alert(browser), "a script from a planted cookie ran"
    assert "profile of ann" in browser.page_source
    browser.get(base + "/user/<script>alert(document.domain)</script>")
    assert _no_alert(browser), "a script reflected in a 404 message ran"
    assert "no such user" in browser.find_element("tag name", "body").text
    browser.delete_all_cookies()
