"""Fixtures: a private MariaDB for the whole session (see the top-level ``localservices`` package).

A server that cannot start is a test failure, never a skip. Tests that use
these fixtures get the ``mariadb`` marker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localservices import MariaDBServer, start_mariadb
from support import session_server

__all__ = ["MariaDBServer", "mariadb", "mariadb_params", "mariadb_tls"]


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    """A private MariaDB server for the whole session (restartable)."""
    yield from session_server(start_mariadb, "MariaDB")


@pytest.fixture(scope="session")
def mariadb_tls() -> Iterator[MariaDBServer]:
    """A second private MariaDB that speaks TLS: its certificate, for 127.0.0.1 only, is
    signed by a CA made for it (``mariadb_tls.tls``)."""
    yield from session_server(lambda: start_mariadb(tls=True), "MariaDB with TLS")


@pytest.fixture(scope="session")
def mariadb_params(mariadb: MariaDBServer) -> dict[str, Any]:
    """Connection parameters (host, port, user, password, database) of the test server."""
    return mariadb.params()
