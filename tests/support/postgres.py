"""Fixtures: a private PostgreSQL for the whole session (see ``deploy/localpostgres.py``).

A server that cannot start is a test failure, never a skip. Tests that use
this fixture get the ``postgres`` marker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localpostgres import PostgresError, PostgresServer, start_postgres

__all__ = ["PostgresServer", "postgres"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session."""
    try:
        server = start_postgres()
    except PostgresError as exc:
        pytest.fail(f"cannot start a private PostgreSQL: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()
