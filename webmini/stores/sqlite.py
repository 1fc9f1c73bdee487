"""SQLite for ``web.database(dbn="sqlite")``, kept off the gevent hub.

The sqlite3 C library blocks whatever thread calls it, so each connection has
its own native thread and every call runs there; the calling greenlet waits
cooperatively and the hub keeps running. ``InThread`` gives the same promise
to code that uses the sqlite3 connection directly (``db.ctx.db``).
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from webmini._extras import require

with require("gevent", "webmini.stores.sqlite"):
    import gevent.threadpool

from webmini.stores.backend import Link, Outcome, PooledBackend, run_statement

__all__ = ["InThread", "SqliteBackend", "use_explicit_sqlite_types"]


class _SqliteRaw:
    """A sqlite3 connection and the one native thread that runs all its calls."""

    __slots__ = ("conn", "thread")

    def __init__(self, conn: sqlite3.Connection, thread: gevent.threadpool.ThreadPool) -> None:
        self.conn, self.thread = conn, thread

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(conn, *args)`` in this connection's thread; wait cooperatively."""
        return self.thread.apply(fn, (self.conn, *args))

    def close(self) -> None:
        """Close in the connection's own thread, after anything still running there."""
        self.thread.spawn(self.conn.close)


class InThread:
    """A sqlite3 connection or cursor whose calls run in the connection's thread.

    ``db.ctx.db`` on SQLite: the DB-API as usual (``cursor()``, ``execute()``,
    ``fetchall()``...), each call made where the connection's other calls run,
    never on the hub.
    """

    __slots__ = ("_target", "_raw")

    def __init__(self, target: Any, raw: _SqliteRaw) -> None:
        self._target, self._raw = target, raw

    def __getattr__(self, name: str) -> Any:
        # Reading an attribute (a bound method, rowcount, description) runs no
        # SQLite code; only calls go to the connection's thread.
        value = getattr(self._target, name)
        if not callable(value):
            return value
        raw = self._raw

        def call(*args: Any, **kwargs: Any) -> Any:
            result = raw.call(lambda _conn: value(*args, **kwargs))
            if isinstance(result, sqlite3.Cursor | sqlite3.Connection):
                return InThread(result, raw)
            return result

        return call

    def __iter__(self) -> Iterator[Any]:
        target = self._target
        return iter(self._raw.call(lambda _conn: target.fetchall()))


def _convert_date(value: bytes) -> datetime.date:
    return datetime.date(*map(int, value.split(b"-")))


def _convert_timestamp(value: bytes) -> datetime.datetime:
    date_part, _, time_part = value.partition(b" ")
    year, month, day = map(int, date_part.split(b"-"))
    clock, _, fraction = time_part.partition(b".")
    hours, minutes, seconds = map(int, clock.split(b":"))
    micro = int(fraction.decode()[:6].ljust(6, "0")) if fraction else 0
    return datetime.datetime(year, month, day, hours, minutes, seconds, micro)


def use_explicit_sqlite_types() -> None:
    """Register the date/datetime adapters and converters sqlite3 deprecated in 3.12.

    web.py opens SQLite with ``PARSE_DECLTYPES`` and relies on sqlite3's
    default ``date``/``timestamp`` handling; Python 3.12 deprecated those
    defaults. These give the same values, explicitly (process-wide, as
    sqlite3's registries are).
    """
    sqlite3.register_adapter(datetime.date, lambda d: d.isoformat())
    sqlite3.register_adapter(datetime.datetime, lambda d: d.isoformat(" "))
    sqlite3.register_converter("date", _convert_date)
    sqlite3.register_converter("timestamp", _convert_timestamp)


use_explicit_sqlite_types()


class _SqliteLink(Link):
    __slots__ = ()

    def run(self, sql: str, params: Sequence[Any]) -> Outcome:
        # SECURITY: values are bound by sqlite3 ("?" markers), never spliced.
        # PERF: one thread hop per statement; the rows come back fetched.
        return self.raw.call(run_statement, sql, params)  # type: ignore[no-any-return]


class SqliteBackend(PooledBackend):
    """``dbn="sqlite"``: a file (or ``:memory:``), calls kept off the gevent hub."""

    dbname = "sqlite"
    paramstyle = "qmark"
    clean_errors = (sqlite3.Error,)
    _link_class = _SqliteLink

    def __init__(self, db: str, *, timeout: float = 5.0,
                 detect_types: int = sqlite3.PARSE_DECLTYPES, pool_size: int = 5,
                 **pool_args: Any) -> None:
        if db in ("", ":memory:"):
            pool_size = 1  # every connection to :memory: would be a separate database
            pool_args["max_overflow"] = 0
            pool_args["recycle"] = None
        pool_args.setdefault("pre_ping", False)
        super().__init__(pool_size=pool_size, **pool_args)
        self.path, self.timeout, self.detect_types = db, timeout, detect_types

    def _open(self) -> _SqliteRaw:
        # The thread outlives idle spells only for a while; gevent starts it
        # again on the next call. One thread per connection keeps every call
        # of a connection in order, its close included.
        thread = gevent.threadpool.ThreadPool(1, idle_task_timeout=60)
        conn = thread.apply(
            sqlite3.connect,
            (self.path,),
            {
                "timeout": self.timeout,
                "detect_types": self.detect_types,
                "isolation_level": None,  # autocommit; transactions are explicit BEGINs
                "check_same_thread": False,  # the thread varies; one caller at a time
            },
        )
        return _SqliteRaw(conn, thread)

    def _ping(self, raw: Any) -> None:
        raw.call(run_statement, "SELECT 1", ())

    def _where(self) -> str:
        return f"sqlite:{self.path}"

    def driver_connection(self, link: Link) -> Any:
        """The sqlite3 connection, its calls run in its own thread (see InThread)."""
        return InThread(link.raw.conn, link.raw)
