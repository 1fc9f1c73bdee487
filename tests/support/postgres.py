"""Fixtures: a private PostgreSQL for the whole session (see ``localservices/postgres.py``).

A server that cannot start is a test failure, never a skip. Tests that use
this fixture get the ``postgres`` marker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localservices.postgres import PostgresServer, start_postgres
from support import session_server

__all__ = ["PostgresServer", "postgres"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session."""
    yield from session_server(start_postgres, "PostgreSQL")
