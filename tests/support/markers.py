"""Mark each test with the services its fixtures start (``pytest -m "not uwsgi"``)."""

from __future__ import annotations

import pytest

#: fixture name -> the markers a test using it (directly or through another fixture) gets.
FIXTURE_MARKERS: dict[str, tuple[str, ...]] = {
    "mariadb": ("mariadb",),
    "mariadb_params": ("mariadb",),
    "mariadb_tls": ("mariadb",),
    "memcached": ("memcached",),
    "postgres": ("postgres",),
    "memcached_cluster": ("memcached",),
    "start_uwsgi": ("uwsgi",),
    "uwsgi_hello": ("uwsgi",),
    "start_todo": ("uwsgi",),  # the todo example under uWSGI (tests/test_todo.py, test_faults.py)
    "start_nginx": ("nginx",),
    "start_gunicorn": ("gunicorn",),
    "cluster": ("uwsgi", "nginx", "slow"),  # tests/test_cluster.py: nginx + three uWSGI nodes
    "browser": ("browser", "slow"),
    "webmini_run": ("devserver",),
}

#: Modules whose tests start a service themselves (a runner built in the test or in a
#: module fixture of their own): every test in them gets these markers.
MODULE_MARKERS: dict[str, tuple[str, ...]] = {
    "test_async_servers.py": ("uwsgi", "gunicorn"),
    "test_exposure.py": ("uwsgi", "nginx"),
    "test_forwarded.py": ("uwsgi", "nginx"),
    "test_gunicorn.py": ("gunicorn",),
    "test_hostile.py": ("uwsgi", "nginx"),
    "test_logs_servers.py": ("uwsgi", "gunicorn"),
    "test_operations.py": ("uwsgi", "gunicorn"),
    "test_reload.py": ("uwsgi", "gunicorn", "slow"),
    "test_security_core.py": ("uwsgi", "nginx"),
    "test_security_uwsgi.py": ("uwsgi",),
    "test_security_websocket.py": ("uwsgi", "nginx"),
    "test_uwsgi.py": ("uwsgi",),
    "test_uwsgi_own_app.py": ("uwsgi",),
    "test_uwsgi_router.py": ("uwsgi",),
    "test_websocket.py": ("uwsgi", "gunicorn"),
    "test_packaging.py": ("slow",),  # builds a wheel, installs it in a fresh venv
    "test_pytest_plugin.py": ("slow",),  # runs pytest in subprocesses
}

#: ``file::test`` -> markers, for a test that reaches a service through ``getfixturevalue``
#: or runs long in-process.
TEST_MARKERS: dict[str, tuple[str, ...]] = {
    "test_webpy_db.py::test_postgres_is_cooperative": ("postgres",),
    "test_webpy_db.py::test_sqlite_calls_leave_the_hub_free": ("slow",),  # 2,000-row scans
}

#: A parametrized fixture's param that names a service: ``server[uwsgi]`` starts uWSGI.
PARAM_MARKERS = {"uwsgi": "uwsgi", "gunicorn": "gunicorn", "mysql": "mariadb", "postgres": "postgres"}

#: marker -> what it means (registered in pyproject.toml too, for --markers).
MARKERS = {
    "mariadb": "starts a private MariaDB",
    "memcached": "starts private memcached servers",
    "postgres": "starts a private PostgreSQL",
    "uwsgi": "starts uWSGI",
    "nginx": "starts nginx",
    "gunicorn": "starts gunicorn",
    "browser": "drives a real browser (Chromium through Selenium)",
    "devserver": "starts `webmini run` (the dev server) in a subprocess",
    "slow": "runs for more than a few seconds",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the markers of the service fixtures each test uses (and of its module's services)."""
    for item in items:
        markers = set(MODULE_MARKERS.get(item.path.name, ()))
        name = getattr(item, "originalname", None) or item.name.split("[", 1)[0]
        markers.update(TEST_MARKERS.get(f"{item.path.name}::{name}", ()))
        for name in getattr(item, "fixturenames", ()):
            markers.update(FIXTURE_MARKERS.get(name, ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            for value in callspec.params.values():
                if isinstance(value, str) and value in PARAM_MARKERS:
                    markers.add(PARAM_MARKERS[value])
        for marker in sorted(markers):
            item.add_marker(marker)
