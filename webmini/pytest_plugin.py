"""pytest plugin for testing webmini apps (registered through the ``pytest11`` entry point).

Fixtures:

* ``webmini_app``: the application under test. Define your own fixture of
  that name, or set ``webmini_app = myapp:app`` in the pytest ini.
* ``webmini_client``: a :class:`webmini.testing.TestClient` for it.
* ``webmini_browser``: a :class:`webmini.testing.Browser` (keeps cookies).
* ``gevent_patched``: the test runs in a gevent-patched process, as under
  ``webmini run`` or uWSGI (cooperative sockets, ``offload()``, timeouts).

Set ``webmini_gevent = true`` in the pytest ini (or pass ``--webmini-gevent``)
to patch the process before any conftest or test module is imported: the
way it is patched in production, and what ``gevent_patched`` then checks.
Without it, ``gevent_patched`` patches on first use, late (with a warning).
"""

from __future__ import annotations

from typing import Any

import pytest

from webmini.testing import Browser, TestClient

__all__ = ["gevent_patched", "webmini_app", "webmini_browser", "webmini_client"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``webmini_app`` and ``webmini_gevent`` settings."""
    group = parser.getgroup("webmini")
    group.addoption("--webmini-gevent", action="store_true", default=False,
                    help="patch the process with gevent before tests are collected")
    parser.addini("webmini_gevent", type="bool", default=False,
                  help="patch the process with gevent before tests are collected")
    parser.addini("webmini_app", default="",
                  help="module:app the webmini_app fixture loads (unless a test defines it)")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: Any, args: Any) -> None:
    """Patch with gevent before any conftest or test module is imported, when asked to."""
    wanted = "--webmini-gevent" in args or early_config.getini("webmini_gevent")
    if wanted:
        from webmini.serving import green

        green.patch()


def _is_patched() -> bool:
    from gevent import monkey

    return bool(monkey.is_module_patched("socket") and monkey.is_module_patched("threading"))


@pytest.fixture(scope="session")
def gevent_patched() -> bool:
    """Make sure the process is gevent-patched (early with ``webmini_gevent = true``)."""
    if not _is_patched():
        from webmini.serving import green

        green.patch()
    return _is_patched()


@pytest.fixture
def webmini_app(pytestconfig: pytest.Config) -> Any:
    """The application under test: the ini's ``webmini_app`` target, or define this fixture."""
    target = pytestconfig.getini("webmini_app")
    if not target:
        raise pytest.UsageError(
            "webmini: define a `webmini_app` fixture returning your application, "
            "or set `webmini_app = module:app` in the pytest ini"
        )
    from webmini.cli import load_object

    return load_object(str(target))


@pytest.fixture
def webmini_client(webmini_app: Any) -> TestClient:
    """A test client for ``webmini_app``."""
    return TestClient(webmini_app)


@pytest.fixture
def webmini_browser(webmini_app: Any) -> Browser:
    """A test client for ``webmini_app`` that keeps cookies between requests."""
    return Browser(webmini_app)
