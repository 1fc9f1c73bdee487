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
}

#: A parametrized fixture's param that names a service: ``server[uwsgi]`` starts uWSGI.
PARAM_MARKERS = {"uwsgi": "uwsgi", "gunicorn": "gunicorn"}

#: marker -> what it means (registered in pyproject.toml too, for --markers).
MARKERS = {
    "mariadb": "starts a private MariaDB",
    "memcached": "starts private memcached servers",
    "postgres": "starts a private PostgreSQL",
    "uwsgi": "starts uWSGI",
    "nginx": "starts nginx",
    "gunicorn": "starts gunicorn",
    "browser": "drives a real browser (Chromium through Selenium)",
    "slow": "runs for more than a few seconds",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the markers of the service fixtures each test uses."""
    for item in items:
        markers = set()
        for name in getattr(item, "fixturenames", ()):
            markers.update(FIXTURE_MARKERS.get(name, ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            for value in callspec.params.values():
                if isinstance(value, str) and value in PARAM_MARKERS:
                    markers.add(PARAM_MARKERS[value])
        for marker in sorted(markers):
            item.add_marker(marker)
