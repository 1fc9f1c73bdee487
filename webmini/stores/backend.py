"""Statements on pooled connections for any driver: what ``web.database`` runs on.

A ``Backend`` hands out a ``Link`` (one connection, one greenlet at a time) and
takes it back. ``Link.run(sql, params)`` executes one statement with the
values as driver parameters and returns its whole outcome (column names, rows,
rowcount, last id), so nothing touches the driver after the call returns.
The backends, each cooperative under gevent:

- ``mysql.MySQLBackend``: over ``mysql.Database``'s pymysql pool.
- ``postgres.PostgresBackend``: pg8000, pure Python over gevent's patched sockets.
- ``sqlite.SqliteBackend``: each connection's calls in its own native thread.

``PooledBackend`` is the ``pool.Pool`` owner the SQLite and PostgreSQL
backends share. No driver is imported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from webmini._extras import require

with require("gevent", "webmini.stores.backend"):
    import gevent

from webmini.stores.pool import Pool

__all__ = ["Backend", "Link", "Outcome", "PooledBackend", "consume", "run_statement"]


class Outcome(NamedTuple):
    """What one statement produced (``names`` is None when it returned no rows)."""

    names: list[str] | None
    rows: list[tuple[Any, ...]]
    rowcount: int
    lastrowid: int | None


def consume(cursor: Any) -> Outcome:
    """Everything a DB-API cursor's last statement produced (its rows fetched)."""
    if cursor.description is None:
        names, rows = None, []
    else:
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    lastrowid = getattr(cursor, "lastrowid", None)
    return Outcome(names, rows, cursor.rowcount, lastrowid)


def run_statement(conn: Any, sql: str, params: Sequence[Any]) -> Outcome:
    """One statement on a DB-API connection, its rows fetched."""
    # SECURITY: values travel as parameters bound by the driver, never spliced.
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        return consume(cursor)
    finally:
        cursor.close()


class Link:
    """One checked-out connection; ``broken`` once its state is no longer trusted."""

    __slots__ = ("raw", "pooled", "broken", "owner", "extra")

    def __init__(self, raw: Any, pooled: Any = None, extra: Any = None) -> None:
        self.raw = raw
        self.pooled = pooled
        self.broken = False
        self.owner = gevent.getcurrent()
        self.extra = extra

    def run(self, sql: str, params: Sequence[Any]) -> Outcome:
        """Execute one statement on this connection (see the backend)."""
        raise NotImplementedError


class Backend:
    """The connections of one ``web.database`` (subclasses per ``dbn``)."""

    dbname = ""
    paramstyle = "format"
    #: Driver errors after which the connection is still in a known state
    #: (the server refused the statement); any other error discards it.
    clean_errors: tuple[type[BaseException], ...] = ()

    def checkout(self) -> Link:
        """A connection for the calling greenlet (bounded wait, 503 on timeout)."""
        raise NotImplementedError

    def checkin(self, link: Link, ok: bool) -> None:
        """Give ``link`` back; ``ok=False`` or a broken link discards the connection."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the idle connections."""

    def driver_connection(self, link: Link) -> Any:
        """The DB-API connection behind ``link`` (web.py's ``db.ctx.db``)."""
        return link.raw

    def _mark(self, link: Link, exc: BaseException) -> None:
        if not isinstance(exc, self.clean_errors):
            link.broken = True




class PooledBackend(Backend):
    """A ``webmini.stores.pool.Pool`` owner: subclasses open, ping and run."""

    _link_class: type[Link] = Link

    def __init__(self, *, pool_size: int = 10, max_overflow: int = 0,
                 acquire_timeout: float = 5.0, connect_timeout: float = 5.0,
                 recycle: float | None = 3600.0, pre_ping: bool | float = True) -> None:
        if pool_size < 1 or max_overflow < 0:
            raise ValueError("pool_size must be >= 1 and max_overflow >= 0")
        self.pool_size, self.max_overflow = pool_size, max_overflow
        self.acquire_timeout, self.connect_timeout = acquire_timeout, connect_timeout
        self.recycle = recycle if recycle and recycle > 0 else None
        self._ping_after: float | None = (
            None if pre_ping is False else 0.0 if pre_ping is True else float(pre_ping)
        )
        self._pool: Pool | None = None

    def _open(self) -> Any:
        raise NotImplementedError

    def _ping(self, raw: Any) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        raise NotImplementedError

    def _get_pool(self) -> Pool:
        pool = self._pool
        if pool is None or pool.pid != os.getpid():
            pool = self._pool = Pool(self)  # first use in this (possibly forked) process
        return pool

    def checkout(self) -> Link:
        """Take a slot and a live connection (bounded by the pool's timeouts)."""
        pool = self._get_pool()
        pooled = pool.acquire()
        return self._link_class(pooled.raw, pooled, pool)

    def checkin(self, link: Link, ok: bool) -> None:
        """Return the slot; a broken or failed connection is closed, not reused."""
        link.extra.release(link.pooled, discard=link.broken or not ok)

    def close(self) -> None:
        """Close the idle connections (in this process)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close_idle()

    def stats(self) -> Any:
        """The pool's counters (size, in_use, idle, connects, discards, timeouts...)."""
        return self._get_pool().stats()
