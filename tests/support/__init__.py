"""What the tests need around webmini: private services, free ports, fixtures and markers.

- ``mariadb``, ``memcached``, ``postgres``, ``servers`` (uWSGI, nginx, the
  todo example, ``webmini run``), ``gunicorn``: pytest fixture plugins,
  loaded by ``tests/conftest.py``; the runners themselves live in the
  top-level ``localservices`` package, shared with the benchmarks and the
  local cluster.
- :func:`free_port`: the one way to get a free loopback port.
- :func:`session_server`: a fixture's body around ``start_mariadb``/``start_postgres``.
- ``markers``: a test using a service's fixture gets that service's marker
  (``mariadb``, ``memcached``, ``uwsgi``, ``nginx``, ``browser``), so
  ``pytest -m "not uwsgi"`` leaves those tests out.
"""

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from localservices import LocalServer, ServiceError, free_port

__all__ = ["free_port", "session_server", "started_servers"]

S = TypeVar("S", bound=LocalServer)


def session_server(start: Callable[[], S], what: str) -> Iterator[S]:
    """Run ``start()``'s server for a fixture; one that cannot start fails the test, no skip."""
    try:
        server = start()
    except ServiceError as exc:
        pytest.fail(f"cannot start a private {what}: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()


def started_servers(make: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """A factory fixture's body: ``start(...)`` builds a server with ``make(...)`` and starts
    it; every server started is stopped when the fixture ends."""
    servers: list[Any] = []

    def start(*args: Any, **kw: Any) -> Any:
        server = make(*args, **kw)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
